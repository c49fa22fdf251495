"""Summarize a harness run's runs.jsonl (medians over repetitions, [min-max]) even when the
harness's own summary could not be written (a peer that failed a point leaves None figures).

    python benchmarks/gateway/summarize.py RUN_DIR [--log RUN.out] [--cand llmswitch]

With `--log` (the harness's printed output) the startup and memory lines are summarized too.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    fmt = (lambda v: f"{v:,.0f}") if m >= 100 else (lambda v: f"{v:.2f}")
    return f"{fmt(m)} [{fmt(min(values))}-{fmt(max(values))}]" if len(values) > 1 else fmt(m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--log", type=Path)
    ap.add_argument("--cand", default="llmswitch")
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.run_dir / "runs.jsonl").read_text().splitlines()
            if line.strip()]
    points: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        points[(r["scen"], r["target"], r["conc"])].append(r)
    scens = list(dict.fromkeys(r["scen"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    concs = sorted({r["conc"] for r in rows})
    for scen in scens:
        sse = scen.startswith("sse")
        print(f"\n### {scen}\n")
        print("| target | conc | RPS | p50 ms | +p50 ms | " + ("TTFT p50 ms | " if sse else "")
              + "gw CPU µs/req | reps | errors |")
        print("|---|---:|---:|---:|---:|" + ("---:|" if sse else "") + "---:|---:|---:|")
        for conc in concs:
            direct = med([r["p50_ms"] for r in points.get((scen, "direct", conc), [])])
            for target in targets:
                rs = points.get((scen, target, conc))
                if not rs:
                    continue
                p50 = med([r["p50_ms"] for r in rs])
                added = (f"{p50 - direct:+.2f}" if p50 is not None and direct is not None
                         and target != "direct" else "")
                ttft = f"{spread([r.get('ttft_p50_ms') for r in rs])} | " if sse else ""
                cpu = spread([r.get("gw_cpu_us_per_req") for r in rs])
                print(f"| {target} | {conc} | {spread([r['rps'] for r in rs])} | "
                      f"{spread([r['p50_ms'] for r in rs])} | {added} | {ttft}{cpu} | "
                      f"{len(rs)} | {sum(r['errors'] or 0 for r in rs)} |")
    print("\n### ratios at concurrency 64 (median RPS)\n")
    for scen in scens:
        rps = {t: med([r["rps"] for r in points.get((scen, t, max(concs)), [])])
               for t in targets}
        cand, lite, ref = rps.get(args.cand), rps.get("litellm"), rps.get("refgw")
        parts = [f"{scen}: {args.cand} {cand}"]
        if cand and lite:
            parts.append(f"{cand / lite:.1f}x litellm ({lite})")
        if cand and ref:
            parts.append(f"{cand / ref:.2f}x refgw ({ref})")
        print("- " + ", ".join(parts))
    if args.log:
        startup_table(args.log)

def startup_table(log: Path) -> None:
    """Startup and memory per target, from the harness's printed lines."""
    startup: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    pat = re.compile(r"^\s+(\S+) startup ([\d.]+)s idle RSS ([\d.]+) MiB, peak ([\d.]+) MiB")
    for line in log.read_text().splitlines():
        m = pat.match(line)
        if m:
            startup[m[1]].append((float(m[2]), float(m[3]), float(m[4])))
    print("\n### startup and memory\n\n| target | startup s | RSS idle MiB | RSS peak MiB |")
    print("|---|---:|---:|---:|")
    for target, vals in startup.items():
        print(f"| {target} | {spread([v[0] for v in vals])} | "
              f"{spread([v[1] for v in vals])} | {spread([v[2] for v in vals])} |")


if __name__ == "__main__":
    main()
