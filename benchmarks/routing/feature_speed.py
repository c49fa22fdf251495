"""Featurisation and decision time per prompt on the dev tables (prints ms per prompt)."""

from __future__ import annotations

import time
from pathlib import Path

from llmswitch.evals.table import load_table
from llmswitch.training.router import train_router

DATA = next(p for p in (Path(__file__).resolve().parents[3] / "shared" / "data" / "routing",
                        Path("/work/shared/data/routing")) if p.is_dir())

ROUTERS = (
    ("logistic", {}),
    ("knn", {"k": 25, "task_weight": 1.0}),  # scores against every training prompt
    ("ridge", {"alpha": 3.0, "task_weight": 1.0, "embed_weight": 0.3}),  # TF-IDF + embedding
)

for name in ("routerbench_arc_mbpp_winogrande", "llmrouter_ulab_9llm", "routellm_gpt4_mixtral"):
    table = load_table(DATA / name)
    for kind, params in ROUTERS:
        router = train_router(table, kind, params)
        prompts = list(table.prompts[:300])
        router.features(prompts[:1])  # load the embedding file once
        t0 = time.perf_counter()
        feats = [router.features([p]) for p in prompts]
        t1 = time.perf_counter()
        for f in feats:
            router.decide(f)
        t2 = time.perf_counter()
        print(
            f"{name} {kind} {params}: features {1000 * (t1 - t0) / len(prompts):.2f} ms/prompt, "
            f"decision after features {1000 * (t2 - t1) / len(prompts):.3f} ms/prompt",
            flush=True,
        )
