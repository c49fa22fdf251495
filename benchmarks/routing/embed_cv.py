"""Does the static prompt embedding help? 5-fold CV of knn and ridge with embed_weight 0, 0.3, 0.6.

Usage (repo root): .venv/bin/python benchmarks/routing/embed_cv.py [TABLE ...]
Prints one line per (table, kind, weight): AIQ, cost share at 95% / 100% of the best single
model, and per-task best-single call shares at 95% (RouteLLM's measure). Takes ~6 min on 2 cores.
"""

from __future__ import annotations

import argparse
import time

from cv_dev import TABLES, data_dir

from llmswitch.evals.table import load_table
from llmswitch.training.crossval import cross_validate

BASES = (("knn", {"k": 25, "task_weight": 1.0}), ("ridge", {"alpha": 3.0, "task_weight": 1.0}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tables", nargs="*", default=TABLES)
    ap.add_argument("--weights", default="0,0.3,0.6")
    args = ap.parse_args()
    for name in args.tables:
        table = load_table(data_dir() / name)
        for kind, base in BASES:
            for w in (float(x) for x in args.weights.split(",")):
                t0 = time.time()
                rep = cross_validate(table, kind, {**base, "embed_weight": w}, 5)
                calls = {
                    t: round(r["best_single_call_share_at_95"] or -1, 3)
                    for t, r in rep["per_task"].items()
                }
                print(
                    f"{name} {kind} embed_weight={w:g}: AIQ {rep['aiq']:.4f} "
                    f"cs95 {rep['cost_share_at_95']} cs100 {rep['cost_share_at_100']} "
                    f"calls@95 {calls} ({time.time() - t0:.0f}s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
