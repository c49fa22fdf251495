"""Train-then-evaluate on a split of a dev table: the protocol of the held-out scoring, in small.

`router train --kind auto` on a share of the dev split, then `router eval` of the saved file on the
rest (grouped by prompt text, stratified by task, as the tables' own split), for several seeds.
Cross-validation (`cv_dev.py`) trains on 80% of the dev split; this trains on ``--train`` (70% by
default) of it, so a router that remembers training questions sees fewer of them than it will
after training on the whole dev split.

Usage (repo root): .venv/bin/python benchmarks/routing/split_dev.py [TABLE ...] [--seeds a,b,c]
Writes results/split_<table>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

from cv_dev import TABLES, data_dir

from llmswitch.evals.table import load_table, train_test_split
from llmswitch.training.evaluate import evaluate_file
from llmswitch.training.train import train_from_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tables", nargs="*", default=TABLES)
    ap.add_argument("--seeds", default="a,b,c")
    ap.add_argument("--train", type=float, default=0.7, help="share of the dev split to train on")
    args = ap.parse_args()
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    for name in args.tables:
        table = load_table(data_dir() / name)
        runs: list[dict[str, Any]] = []
        for seed in args.seeds.split(","):
            train, test = train_test_split(table, 1.0 - args.train, seed=f"split-{seed}")
            t0 = time.time()
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "router.npz"
                summary = train_from_table(table.subset(train), "auto", path)
                rep = evaluate_file(table.subset(test), path)
            run = {
                "seed": seed,
                "kind": summary.get("kind"),
                "n_train": len(train),
                "n_test": len(test),
                "aiq": rep["aiq"],
                "cost_share_at_95": rep["cost_share_at_95"],
                "cost_share_at_100": rep["cost_share_at_100"],
                "task_best_aiq": rep["baselines"]["task_best"]["aiq"],
                "per_task_calls_at_95": {
                    t: r["best_single_call_share_at_95"] for t, r in rep["per_task"].items()
                },
                "seconds": round(time.time() - t0, 1),
            }
            runs.append(run)
            print(name, json.dumps(run), flush=True)
        doc = {"table": name, "train_share": args.train, "runs": runs}
        doc["mean_aiq"] = mean(r["aiq"] for r in runs)
        (out_dir / f"split_{name}.json").write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
