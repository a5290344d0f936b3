# Run from this folder: the three tables' estimates of random:1..100, raw and
# divided by each table's reference level (x-reference-level-us).
import json, re, statistics, subprocess
E = "../../../target/release/tunas-searcher"
tabs = [f"tiny28-{i}.csv" for i in (1, 2, 3)]
levels = [float(re.search(r"x-reference-level-us = ([0-9.]+)", open(t).read()).group(1)) for t in tabs]
# the 100 networks `compare --networks 100 --seed 7` uses are not exposed; use random:1..100
est = [[json.loads(subprocess.run([E, "estimate", "--space", "tiny28", "--table", t, "--arch", f"random:{i}", "--json"],
        capture_output=True, text=True, check=True).stdout)["latency_ms"] for i in range(1, 101)] for t in tabs]
def spread(rows):
    s = []
    for vals in zip(*rows):
        m = statistics.median(vals)
        s.append(max(abs(v / m - 1) for v in vals) * 100)
    s.sort()
    return sum(x <= 3 for x in s), statistics.median(s), s[94], s[-1]
print("levels", levels)
print("raw:        within3 %d%%, median %.2f%%, p95 %.2f%%, max %.2f%%" % spread(est))
norm = [[v * levels[0] / l for v in row] for row, l in zip(est, levels)]
print("level-free: within3 %d%%, median %.2f%%, p95 %.2f%%, max %.2f%%" % spread(norm))
r = [[b / a for a, b in zip(est[0], row)] for row in est[1:]]
for k, rr in enumerate(r, 2):
    print(f"table {k}/table 1 estimate ratio: median %.3f, min %.3f, max %.3f" % (statistics.median(rr), min(rr), max(rr)))
