"""Load test: N requests at C concurrent through a fallback route whose primary fails a share of
the time in mixed ways (429, 5xx, connection resets, streams cut before/after the first token,
malformed chunks). Half the requests stream.

Checks: no request lost, no answer truncated or duplicated (every text equals the full answer),
every injected failure has its error row in the ledger. Reports latency p50/p99 against a
no-fault baseline run (the difference is the added latency), peak and per-block RSS (flat
memory = no leak), and throughput.

    .venv/bin/python benchmarks/load_fallback.py [--requests 10000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from mock_upstream import ANSWER, MockUpstream

from llmswitch import Switch, collect
from llmswitch.observe.store import LedgerStore

FAULTS_COMPLETE = ["429", "429:0.01", "500", "503", "529", "reset"]
FAULTS_STREAM = ["429", "503", "reset", "cut_before", "cut_after", "malformed", "cut_late"]


def rss_mb() -> float:
    """Current resident memory in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * q / 100))]


def serve(conn: Connection, failure_rate: float, seed: int) -> None:
    """The mock upstream in its own process (so it does not share the client's CPU)."""
    rng = random.Random(seed)

    def chooser(model: str, n: int, stream: bool) -> str:
        if model != "primary" or rng.random() >= failure_rate:
            return "ok"
        return rng.choice(FAULTS_STREAM if stream else FAULTS_COMPLETE)

    async def main() -> None:
        async with MockUpstream(chooser=chooser) as up:
            conn.send(up.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            primary = [s.fault for s in up.seen if s.model == "primary"]
            conn.send({"primary_calls": len(primary), "connections": up.connections,
                       "injected": sum(1 for f in primary if f != "ok"),
                       "by_fault": dict(Counter(f for f in primary if f != "ok"))})

    asyncio.run(main())


async def run(requests: int, concurrency: int, failure_rate: float, seed: int,
              ledger: Path) -> dict[str, Any]:
    here, there = Pipe()
    server = Process(target=serve, args=(there, failure_rate, seed), daemon=True)
    server.start()
    base_url = here.recv()
    prices = {"context_window": 8000, "max_output_tokens": 1000,
              "input_per_mtok": 1.0, "output_per_mtok": 2.0}
    config = {
        "providers": {"openai": {"base_url": base_url, "timeout": 5,
                                 "max_connections": concurrency * 2}},
        "models": {n: {"provider": "openai", "name": n, **prices}
                   for n in ("primary", "backup")},
        "routes": {"r": {"strategy": "fallback", "targets": ["primary", "backup"],
                         "retries": 1, "backoff": {"base": 0.005, "cap": 0.05},
                         "breaker": False}},
        "observe": {"ledger": str(ledger)},
    }
    switch = Switch(config, env={})
    latencies: list[float] = []
    bad: list[str] = []
    lost = 0
    rss: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal lost
        async with sem:
            started = time.perf_counter()
            try:
                if i % 2:
                    c = await collect(switch.stream("r", f"question {i}"))
                else:
                    c = await switch.complete("r", f"question {i}")
            except Exception as exc:
                lost += 1
                bad.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            latencies.append((time.perf_counter() - started) * 1000)
            if c.text != ANSWER:
                bad.append(f"request {i}: {c.text!r}")

    started = time.perf_counter()
    block = 1000
    for start in range(0, requests, block):
        await asyncio.gather(*(one(i) for i in range(start, min(start + block, requests))))
        gc.collect()
        rss.append(round(rss_mb(), 1))
    elapsed = time.perf_counter() - started
    await switch.aclose()
    here.send("stop")
    stats = here.recv()
    server.join(5)
    rows: list[dict[str, Any]] = []
    if ledger.suffix:
        with LedgerStore(str(ledger)) as store:
            rows = store.attempts()
    error_rows = sum(1 for r in rows if r["status"] == "error")
    return {
        "requests": requests, "concurrency": concurrency, "failure_rate": failure_rate,
        "lost": lost, "truncated_or_wrong": len(bad), "examples": bad[:5],
        "primary_calls": stats["primary_calls"], "injected_failures": stats["injected"],
        "injected_by_fault": stats["by_fault"], "server_connections": stats["connections"],
        "ledger_rows": len(rows), "ledger_error_rows": error_rows,
        "every_failure_in_ledger": error_rows == stats["injected"] if ledger.suffix else None,
        "latency_ms": {"p50": round(pct(latencies, 50), 2), "p95": round(pct(latencies, 95), 2),
                       "p99": round(pct(latencies, 99), 2)},
        "seconds": round(elapsed, 2), "requests_per_s": round(requests / elapsed, 1),
        "rss_mb_per_1000": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--failure-rate", type=float, default=0.3)
    ap.add_argument("--baseline", type=int, default=2_000, help="requests without faults")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    ap.add_argument("--no-ledger", action="store_true", help="measure without the ledger")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = asyncio.run(run(args.baseline, args.concurrency, 0.0, args.seed,
                               Path(tmp) / ("base" if args.no_ledger else "base.sqlite")))
        faults = asyncio.run(run(args.requests, args.concurrency, args.failure_rate, args.seed,
                                 Path(tmp) / ("f" if args.no_ledger else "faults.sqlite")))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss = faults["rss_mb_per_1000"]
    result = {
        "baseline": base, "faults": faults,
        "added_latency_ms": {q: round(faults["latency_ms"][q] - base["latency_ms"][q], 2)
                             for q in ("p50", "p95", "p99")},
        "peak_rss_mb": round(peak, 1),
        "rss_growth_after_warmup_mb": round(rss[-1] - rss[min(1, len(rss) - 1)], 1),
        "python": sys.version.split()[0],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = (faults["lost"] == 0 and faults["truncated_or_wrong"] == 0
          and faults["every_failure_in_ledger"] is not False)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
