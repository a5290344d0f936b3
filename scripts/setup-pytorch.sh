#!/usr/bin/env sh
# Installs PyTorch into target/pytorch-venv for scripts/pytorch_bench.py,
# the reference point of `tunas-searcher bench` (issue: speed). A benchmark
# dependency only: no test and no set-up command needs it. PyPI's Linux
# wheel pulls in CUDA libraries (the venv was 5.4 GB here); they are never used.
#
# Usage: scripts/setup-pytorch.sh     then
#        target/pytorch-venv/bin/python scripts/pytorch_bench.py --threads 1
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/pytorch-venv"
version="${TORCH_VERSION:-2.15.0}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
    echo "torch $version already in $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "torch==$version" numpy
"$venv/bin/python" -c "import torch; print('torch', torch.__version__, 'in', '$venv')"
