"""What keys, limits, budgets, Redis and the durable ledger cost per request, end to end.

Starts the shared harness's mock upstream (benchmarks/fast_upstream.py) and, for each setup,
one `llmswitch serve` process (1 worker); then sends non-streamed requests over HTTP:
`--seq` one at a time (latency p50/p95) and `--requests` at `--conc` concurrent (requests/s,
and the gateway process's CPU per request). Setups run interleaved for `--rounds` rounds; the
report gives each figure's median over the rounds.

Setups: `sqlite` (ledger on SQLite, no key), `sqlite+key` (a virtual key, no limits: the key
check), `sqlite+limits` (a key with rpm, tpm and a budget, in-process), `redis+limits` (the
same on Redis, `gateway.state`), `sqlite+durable` (`gateway.durable_ledger`), and with
`--postgres DSN`: `pg`, `pg+durable`, `pg+redis+limits+durable` (a fleet's setup).

    .venv/bin/python benchmarks/gateway/state_cost.py --redis redis://127.0.0.1:63790/0 \\
        --postgres postgresql://postgres@127.0.0.1:54329/llmswitch_bench \\
        --out benchmarks/results/gateway_state.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model": "fast", "messages": [{"role": "user", "content": "Explain briefly what an "
                                      "LLM gateway does."}], "max_tokens": 128}
ADMIN = "sk-admin-bench-0123456789"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(up_port: int, ledger: str, **gateway: Any) -> dict[str, Any]:
    card = {"context_window": 128000, "max_output_tokens": 4096, "input_per_mtok": 0.15,
            "output_per_mtok": 0.6}
    return {"providers": {"mockfast": {"base_url": f"http://127.0.0.1:{up_port}/v1",
                                       "api_key": "sk-up", "timeout": 30}},
            "models": {"fast": {"provider": "mockfast", "name": "mock-fast", **card}},
            "observe": {"ledger": ledger, "otel": False},
            "gateway": {"access_log": False, **gateway}}


def reset_postgres(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS attempts, traces, llmswitch_schema, gateway_keys, "
                     "llmswitch_keys_schema")


def make_key(ledger: str, **limits: Any) -> str:
    from llmswitch.gateway.keys import KeySpec, KeyStore

    store = KeyStore(ledger)
    try:
        secret, _ = store.create(KeySpec(f"bench-{time.monotonic_ns()}", **limits))
    finally:
        store.close()
    return secret


async def serve(path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmswitch.cli.main", "serve", "--config", str(path),
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "LLMSWITCH_ADMIN_KEY": ADMIN})
    async with httpx.AsyncClient() as http:
        until = time.monotonic() + 60
        while time.monotonic() < until:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc, port
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    proc.kill()
    raise SystemExit("the gateway did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(port: int, pid: int, key: str | None, seq: int, requests: int,
                  conc: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"authorization": f"Bearer {key or ADMIN}"}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for _ in range(20):  # warm up
            (await http.post(url, json=BODY, headers=headers)).raise_for_status()
        latencies = []
        for _ in range(seq):
            started = time.perf_counter()
            (await http.post(url, json=BODY, headers=headers)).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
        queue = list(range(requests))
        statuses: dict[int, int] = {}

        async def worker() -> None:
            while queue:
                queue.pop()
                status = (await http.post(url, json=BODY, headers=headers)).status_code
                statuses[status] = statuses.get(status, 0) + 1

        started, cpu = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    latencies.sort()
    return {"p50_ms": round(statistics.median(latencies), 3),
            "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 3),
            "rps": round(requests / elapsed, 1),
            "cpu_us_per_request": round(cpu / requests * 1e6, 1), "statuses": statuses}


def setups(args: argparse.Namespace, folder: Path) -> list[tuple[str, dict[str, Any], Any]]:
    limits = {"rpm": 10_000_000, "tpm": 10_000_000_000, "budget_usd": 1e6, "period": "total"}
    out: list[tuple[str, dict[str, Any], Any]] = [
        ("sqlite", {}, None), ("sqlite+key", {}, {}), ("sqlite+limits", {}, limits),
        ("sqlite+durable", {"durable_ledger": True}, None)]
    if args.redis:
        out.append(("redis+limits", {"state": args.redis}, limits))
    if args.postgres:
        out += [("pg", {}, None), ("pg+durable", {"durable_ledger": True}, None)]
        if args.redis:
            out.append(("pg+redis+limits+durable",
                        {"state": args.redis, "durable_ledger": True}, limits))
    return out


async def run_setup(args: argparse.Namespace, folder: Path, up_port: int, name: str,
                    gateway: dict[str, Any], limits: Any) -> dict[str, Any]:
    """One gateway process for one setup, measured."""
    if name.startswith("pg"):
        reset_postgres(args.postgres)
        ledger = args.postgres
    else:
        ledger = str(folder / f"{name}-{time.monotonic_ns()}.sqlite")
    if args.redis and "state" in gateway:
        import redis

        redis.Redis.from_url(args.redis).flushdb()
    key = make_key(ledger, **limits) if limits is not None else None
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config(up_port, ledger, **gateway)))
    proc, port = await serve(path)
    try:
        return await measure(port, proc.pid, key, args.seq, args.requests, args.conc)
    finally:
        proc.terminate()
        proc.wait(60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--redis", default=None)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many runs")
    parser.add_argument("--only", default=None, help="comma-separated setup names")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    up_port = free_port()
    upstream = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "fast_upstream.py"),
                                 "--listen", f"{up_port}:0"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    rounds: dict[str, list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for _ in range(args.rounds):  # interleaved, so a busy moment hits every setup
                for name, gateway, limits in setups(args, folder):
                    if args.only and name not in args.only.split(","):
                        continue
                    got = await run_setup(args, folder, up_port, name, gateway, limits)
                    rounds.setdefault(name, []).append(got)
                    print(name, got, flush=True)
    finally:
        upstream.terminate()
        upstream.wait(10)
    results = {name: {k: statistics.median(r[k] for r in runs)
                      for k in ("p50_ms", "p95_ms", "rps", "cpu_us_per_request")}
               for name, runs in rounds.items()}
    for name, row in results.items():
        print(f"{name:28} p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms  "
              f"{row['rps']:7.1f} req/s  {row['cpu_us_per_request']:7.1f} CPU us/req")
    report = {"seq": args.seq, "requests": args.requests, "conc": args.conc,
              "rounds": args.rounds, "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
              "results": results, "runs": rounds}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
