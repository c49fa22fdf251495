"""Cross-validated dev-split figures of the learned routers (writes results/cv_<table>_<kind>.json).

Usage (repo root): .venv/bin/python benchmarks/routing/cv_dev.py [TABLE ...] [--kinds knn,logistic]
Reads ../shared/data/routing/<TABLE>/ (or /work/shared/data/routing/). Same numbers as
`llmswitch router eval --data <TABLE> --kind <KIND> --json`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from llmswitch.evals.table import load_table
from llmswitch.training.evaluate import evaluate_kind

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [ROOT.parent / "shared" / "data" / "routing", Path("/work/shared/data/routing")]
TABLES = ["routerbench_arc_mbpp_winogrande", "llmrouter_ulab_9llm", "routellm_gpt4_mixtral"]


def data_dir() -> Path:
    for c in CANDIDATES:
        if c.is_dir():
            return c
    raise SystemExit("routing data not found in ../shared/data/routing")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tables", nargs="*", default=TABLES)
    ap.add_argument("--kinds", default="knn,ridge,cascade")
    ap.add_argument("--plot-dir", default=None, help="Write cv_<table>_<kind>.png here.")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    for name in args.tables:
        table = load_table(data_dir() / name)
        for kind in args.kinds.split(","):
            t0 = time.time()
            rep = evaluate_kind(table, kind, args.folds)
            rep["seconds"] = round(time.time() - t0, 1)
            (out_dir / f"cv_{name}_{kind}.json").write_text(json.dumps(rep, indent=1))
            b = rep["baselines"]
            print(
                f"{name} {kind}: AIQ {rep['aiq']:.4f} cs95 {rep['cost_share_at_95']} "
                f"cs100 {rep['cost_share_at_100']} | task-best AIQ {b['task_best']['aiq']:.4f} "
                f"cs95 {b['task_best']['cost_share_at_95']} | zero {b['zero_router']['aiq']:.4f} "
                f"oracle {b['oracle']['aiq']:.4f} ({rep['seconds']}s)",
                flush=True,
            )
            if args.plot_dir:
                from llmswitch.evals.plots import plot_report

                plot_report(
                    rep,
                    Path(args.plot_dir) / f"cv_{name}_{kind}.png",
                    f"{name}: {kind}, 5-fold CV on the dev split",
                )
            for task, row in rep["per_task"].items():
                print(
                    f"    {task}: AIQ {row['aiq']:.4f} cs95 {row['cost_share_at_95']} "
                    f"best-single calls at 95% {row['best_single_call_share_at_95']} "
                    f"({row['call_share_basis']})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
