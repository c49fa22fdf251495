"""CPU time a resilience route adds to one call: fallback and loadbalance (breaker on, RPM/TPM
limits, with and without a call timeout) over a model that answers at once, called directly
(no Switch, no ledger), so the figure is the strategy's own bookkeeping.

    python benchmarks/route_overhead.py [--calls N]   # prints µs of CPU per call
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from llmswitch import Switch
from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.results import Completion, Usage

ROUTES: dict[str, dict[str, Any]] = {
    "direct": {},
    "fallback": {"strategy": "fallback", "targets": ["a", "b"]},
    "loadbalance": {"strategy": "loadbalance", "targets": [
        {"model": "a", "rpm": 10**9, "tpm": 10**12}, {"model": "b", "rpm": 10**9}]},
}


class Instant(Model):
    """Answers at once with a fixed completion."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.answer = Completion("hello", "stop", Usage(9, 9), 0.0, "fake", name)

    async def complete(self, request: Request) -> Completion:
        return self.answer


async def cpu_per_call(model: Model, request: Request, calls: int) -> float:
    for _ in range(min(calls, 500)):
        await model.complete(request)
    started = time.process_time()
    for _ in range(calls):
        await model.complete(request)
    return (time.process_time() - started) / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    models = {"a": Instant("a"), "b": Instant("b")}
    routes = {k: v for k, v in ROUTES.items() if v}
    switch = Switch({"routes": routes, "observe": {"ledger": False}}, models=dict(models),
                    observers=[])
    for timeout in (None, 30.0):
        request = switch.request("Say hello", timeout=timeout)
        for name in ROUTES:
            model = models["a"] if name == "direct" else switch.model(name)
            us = await cpu_per_call(model, request, args.calls)
            print(f"{name:12s} timeout={timeout!s:5s} {us:7.1f} µs CPU per call")
    await switch.aclose()


if __name__ == "__main__":
    asyncio.run(main())
