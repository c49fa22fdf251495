"""Per-prompt time of the static MiniLM embedding on the dev tables (one core).

Run in the project venv: ``.venv/bin/python benchmarks/routing/embed_speed.py``. Each prompt of
the three dev tables is embedded alone (``embed([prompt])``), once with an empty word cache
("cold", the first prompts of a process) and once more ("warm", words seen before). Writes
``benchmarks/routing/results/embed_speed.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

import numpy as np

from llmswitch.evals.table import load_table
from llmswitch.routing.learned.embed import MAX_WORDPIECES, StaticEmbedder

ROOT = Path(__file__).resolve().parents[2]
DATA = next(p for p in (ROOT.parent / "shared" / "data" / "routing",
                        Path("/work/shared/data/routing")) if p.is_dir())
TABLES = ("routerbench_arc_mbpp_winogrande", "llmrouter_ulab_9llm", "routellm_gpt4_mixtral")
OUT = ROOT / "benchmarks" / "routing" / "results" / "embed_speed.json"


def summary(arr: np.ndarray) -> dict[str, float]:
    """Mean, p95 and max of per-prompt times (ms)."""
    return {"mean_ms": round(float(arr.mean()), 4),
            "p95_ms": round(float(np.percentile(arr, 95)), 4),
            "max_ms": round(float(arr.max()), 3)}


def timings(emb: StaticEmbedder, prompts: list[str]) -> np.ndarray:
    """Milliseconds to embed each prompt alone."""
    ms = []
    for p in prompts:
        t0 = time.perf_counter()
        emb.embed([p])
        ms.append(1000 * (time.perf_counter() - t0))
    return np.array(ms)


def main() -> None:
    """Time every dev prompt, print a summary and write the JSON results."""
    t0 = time.perf_counter()
    emb = StaticEmbedder.load()
    load_ms = 1000 * (time.perf_counter() - t0)
    result: dict[str, object] = {
        "artifact": "src/llmswitch/routing/learned/data/minilm_static.npz", "dim": emb.dim,
        "max_wordpieces": MAX_WORDPIECES, "load_ms": round(load_ms, 1), "cores": 1,
        "python": platform.python_version(), "numpy": np.__version__, "tables": {}}
    tables: dict[str, object] = {}
    all_cold: list[np.ndarray] = []
    for name in TABLES:
        prompts = list(load_table(DATA / name).prompts)
        emb._cache.clear()  # cold: this table's words not seen yet
        cold_ms = timings(emb, prompts)
        all_cold.append(cold_ms)
        cold, warm = summary(cold_ms), summary(timings(emb, prompts))
        chars = np.array([len(p) for p in prompts])
        pieces = np.array([len(emb.token_ids(p)) for p in prompts])
        tables[name] = {"prompts": len(prompts), "median_chars": int(np.median(chars)),
                        "median_wordpieces": int(np.median(pieces)),
                        "share_capped": round(float((pieces >= MAX_WORDPIECES).mean()), 4),
                        "cold": cold, "warm": warm}
        print(f"{name}: {len(prompts)} prompts, cold {cold['mean_ms']:.3f} ms mean / "
              f"{cold['p95_ms']:.3f} p95; warm {warm['mean_ms']:.3f} / {warm['p95_ms']:.3f}")
    result["tables"] = tables
    result["all_prompts_cold"] = overall = summary(np.concatenate(all_cold))
    print(f"all {sum(map(len, all_cold))} prompts, cold: {overall['mean_ms']:.3f} ms mean / "
          f"{overall['p95_ms']:.3f} p95")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"load {load_ms:.0f} ms; wrote {OUT}")


if __name__ == "__main__":
    main()
