#!/usr/bin/env bash
# Searched vs random at the same latency (docs/measurements.md, "Better than
# random"): trains the searched architecture of RUN_DIR and K random
# architectures from the ±3% band around its target (tunas-searcher random,
# TuNAS's baseline) stand-alone, the same way, and compares test accuracies.
#
#   scripts/random_baseline.sh RUN_DIR [TABLE] [EPOCHS] [K] [OUT_DIR]
#   defaults: tables/x86_64-amd-epyc-1t/tiny28.csv, 3 epochs, 5, RUN_DIR/baseline
#
# JOBS trainings run at a time (default 1) with THREADS threads each (default
# 1). A finished training (its JSON present) is not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: scripts/random_baseline.sh RUN_DIR [TABLE] [EPOCHS] [K] [OUT_DIR]}
table=${2:-tables/x86_64-amd-epyc-1t/tiny28.csv}
epochs=${3:-3}
k=${4:-5}
out=${5:-$run/baseline}
jobs=${JOBS:-1}
threads=${THREADS:-1}
searcher=target/release/tunas-searcher
[ -x "$searcher" ] || cargo build --release -q -p tunas-searcher
mkdir -p "$out"
read -r searched target < <(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['arch'], r['target_ms'])" "$run/result.json")
"$searcher" random --table "$table" --target-ms "$target" --band 0.03 --n "$k" --seed 1 --json > "$out/random.json"
mapfile -t randoms < <(python3 -c "import json,sys; [print(a['arch']) for a in json.load(open(sys.argv[1]))]" "$out/random.json")

train() { # name arch
    [ -s "$out/$1.json" ] && return 0
    "$searcher" train --space tiny28 --arch "$2" --epochs "$epochs" --threads "$threads" \
        --json > "$out/$1.json.tmp" 2> "$out/$1.log"
    mv "$out/$1.json.tmp" "$out/$1.json"
}
names=(searched); archs=("$searched")
for i in "${!randoms[@]}"; do names+=("random$((i + 1))"); archs+=("${randoms[$i]}"); done
for i in "${!names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 5; done
    train "${names[$i]}" "${archs[$i]}" &
done
wait
python3 - "$out" "$table" "${names[@]}" <<'PY'
import json, sys, pathlib, subprocess
out, table, names = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
rows = []
for n in names:
    r = json.load(open(out / f"{n}.json"))
    est = json.loads(subprocess.run(["target/release/tunas-searcher", "estimate", "--space", "tiny28",
        "--table", table, "--arch", r["arch"], "--json"], capture_output=True, text=True, check=True).stdout)
    rows.append({"name": n, "arch": r["arch"], "test_accuracy": r["test_accuracy"],
                 "est_latency_ms": est.get("latency_ms")})
print("| network | architecture | est. latency ms | test accuracy |")
print("|---|---|---|---|")
for r in rows:
    lat = f"{r['est_latency_ms']:.4f}" if r["est_latency_ms"] is not None else "-"
    print(f"| {r['name']} | `{r['arch']}` | {lat} | {100 * r['test_accuracy']:.2f}% |")
rand = [r["test_accuracy"] for r in rows if r["name"] != "searched"]
s = rows[0]["test_accuracy"]
summary = {"rows": rows, "searched": s, "random_mean": sum(rand) / len(rand),
           "random_best": max(rand), "beats_mean": s > sum(rand) / len(rand), "beats_best": s > max(rand)}
print(f"searched {100*s:.2f}% vs random mean {100*summary['random_mean']:.2f}%, best {100*summary['random_best']:.2f}%")
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
PY
