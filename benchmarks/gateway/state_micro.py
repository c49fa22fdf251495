"""The pieces of a request that keys, limits and the durable ledger add, measured alone (a busy
shared machine blurs them end to end; see state_cost.py for that view):

- `key check`: `KeyAuthenticator.authenticate` of a cached virtual key (SHA-256 + a dict);
- `limits memory` / `limits redis`: `GatewayLimiter.admit` + `settle` for a key with rpm, tpm
  and a budget, in-process and on Redis (one script to admit, one to settle), sequentially and
  at `--conc` concurrent;
- `commit sqlite` / `commit pg`: how long `gateway.durable_ledger` holds an answer back: from a
  call's end (its rows queued) to their commit, one at a time (p50/p95) and at `--conc`
  concurrent calls (group commit: calls per transaction).

    .venv/bin/python benchmarks/gateway/state_micro.py --redis redis://127.0.0.1:63790/0 \\
        --postgres postgresql://postgres@127.0.0.1:54329/llmswitch_bench \\
        --out benchmarks/results/gateway_state_micro.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from llmswitch import CallEstimate, Config, Switch
from llmswitch.gateway.durable import CommitLedger
from llmswitch.gateway.keys import KeyAuthenticator, KeySpec, KeyStore
from llmswitch.gateway.limits import GatewayLimiter, MemoryLimits
from llmswitch.gateway.protocols.common import Call
from llmswitch.observe.config import ObserveConfig
from llmswitch.results import Usage
from llmswitch.testing import FakeModel


def summary(samples_us: list[float]) -> dict[str, float]:
    samples_us.sort()
    return {"p50_us": round(statistics.median(samples_us), 1),
            "p95_us": round(samples_us[int(len(samples_us) * 0.95) - 1], 1),
            "mean_us": round(statistics.fmean(samples_us), 1)}


async def timed(n: int, step: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - started) * 1e6)
    out = summary(samples)
    out["cpu_us"] = round((time.process_time() - cpu) / n * 1e6, 1)
    return out


async def concurrent(n: int, conc: int, step: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await step()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.perf_counter() - started
    return {"per_s": round(n / elapsed, 1),
            "cpu_us": round((time.process_time() - cpu) / n * 1e6, 1)}


async def key_check(folder: Path, n: int) -> dict[str, float]:
    store = KeyStore(str(folder / "keys.sqlite"))
    secret, _ = store.create(KeySpec("bench"))
    auth = KeyAuthenticator(store, None, ttl=3600)
    headers = {b"authorization": f"Bearer {secret}".encode()}
    await auth.authenticate(headers)
    out = await timed(n, lambda: auth.authenticate(headers))
    store.close()
    return out


async def limits(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from llmswitch.gateway.policy import Principal

    client = None
    if kind == "redis":
        from llmswitch.gateway.redis_state import RedisLimits, connect

        client = connect(args.redis)
        await client.flushdb()
        limiter = GatewayLimiter(Config(), RedisLimits(client))
    else:
        limiter = GatewayLimiter(Config(), MemoryLimits())
    principal = Principal(key_id="key_bench", name="bench", limits={
        "rpm": 10**9, "tpm": 10**12, "budget_usd": 1e9, "period": "total"})
    call = Call("openai", "m", [])
    estimate = CallEstimate(20, 128, 0.0001, ("x/m",))

    async def step() -> None:
        admission = await limiter.admit(principal, call, lambda: estimate)
        await limiter.settle(admission, Usage(20, 30), 0.00002)

    await step()
    out: dict[str, Any] = {"sequential": await timed(args.n, step),
                           f"conc{args.conc}": await concurrent(args.n, args.conc, step)}
    if client is not None:
        await client.aclose()
    return out


async def commits(url: str, args: argparse.Namespace) -> dict[str, Any]:
    ledger = CommitLedger(url, ObserveConfig(ledger=url, otel=None))
    switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["ok"])},
                    observers=[ledger])

    async def step() -> None:
        trace_id = os.urandom(16).hex()
        await switch.complete("m", "hi", trace_id=trace_id)
        started = time.perf_counter()
        assert await ledger.committed(trace_id)
        waits.append((time.perf_counter() - started) * 1e6)

    waits: list[float] = []
    for _ in range(20):
        await step()
    waits.clear()
    for _ in range(args.n // 10):
        await step()
    sequential = summary(waits)
    waits.clear()
    writes = ledger.written
    rate = await concurrent(args.n // 2, args.conc, step)
    out = {"sequential_wait": sequential, f"conc{args.conc}_wait": summary(waits),
           f"conc{args.conc}": rate}
    await switch.aclose()
    out["rows_written"] = ledger.written - writes
    return out


def reset_postgres(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS attempts, traces, llmswitch_schema")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--conc", type=int, default=32)
    parser.add_argument("--redis", default=None)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    report: dict[str, Any] = {"n": args.n, "conc": args.conc, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report["key check"] = await key_check(folder, args.n)
        report["limits memory"] = await limits("memory", args)
        if args.redis:
            report["limits redis"] = await limits("redis", args)
        report["commit sqlite"] = await commits(str(folder / "l.sqlite"), args)
        if args.postgres:
            reset_postgres(args.postgres)
            report["commit pg"] = await commits(args.postgres, args)
    report["load_avg"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
