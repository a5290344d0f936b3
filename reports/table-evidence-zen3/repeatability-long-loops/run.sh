#!/bin/bash
# Repeatability of tiny28 tables at 1 thread with --reference and long loops.
set -eu
cd "$(dirname "$0")"
P=../../../target/release/tunas-profiler
L="--runs 150 --min-ms 60 --network-runs 150 --network-min-ms 400"
echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2)"
for i in 1 2 3; do
  [ -f tiny28-$i.csv ] && continue
  r=""; [ -f tiny28-$i.csv.partial ] && r="--resume"
  echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) profile tiny28-$i"
  s=$(date +%s); $P profile --space tiny28 --threads 1 --out tiny28-$i.csv --reference $L --quiet --progress-lines $r 2>>tiny28-$i.log; echo $(( $(date +%s)-s )) > tiny28-$i.csv.seconds
done
echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) compare"
$P compare tiny28-1.csv tiny28-2.csv tiny28-3.csv --networks 100 --seed 7 --json > compare.json.tmp && mv compare.json.tmp compare.json
$P compare tiny28-1.csv tiny28-2.csv tiny28-3.csv --networks 100 --seed 7 > compare.txt
echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) done"
