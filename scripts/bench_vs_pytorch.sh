#!/bin/sh
# Side by side in one run: `tunas-searcher bench` against
# scripts/pytorch_bench.py on a space's largest path, alternating the two
# programs at 1 and 2 threads for a number of rounds, so a slow period of the
# machine hits both alike. Prints one tab-separated line per measurement and
# the ratio per round; run it on an otherwise idle machine and note the load.
#
#   scripts/bench_vs_pytorch.sh [SPACE] [ROUNDS] [STEPS] [BATCH] [OMP_WAIT_POLICY]
#
# PyTorch's OpenMP threads wait passively by default (see pytorch_bench.py);
# on an idle machine `active` can be much faster at 2 threads, so compare
# against both.
#
# Needs a release build (cargo build --release) and PyTorch in
# target/pytorch-venv (scripts/setup-pytorch.sh installs it).
set -eu
space=${1:-tiny28}
rounds=${2:-2}
steps=${3:-20}
batch=${4:-64}
policy=${5:-passive}
root=$(cd "$(dirname "$0")/.." && pwd)
ours="$root/target/release/tunas-searcher"
python="$root/target/pytorch-venv/bin/python"
[ -x "$ours" ] || { echo "$ours is missing: run cargo build --release" >&2; exit 1; }
[ -x "$python" ] || { echo "$python is missing: run scripts/setup-pytorch.sh" >&2; exit 1; }
field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" | head -n 1; }
cpu() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'; }
echo "# $(cpu 'model name') (family $(cpu 'cpu family'), $(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo 'no AVX-512')), $(nproc) CPUs, $(date -u +%FT%TZ)"
echo "# space $space, batch $batch, $steps measured steps, PyTorch OMP wait policy $policy, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'round\tthreads\ttunas_img_s\tpytorch_img_s\tratio\tload\n'
r=1
while [ "$r" -le "$rounds" ]; do
  for t in 1 2; do
    a=$("$ours" bench --space "$space" --batch "$batch" --threads "$t" --steps "$steps" --json | field images_per_s)
    b=$("$python" "$root/scripts/pytorch_bench.py" --space "$space" --batch "$batch" --threads "$t" --steps "$steps" --omp-wait-policy "$policy" | field images_per_s)
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
    printf '%s\t%s\t%.1f\t%.1f\t%s\t%s\n' "$r" "$t" "$a" "$b" "$ratio" "$(cut -d' ' -f1 /proc/loadavg)"
  done
  r=$((r + 1))
done
