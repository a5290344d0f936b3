#!/bin/sh
# Evidence that latency tables predict whole networks: for each space and
# thread count, a fresh `profile`, then `validate` on networks drawn with a
# seed the method was never tuned on; then three independent profiles of one
# space compared on the estimates of 100 fixed networks. Every step says the
# load average before it; run it on an otherwise idle machine.
#
#   scripts/table_evidence.sh OUT [SAMPLES] [SEED] [THREADS...]
#
# OUT gets one folder per space and thread count with the table, its
# validation (JSON and chart), the profiling log, and `summary.tsv`, one line
# per table. A step whose output exists is skipped, so a stopped run goes on
# where it stopped (an interrupted profile resumes its journal).
#
# PROFILE_ARGS passes more settings to every `profile`, e.g.
# PROFILE_ARGS="--cooldown-budget-s 120" on a VM whose speed flips between
# modes whatever it rests (its cool-down pauses then only cost time), or
# PROFILE_ARGS="--reference" there; VALIDATE_ARGS passes more settings to
# every `validate` (e.g. longer loops: "--network-runs 150
# --network-min-ms 400").
#
# Needs a release build (cargo build --release) and ONNX Runtime (cargo
# xtask setup).
set -eu
out=${1:?usage: scripts/table_evidence.sh OUT [SAMPLES] [SEED] [THREADS...]}
samples=${2:-200}
seed=${3:-7}
shift $(( $# < 3 ? $# : 3 ))
threads=${*:-1 2}
root=$(cd "$(dirname "$0")/.." && pwd)
prof="$root/target/release/tunas-profiler"
[ -x "$prof" ] || { echo "$prof is missing: run cargo build --release" >&2; exit 1; }
mkdir -p "$out"
load() { cut -d' ' -f1-3 /proc/loadavg; }
log() { echo "$(date -u +%FT%TZ) [load $(load)] $*" | tee -a "$out/evidence.log" >&2; }
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
log "cpu: $cpu, $(nproc) CPUs; samples $samples, seed $seed, threads $threads; profile settings: ${PROFILE_ARGS:-defaults}"

# profile SPACE NAME THREADS DIR [FLAGS...]: a fresh table (or the one
# already there).
profile() {
  table="$4/$2.csv"
  [ -f "$table" ] && return 0
  resume=""
  [ -f "$table.partial" ] && resume="--resume"
  space=$1 name=$2 threads=$3 dir=$4
  shift 4
  log "profile $name at $threads thread(s) $* -> $table $resume"
  start=$(date +%s)
  # shellcheck disable=SC2086 # PROFILE_ARGS is a list of flags
  "$prof" profile --space "$space" --threads "$threads" --quiet --progress-lines \
    --out "$table" $resume ${PROFILE_ARGS:-} "$@" 2>>"$dir/profile.log"
  echo "$(( $(date +%s) - start ))" > "$table.seconds"
}

# validate SPACE NAME THREADS DIR
validate() {
  report="$4/$2.validate.json"
  [ -f "$report" ] && return 0
  log "validate $2 at $3 thread(s) on $samples networks (seed $seed) ${VALIDATE_ARGS:-}"
  load_before=$(load)
  # shellcheck disable=SC2086 # VALIDATE_ARGS is a list of flags
  "$prof" validate --space "$1" --table "$4/$2.csv" --threads "$3" \
    --samples "$samples" --seed "$seed" --plot "$4/$2.validate.svg" --json ${VALIDATE_ARGS:-} \
    > "$report.tmp" 2>>"$4/validate.log"
  mv "$report.tmp" "$report"
  echo "$load_before" > "$report.load"
}

for t in $threads; do
  for space in tiny28 proxylessnas "$root/examples/spaces/edge48.toml"; do
    name=$(basename "$space" .toml)
    dir="$out/$name-${t}t"
    mkdir -p "$dir"
    profile "$space" "$name" "$t" "$dir"
    validate "$space" "$name" "$t" "$dir"
  done
done

# Repeatability: three independent tiny28 profiles at 1 thread, each with
# its own seed, so that they time different context and calibration
# networks (with one seed they would share them, and any bias those
# networks give a row).
rep="$out/repeatability"
mkdir -p "$rep"
for i in 1 2 3; do
  profile tiny28 "tiny28-$i" 1 "$rep" --seed "$i"
done
if [ ! -f "$rep/compare.json" ]; then
  log "compare the three tiny28 tables on 100 networks"
  "$prof" compare "$rep/tiny28-1.csv" "$rep/tiny28-2.csv" "$rep/tiny28-3.csv" \
    --networks 100 --seed "$seed" --json > "$rep/compare.json"
fi
# With --reference the tables carry their levels: compare again with each
# table divided by its level (how much of the spread is the device's speed).
case " ${PROFILE_ARGS:-} " in
  *" --reference "*)
    [ -f "$rep/compare.per-level.txt" ] || "$prof" compare "$rep/tiny28-1.csv" "$rep/tiny28-2.csv" \
      "$rep/tiny28-3.csv" --networks 100 --seed "$seed" --per-level > "$rep/compare.per-level.txt" ;;
esac

python3 - "$out" <<'EOF'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
rows = ["space\tthreads\tkeys\tprofile_s\ttimed\twithin5\twithin10\tmape\tmax_err\ttau\tload_validate"]
for report in sorted(out.glob("*-*t/*.validate.json")):
    v = json.loads(report.read_text())
    table = report.with_name(report.name.replace(".validate.json", ".csv"))
    text = table.read_text()
    keys = sum(1 for l in text.splitlines() if l and not l.startswith("#")) - 1
    cost = re.search(r"# x-profiling-cost = (\d+) networks timed .*? and (\d+) one-op", text)
    secs = (table.parent / (table.name + ".seconds")).read_text().strip()
    load = (report.parent / (report.name + ".load")).read_text().strip()
    rows.append("\t".join(str(x) for x in [
        table.stem, report.parent.name.rsplit("-", 1)[1], keys, secs,
        f"{cost.group(1)}+{cost.group(2)} one-op" if cost else "?",
        f"{100 * v['within_5pct']:.1f}%", f"{100 * v['within_10pct']:.1f}%",
        f"{v['mape']:.2f}%", f"{v['max_abs_err']:.1f}%",
        f"{v['kendall_tau']:.3f}", load]))
(out / "summary.tsv").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
c = out / "repeatability" / "compare.json"
if c.exists():
    e = json.loads(c.read_text())["estimates"]
    print(f"repeatability: {100 * e['within_3pct']:.0f}% of {e['networks']} networks within ±3% "
          f"across {e['tables']} tables; spread median {e['median_spread_pct']:.2f}%, "
          f"p95 {e['p95_spread_pct']:.2f}%, max {e['max_spread_pct']:.2f}%")
EOF
log "done: $out/summary.tsv"
