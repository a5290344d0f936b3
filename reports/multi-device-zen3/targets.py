import json, subprocess, statistics, sys
E = "../../target/release/tunas-searcher"
tables = {"1t": "tiny28-1t.csv", "2t": "tiny28-2t.csv"}
est = {k: [] for k in tables}
for i in range(1, 201):
    for k, t in tables.items():
        out = subprocess.run([E, "estimate", "--space", "tiny28", "--table", t, "--arch", f"random:{i}", "--json"],
                             capture_output=True, text=True, check=True).stdout
        est[k].append(json.loads(out)["latency_ms"])
json.dump(est, open("uniform.json", "w"))
for k, v in est.items():
    q = statistics.quantiles(v, n=20)
    print(k, "min %.3f p25 %.3f p50 %.3f p75 %.3f max %.3f" % (min(v), q[4], q[9], q[14], max(v)))
r = [b / a for a, b in zip(est["1t"], est["2t"])]
print("2t/1t ratio: min %.2f median %.2f max %.2f" % (min(r), statistics.median(r), max(r)))
