"""What each gateway request leaves for the cyclic garbage collector.

Objects freed by reference counting never reach the collector; objects in reference cycles
wait for it, and those still alive at a young collection (a request in flight) are promoted
and wait for a full collection, which runs only when the old generation grew by a quarter.
Between full collections that garbage piles up, and its peak is what the process's RSS keeps
(freed Python arenas rarely go back to the system). This script counts it.

Runs N requests through the app as ASGI (as app_cost.py) with `gc.DEBUG_SAVEALL`, then
prints the garbage per request by type, the collections of each generation and the time
they took per request (`gc.callbacks`; measured in a second run without DEBUG_SAVEALL,
under `--threshold A,B,C` and `--freeze` (gc.freeze() after the warm-up) when given). Kinds:
`app` (HTTP to the harness's mock upstream), `app-fake` (a fake model, no HTTP), `engine`
(`Switch.complete` alone, HTTP), `switch-fake`.

    .venv/bin/python benchmarks/gateway/gc_cycles.py [--requests 2000] [--conc 64] [--kinds app]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from app_cost import KEY, asgi_call, config, free_port  # noqa: E402


class GcClock:
    """Time spent in each generation's collections (gc.callbacks)."""

    def __init__(self) -> None:
        self.spent = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.spent[info["generation"]] += time.perf_counter() - self._started
            self.runs[info["generation"]] += 1


async def run(kind: str, port: int, n: int, conc: int, stream: bool, top: int,
              freeze: bool = False, key: str = KEY) -> dict[str, Any]:
    from llmswitch import Switch
    from llmswitch.gateway.app import create_app
    from llmswitch.testing import FakeModel

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(port, Path(tmp))
        env = {"LLMSWITCH_ADMIN_KEY": KEY}
        if kind.endswith("fake"):
            fake = FakeModel("mock-fast", ["An LLM gateway forwards requests. Latency matters."])
            app = create_app(switch=Switch(cfg, models={"mock-fast": fake}), env=env)
        else:
            app = create_app(cfg, env=env)
        messages = [{"role": "user", "content": "Explain what an LLM gateway does."}]

        async def one() -> None:
            if kind in ("engine", "switch-fake"):
                await app.switch.complete("mock-fast", messages, max_tokens=128)
            else:
                status = await asgi_call(app, stream, key)
                assert status == (200 if key == KEY else 401), status

        async def drive(count: int) -> None:
            queue = iter(range(count))

            async def worker() -> None:
                for _ in queue:
                    await one()

            await asyncio.gather(*(worker() for _ in range(conc)))

        await drive(500)  # warm-up: pools, caches, first-use imports
        for ledger in app.switch.observers:
            if hasattr(ledger, "flush"):
                await asyncio.to_thread(ledger.flush)
        gc.collect()
        if freeze:
            gc.freeze()
        clock = GcClock()
        gc.callbacks.append(clock)
        await drive(n)
        gc.callbacks.remove(clock)
        gc.collect()
        before = [s["collections"] for s in gc.get_stats()]
        gc.set_debug(gc.DEBUG_SAVEALL)
        await drive(n)
        for ledger in app.switch.observers:
            if hasattr(ledger, "flush"):
                await asyncio.to_thread(ledger.flush)
        gc.collect()
        gc.set_debug(0)
        after = [s["collections"] for s in gc.get_stats()]
        garbage = collections.Counter(type(o).__qualname__ for o in gc.garbage)
        total = len(gc.garbage)
        gc.garbage.clear()
        gc.unfreeze()
        await app.aclose()
    return {"kind": kind, "requests": n, "stream": stream, "threshold": gc.get_threshold(),
            "key": "admin" if key == KEY else "wrong (401)",
            "freeze": freeze,
            "gc_us_per_request": [round(t * 1e6 / n, 2) for t in clock.spent],
            "gc_runs_per_1000": [round(r * 1000 / n, 1) for r in clock.runs],
            "cyclic_garbage_per_request": round(total / n, 1),
            "collections_per_1000": [round((a - b) * 1000 / n, 1)
                                     for a, b in zip(after, before, strict=True)],
            "by_type_per_request": {k: round(v / n, 2) for k, v in garbage.most_common(top)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--conc", type=int, default=64)
    ap.add_argument("--kinds", default="app,app-fake")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threshold", help="gc.set_threshold(A, B, C) first: A,B,C")
    ap.add_argument("--freeze", action="store_true", help="gc.freeze() after the warm-up")
    ap.add_argument("--wrong-key", action="store_true", help="every request is refused (401)")
    args = ap.parse_args()
    if args.threshold:
        gc.set_threshold(*(int(x) for x in args.threshold.split(",")))
    port = free_port()
    mock = subprocess.Popen([sys.executable, str(HERE.parent / "fast_upstream.py"), "--listen",
                             f"{port}:0", "--max-seconds", "600"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        import uvloop

        for kind in args.kinds.split(","):
            print(json.dumps(uvloop.run(run(kind, port, args.requests, args.conc, args.stream,
                                            args.top, args.freeze,
                                            "sk-wrong" if args.wrong_key else KEY))))
    finally:
        mock.terminate()
        mock.wait(10)


if __name__ == "__main__":
    main()
