"""Load test: N requests at C concurrent through a fallback route whose primary fails a share of
the time in mixed ways (429, 5xx, connection resets, streams cut before/after the first token,
malformed chunks). Half the requests stream.

Checks: no request lost, no answer truncated or duplicated (every text equals the full answer),
every injected failure has its error row in the ledger. Reports latency p50/p99 against a
no-fault baseline run (the difference is the added latency), peak and per-block RSS (flat
memory = no leak), and throughput.

A third run adds callers that leave: `--cancel` of them cancel their call after a random
0-4 ms, `--abandon` of them (streaming ones) stop reading after the first event (a share of
the mock's streams drip a word every 10 ms, so both land mid-answer). Checks: every request
the upstream received has exactly one ledger row (no more, no fewer, no duplicate attempt
id), and every cut, cancelled or abandoned row carries non-zero usage (estimated where the
provider had not reported it).

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


def serve(conn: Connection, failure_rate: float, seed: int, drip: float) -> None:
    """The mock upstream in its own process (so it does not share the client's CPU)."""
    rng = random.Random(seed)

    def chooser(model: str, n: int, stream: bool) -> str:
        if model != "primary" or rng.random() >= failure_rate:
            return "drip" if stream and rng.random() < drip else "ok"
        return rng.choice(FAULTS_STREAM if stream else FAULTS_COMPLETE)

    async def main() -> None:
        async with MockUpstream(chooser=chooser, drip_s=0.01) as up:
            conn.send(up.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            primary = [s.fault for s in up.seen if s.model == "primary"]
            injected = [f for f in primary if f not in ("ok", "drip")]
            conn.send({"primary_calls": len(primary), "connections": up.connections,
                       "received": len(up.seen), "injected": len(injected),
                       "by_fault": dict(Counter(injected))})

    asyncio.run(main())


async def run(requests: int, concurrency: int, failure_rate: float, seed: int,
              ledger: Path, cancel: float = 0.0, abandon: float = 0.0) -> dict[str, Any]:
    here, there = Pipe()
    leaving = cancel > 0 or abandon > 0
    server = Process(target=serve, args=(there, failure_rate, seed, 0.3 if leaving else 0.0),
                     daemon=True)
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
    left = Counter[str]()
    rss: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    rng = random.Random(seed + 1)

    async def call(i: int) -> Any:
        if i % 2:
            return await collect(switch.stream("r", f"question {i}"))
        return await switch.complete("r", f"question {i}")

    async def leave(i: int, how: str) -> None:
        if how == "abandon":  # read the first event, then walk away from the stream
            events = switch.stream("r", f"question {i}")
            await anext(events)
            await events.aclose()  # type: ignore[attr-defined]
            left["abandoned"] += 1
            return
        task = asyncio.create_task(call(i))
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
        try:
            await task
            left["finished_before_cancel"] += 1
        except asyncio.CancelledError:
            left["cancelled"] += 1

    async def one(i: int) -> None:
        nonlocal lost
        draw = rng.random()
        # `abandon` is a share of all callers, taken from the streaming half
        how = ("cancel" if draw < cancel else
               "abandon" if i % 2 and draw < cancel + 2 * abandon else "")
        async with sem:
            started = time.perf_counter()
            try:
                if how:
                    await leave(i, how)
                    return
                c = await call(i)
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
    # a failed attempt's row says `error`, or `cut` when its stream had begun
    error_rows = sum(1 for r in rows if r["status"] in ("error", "cut"))
    interrupted = [r for r in rows if r["status"] in ("cut", "cancelled", "abandoned")]
    leaving_checks = {
        "callers_leaving": dict(left),
        "upstream_received": stats["received"],
        "rows_by_status": dict(Counter(r["status"] for r in rows)),
        "rows_equal_upstream_requests": len(rows) == stats["received"],
        "duplicate_attempt_ids": len(rows) - len({r["attempt_id"] for r in rows}),
        "interrupted_rows": len(interrupted),
        "interrupted_rows_without_usage": sum(
            1 for r in interrupted if not (r["input_tokens"] or r["output_tokens"])),
        "interrupted_rows_estimated": sum(1 for r in interrupted if r["usage_estimated"]),
    } if leaving else {}
    return {
        "requests": requests, "concurrency": concurrency, "failure_rate": failure_rate,
        "lost": lost, "truncated_or_wrong": len(bad), "examples": bad[:5],
        "primary_calls": stats["primary_calls"], "injected_failures": stats["injected"],
        "injected_by_fault": stats["by_fault"], "server_connections": stats["connections"],
        "ledger_rows": len(rows), "ledger_error_rows": error_rows,
        "every_failure_in_ledger": (error_rows == stats["injected"]
                                    if ledger.suffix and not leaving else None),
        **leaving_checks,
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
    ap.add_argument("--cancel", type=float, default=0.2, help="share of callers cancelling")
    ap.add_argument("--abandon", type=float, default=0.1,
                    help="share of callers abandoning their stream")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = asyncio.run(run(args.baseline, args.concurrency, 0.0, args.seed,
                               Path(tmp) / ("base" if args.no_ledger else "base.sqlite")))
        faults = asyncio.run(run(args.requests, args.concurrency, args.failure_rate, args.seed,
                                 Path(tmp) / ("f" if args.no_ledger else "faults.sqlite")))
        leaving = asyncio.run(run(args.requests, args.concurrency, args.failure_rate,
                                  args.seed, Path(tmp) / "leaving.sqlite", args.cancel,
                                  args.abandon)) if args.cancel or args.abandon else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss = faults["rss_mb_per_1000"]
    result = {
        "baseline": base, "faults": faults, "faults_and_callers_leaving": leaving,
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
    if leaving is not None:
        ok = ok and leaving["lost"] == 0 and leaving["truncated_or_wrong"] == 0 and (
            leaving["rows_equal_upstream_requests"] and not leaving["duplicate_attempt_ids"]
            and not leaving["interrupted_rows_without_usage"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
