"""Turn the A/B pair logs (batch1-4.log: bare line, then candidate line) into ratios_summary.txt."""

import re
import statistics
from pathlib import Path

rows = []
for name in ["batch1.log", "batch2.log", "batch3.log", "batch4.log"]:
    lines = [line.strip() for line in Path(name).read_text().splitlines() if line.startswith("c=")]
    for a, b in zip(lines[0::2], lines[1::2], strict=False):
        rows.append((name, a, b))
# batch3/4: the scratch database of each round, in the order the rounds ran
order3 = ["base", "base", "base:commit_delay", "nocheck", "alloff", "alloff"]
order4 = ["base", "base", "nocheck", "nocheck", "alloff"]
out = {}
i3 = i4 = 0
for name, a, b in rows:
    ta = float(re.search(r"tps=([\d.]+)", a).group(1))
    tb = float(re.search(r"tps=([\d.]+)", b).group(1))
    clients = re.match(r"c=(\d+)", b).group(1)
    opts = re.search(r"\[(.*?)\]", b).group(1)
    script = b.split("] ")[1].split()[0]
    if name == "batch3.log":
        db = order3[i3 % 6]
        i3 += 1
    elif name == "batch4.log":
        db = order4[i4 % 5] if i4 < 15 else "base"
        i4 += 1
    else:
        db = "base"
    if script == "bare_n.sql":
        db = "base"
    bare_opts = re.search(r"\[(.*?)\]", a).group(1)
    key = f"c={clients} {db} {script} [{opts}] (bare [{bare_opts}])"
    out.setdefault(key, []).append((ta, tb, tb / ta))
for key, pairs in sorted(out.items()):
    ratios = " ".join(f"{r:.3f}" for _, _, r in pairs)
    cand = " ".join(f"{t:.0f}" for _, t, _ in pairs)
    bare = " ".join(f"{t:.0f}" for t, _, _ in pairs)
    median = statistics.median(r for _, _, r in pairs)
    print(f"{key:90s} n={len(pairs)} median={median:.3f} ratios={ratios} cand_tps={cand} bare_tps={bare}")
