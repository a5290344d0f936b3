#!/usr/bin/env bash
# Latency-targeting sweep (docs/measurements.md, "Latency targeting"): default
# searches at the 25th, 50th and 75th percentiles of the estimated latency of
# 1,000 uniform tiny28 samples (rounded to 0.1 µs), for each reward given, and
# the final architecture's estimate against its target.
#
#   scripts/latency_sweep.sh [TABLE] [OUT_DIR] [REWARD...]
#   defaults: tables/x86_64-amd-epyc-1t/tiny28.csv, runs/sweep, abs mnas
#
# Two searches run at a time with one thread each (the 2-core build machine);
# set JOBS and THREADS to change that. A finished search (result.json present)
# is not run again, so a stopped sweep can be re-run to finish it.
# SEARCH_ARGS adds flags to every search, e.g. SEARCH_ARGS="--beta -0.07"
# (use another OUT_DIR for it).
set -euo pipefail
cd "$(dirname "$0")/.."
table=${1:-tables/x86_64-amd-epyc-1t/tiny28.csv}
out=${2:-runs/sweep}
shift $(( $# > 2 ? 2 : $# ))
rewards=("$@")
[ ${#rewards[@]} -eq 0 ] && rewards=(abs mnas)
jobs=${JOBS:-2}
threads=${THREADS:-1}
searcher=target/release/tunas-searcher
[ -x "$searcher" ] || cargo build --release -q -p tunas-searcher
mkdir -p "$out"
"$searcher" targets --table "$table" --json > "$out/targets.json"
read -r p25 p50 p75 < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(*(f'{d[k]:.4f}' for k in ('p25_ms', 'p50_ms', 'p75_ms')))" "$out/targets.json")

run() { # reward name target
    local dir="$out/$1-$2"
    [ -f "$dir/result.json" ] && return 0
    rm -rf "$dir"
    "$searcher" search --table "$table" --target-ms "$3" --reward "$1" \
        --threads "$threads" --quiet --out "$dir" ${SEARCH_ARGS:-} > /dev/null 2> "$dir.log"
}
for reward in "${rewards[@]}"; do
    for pair in "p25 $p25" "p50 $p50" "p75 $p75"; do
        set -- $pair
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
        run "$reward" "$1" "$2" &
    done
done
wait
python3 - "$out" "${rewards[@]}" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows = []
print("| reward | target | target ms | final estimate ms | error | validation acc | seconds |")
print("|---|---|---|---|---|---|---|")
for reward in sys.argv[2:]:
    for name in ("p25", "p50", "p75"):
        r = json.load(open(out / f"{reward}-{name}" / "result.json"))
        err = 100 * (r["est_latency_ms"] / r["target_ms"] - 1)
        rows.append({"reward": reward, "target": name, "target_ms": r["target_ms"],
                     "est_latency_ms": r["est_latency_ms"], "error_pct": err,
                     "arch": r["arch"], "validation_accuracy": r["validation_accuracy"],
                     "seconds": r["seconds"]})
        print(f"| {reward} | {name} | {r['target_ms']:.4f} | {r['est_latency_ms']:.4f} | {err:+.2f}% | {r['validation_accuracy']:.4f} | {r['seconds']:.0f} |")
(out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
PY
