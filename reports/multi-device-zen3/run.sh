#!/bin/bash
# One network for two devices (this VM at 1 and 2 threads): single-device,
# sum and --multi max searches. Usage: run.sh OUT (a new folder; a stopped
# run resumes there). The committed results are this folder's */result.json.
set -u
here=$(cd "$(dirname "$0")" && pwd)
S=$here/../../target/release/tunas-searcher
T1=$here/tiny28-1t.csv; T2=$here/tiny28-2t.csv
mkdir -p "${1:?usage: run.sh OUT}" && cd "$1"
go() { name=$1; shift; if [ -d $name ]; then a="--resume $name"; else a="--out $name"; fi
  $S search --space tiny28 "$@" --seed 1 --threads 1 $a --json > $name.json 2> $name.log; echo "$(date -u +%T) $name rc $?" >> run.log; }
echo "$(date -u +%T) start load $(cut -d' ' -f1-3 /proc/loadavg)" >> run.log
go only-1t --table $T1 --target-ms 0.245 &
go only-2t --table $T2 --target-ms 0.20 &
go sum --table $T1 --target-ms 0.245 --table $T2 --target-ms 0.20 &
go max --table $T1 --target-ms 0.245 --table $T2 --target-ms 0.20 --multi max &
wait
