#!/bin/bash
# Issue 13: one network for two devices (this VM at 1 and 2 threads), --multi max.
set -u
S=/work/main/target/release/tunas-searcher
T1=/work/exp/te-rep-long/tiny28-1.csv; T2=/work/exp/multi/tiny28-2t.csv
cd /work/exp/multi
go() { name=$1; shift; if [ -d $name ]; then a="--resume $name"; else a="--out $name"; fi
  $S search --space tiny28 "$@" --seed 1 --threads 1 $a --json > $name.json 2> $name.log; echo "$(date -u +%T) $name rc $?" >> run.log; }
echo "$(date -u +%T) start load $(cut -d' ' -f1-3 /proc/loadavg)" >> run.log
go only-1t --table $T1 --target-ms 0.245 &
go only-2t --table $T2 --target-ms 0.20 &
go max --table $T1 --target-ms 0.245 --table $T2 --target-ms 0.20 --multi max &
wait
