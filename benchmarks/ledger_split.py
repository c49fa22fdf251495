"""Where the ledger's CPU goes in `Switch.complete` at 64 concurrent (benchmarks/engine.py's
`switch` candidate): the request path (`Ledger._record`: rows and trace JSON), the writer
thread (`Ledger._write`: the SQLite inserts), the garbage collector, and the rest.

Each round runs, in fresh worker processes pinned to core 1 (the mock upstream on core 0),
the ledger on (the defaults) and the ledger turned into a no-op (`_record` does nothing, so
the observers and everything else stay as they are); medians over rounds. The CPU of a
worker is its process's (both threads), per request; `_record` and `_write` are each
thread's own CPU (`time.thread_time`); `gc` is the time the collector ran (`gc.callbacks`).
Compare figures within one run only.

    .venv/bin/python benchmarks/ledger_split.py                  # 3 rounds of 20,000 calls
    .venv/bin/python benchmarks/ledger_split.py --url http://127.0.0.1:18991/v1 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from engine import PROMPT, SYSTEM, mock_upstream, pinned  # noqa: E402

CONCURRENCY = 64


def _instrument(noop: bool) -> dict[str, float]:
    """Wrap the ledger's two halves and the collector with CPU counters."""
    from llmswitch.observe import ledger as ledger_module

    spent = {"record": 0.0, "write": 0.0, "written": 0, "gc": 0.0, "collections": 0}
    record, write = ledger_module.Ledger._record, ledger_module.Ledger._write

    def timed_record(self: Any, call: Any, extra: Any) -> None:
        start = time.thread_time()
        if not noop:
            record(self, call, extra)
        spent["record"] += time.thread_time() - start

    def timed_write(self: Any, db: Any, batch: list[Any]) -> None:
        start = time.thread_time()
        write(self, db, batch)
        spent["write"] += time.thread_time() - start
        spent["written"] += len(batch)

    started = [0.0]

    def collector(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            spent["gc"] += time.thread_time() - started[0]
            spent["collections"] += 1

    ledger_module.Ledger._record = timed_record  # type: ignore[method-assign,assignment]
    ledger_module.Ledger._write = timed_write  # type: ignore[method-assign]
    gc.callbacks.append(collector)
    return spent


async def _calls(url: str, requests: int, noop: bool) -> dict[str, float]:
    from llmswitch import Switch

    spent = _instrument(noop)
    folder = tempfile.mkdtemp(prefix="ledger-split-")
    switch = Switch({"providers": {"openai": {"base_url": url}},
                     "observe": {"ledger": str(Path(folder) / "ledger.sqlite")}},
                    env={"OPENAI_API_KEY": "sk-bench"})
    kw: dict[str, Any] = {"system": SYSTEM, "temperature": 0.2, "max_tokens": 128}

    async def flush() -> None:
        for observer in switch.observers:
            flusher = getattr(observer, "flush", None)
            if flusher is not None:
                await asyncio.to_thread(flusher)

    for _ in range(300):  # warm up: connections, caches, the writer thread
        await switch.complete("openai/gpt-4o-mini", PROMPT, **kw)
    await flush()
    left = requests
    deadline = time.monotonic() + 300

    async def worker() -> None:
        nonlocal left
        while left > 0 and time.monotonic() < deadline:
            left -= 1
            await switch.complete("openai/gpt-4o-mini", PROMPT, **kw)

    for key in spent:
        spent[key] = 0
    cpu = time.process_time()
    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
    await flush()
    cpu = time.process_time() - cpu
    done = requests - left
    await switch.aclose()
    per = 1e6 / done
    return {"cpu_us": cpu * per, "record_us": spent["record"] * per,
            "write_us": spent["write"] / max(1, spent["written"]) * 1e6,
            "gc_us": spent["gc"] * per, "collections": spent["collections"]}


def run_worker(url: str, requests: int, noop: bool) -> dict[str, float]:
    argv = [*pinned(1), sys.executable, __file__, "--worker", "--url", url,
            "--requests", str(requests)] + (["--noop"] if noop else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running fast_upstream.py (default: start one)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--noop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(_calls(args.url, args.requests, args.noop))))
        return
    upstream = contextlib.nullcontext(args.url) if args.url else mock_upstream()
    results: dict[str, list[dict[str, float]]] = {"ledger": [], "no-op ledger": []}
    with upstream as url:
        for i in range(args.rounds):
            order = list(results) if i % 2 == 0 else list(results)[::-1]
            for name in order:
                results[name].append(run_worker(url, args.requests, name != "ledger"))
    for name, runs in results.items():
        med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(f"{name:13s} CPU {med['cpu_us']:6.1f} µs/req   _record {med['record_us']:5.1f}"
              f"   _write {med['write_us']:5.1f}   gc {med['gc_us']:4.1f} µs/req"
              f" ({med['collections']:.0f} collections)")


if __name__ == "__main__":
    main()
