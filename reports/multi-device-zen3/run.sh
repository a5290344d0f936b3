#!/bin/bash
# One network for two devices (this VM at 1 and 2 threads): single-device,
# sum and --multi max searches. Usage: run.sh OUT [MS_1T MS_2T] (a new
# folder; a stopped run resumes there; targets 0.245 / 0.20 ms unless
# given; a search whose result.json exists is skipped). The committed results are this folder's */result.json (targets
# 0.245 / 0.20) and targets-0.245-0.21/*/result.json.
set -u
here=$(cd "$(dirname "$0")" && pwd)
S=$here/../../target/release/tunas-searcher
T1=$here/tiny28-1t.csv; T2=$here/tiny28-2t.csv
M1=${2:-0.245}; M2=${3:-0.20}
mkdir -p "${1:?usage: run.sh OUT [MS_1T MS_2T]}" && cd "$1"
go() { name=$1; shift; [ -f $name/result.json ] && return 0; if [ -d $name ]; then a="--resume $name"; else a="--out $name"; fi
  $S search --space tiny28 "$@" --seed 1 --threads 1 $a --json > $name.json 2> $name.log; echo "$(date -u +%T) $name rc $?" >> run.log; }
echo "$(date -u +%T) start load $(cut -d' ' -f1-3 /proc/loadavg), targets $M1 / $M2 ms" >> run.log
go only-1t --table $T1 --target-ms $M1 &
go only-2t --table $T2 --target-ms $M2 &
go sum --table $T1 --target-ms $M1 --table $T2 --target-ms $M2 &
go max --table $T1 --target-ms $M1 --table $T2 --target-ms $M2 --multi max &
wait
