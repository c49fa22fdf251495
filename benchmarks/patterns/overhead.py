"""Per-decision overhead of each pattern (no model calls).

Two numbers per pattern: the pure decision (router `decide`, privacy `detect`, chain plan) on
a typical prompt, and the whole strategy's added time over calling an instant fake model
directly (so it includes tracing, usage sums and request copies). CPU time per call.

    .venv/bin/python benchmarks/patterns/overhead.py
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmswitch import Switch
from llmswitch.catalog.catalog import Catalog
from llmswitch.messages import Message
from llmswitch.privacy import Redactor, detect
from llmswitch.request import Request
from llmswitch.routing.capability import Candidate, CapabilityRouter
from llmswitch.routing.complexity import ComplexityRouter
from llmswitch.routing.rules import RuleRouter
from llmswitch.testing import FakeModel

PROMPT = ("Our service returns 502 errors under load since Tuesday. Logs show connection resets "
          "from the upstream pool; latency p99 rose from 120 ms to 900 ms. Explain the likely "
          "causes, compare two fixes and write a short plan. Contact ops@example.com.") * 2
REQUEST = Request((Message.system("You are a helpful SRE."), Message.user(PROMPT)))
OUT = Path(__file__).parent / "results"


def cpu_ms(fn: Callable[[], Any], n: int = 2000) -> float:
    """Mean CPU milliseconds per call."""
    fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) * 1000 / n


def decisions() -> dict[str, float]:
    """Pure decision costs."""
    rules = RuleRouter.parse([
        {"when": {"has_images": True}, "target": "v"},
        {"when": {"min_tokens": 8000}, "target": "l"},
        {"when": {"regex": r"(?i)\bselect\b"}, "target": "s"},
        {"when": {"keywords": ["prove", "theorem", "lemma"]}, "target": "m"},
        {"when": {"metadata": {"tier": "gold"}}, "target": "g"}], default="c")
    catalog = Catalog.shipped()
    cap = CapabilityRouter([Candidate(c.id, c) for c in catalog], frozenset({"tools"}), "cost")
    tiers = ComplexityRouter.parse([{"below": 0.3, "target": "a"}, {"below": 0.7, "target": "b"},
                                    {"target": "c"}])
    return {
        "rules (5 rules)": cpu_ms(lambda: rules.decide(REQUEST)),
        f"capability ({len(catalog)} catalog models)": cpu_ms(lambda: cap.decide(REQUEST)),
        "complexity (heuristic scorer)": cpu_ms(lambda: tiers.decide(REQUEST)),
        "privacy detect (7 kinds)": cpu_ms(lambda: detect(PROMPT)),
        "privacy redact": cpu_ms(lambda: Redactor().redact(PROMPT)),
    }


ROUTES: dict[str, Any] = {
    "route-task": {"strategy": "route", "tasks": {"ops": {"target": "a", "match": "(?i)latency",
                                                          "system": "Be brief."}}},
    "route-rules": {"strategy": "route", "rules": [{"when": {"keywords": ["theorem"]},
                                                    "target": "b"}], "default": "a"},
    "route-complexity": {"strategy": "route", "tiers": [{"below": 0.5, "target": "a"},
                                                        {"target": "b"}]},
    "cascade (1 stage, heuristics)": {"strategy": "cascade", "targets": ["a", "b"],
                                      "checks": ["heuristics"]},
    "ensemble (3, vote)": {"strategy": "ensemble", "targets": ["a", "b", "c"]},
    "chain (2 steps)": {"strategy": "chain", "steps": [
        {"name": "x", "target": "a", "prompt": "{input}"},
        {"name": "y", "target": "b", "prompt": "{x}"}]},
    "structured": {"strategy": "structured", "targets": ["j"],
                   "schema": {"type": "object", "properties": {"k": {"type": "integer"}}}},
    "privacy (redact)": {"strategy": "privacy", "targets": ["a"], "action": "redact"},
}


def strategies(n: int = 1000) -> dict[str, float]:
    """Whole-strategy overhead: strategy call minus a direct fake-model call, per call."""
    models = {k: FakeModel(k, ["fine answer here"]) for k in "abc"}
    models["j"] = FakeModel("j", ['{"k": 1}'])
    switch = Switch({"routes": ROUTES}, models=models)

    async def run(name: str) -> float:
        model = switch.model(name)
        for m in models.values():
            m.calls.clear()
        await model.complete(REQUEST)
        started = time.process_time()
        for _ in range(n):
            await model.complete(REQUEST)
        for m in models.values():
            m.calls.clear()
        return (time.process_time() - started) * 1000 / n

    async def main() -> dict[str, float]:
        base = await run_direct(models["a"], n)
        out = {"direct fake-model call (baseline)": base}
        for name in ROUTES:
            calls = 3 if name.startswith("ensemble") else 2 if name.startswith("chain") else 1
            out[name] = await run(name) - calls * base
        return out

    return asyncio.run(main())


async def run_direct(model: FakeModel, n: int) -> float:
    """CPU ms per direct call of a fake model."""
    await model.complete(REQUEST)
    started = time.process_time()
    for _ in range(n):
        await model.complete(REQUEST)
    model.calls.clear()
    return (time.process_time() - started) * 1000 / n


def main() -> None:
    results = {"decision_ms": decisions(), "strategy_overhead_ms": strategies()}
    OUT.mkdir(exist_ok=True)
    (OUT / "overhead.json").write_text(json.dumps(results, indent=1))
    print("| pattern | CPU ms per request |\n|---|---:|")
    for group in results.values():
        for name, value in group.items():
            print(f"| {name} | {value:.4f} |")


if __name__ == "__main__":
    main()
