"""Dashboard page times over a large ledger.

Seeds N requests (default 100,000: about 110,000 attempt rows, 30 days, with traces, keys and
plan runs) into a fresh SQLite ledger (or PostgreSQL with --postgres DSN: its tables are
dropped first), then loads every page through the dashboard's ASGI app in-process (the server's
whole work: SQL, Python, HTML; no network) with a signed-in session. Reports the first load
(it sums the settled hours once, which happens again once an hour) and the median and worst of
the next loads.

    python benchmarks/dashboard.py                       # SQLite, 100,000 requests
    python benchmarks/dashboard.py --requests 20000 --repeat 9
    python benchmarks/dashboard.py --postgres postgresql://postgres@127.0.0.1:54329/bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.ledger_seed import seed_ledger  # noqa: E402

from llmswitch.dashboard import create_dashboard  # noqa: E402

ADMIN = "benchmark-admin-key-0123456789"


def pages(seeded: Any) -> list[str]:
    rows = seeded.rows
    failed = next(r["request_id"] for r in reversed(rows) if r["status"] == "error")
    return ["/ui", "/ui?period=7d&by=route", "/ui?period=24h&by=key", "/ui/savings",
            "/ui/savings?baseline=anthropic/claude-haiku-4-5", "/ui/requests",
            "/ui/requests?q=gpt-4o-mini", "/ui/requests?q=anthropic/claude-haiku-4-5",
            "/ui/requests?status=error", "/ui/requests?q=no-such-model",
            f"/ui/requests/{failed}", "/ui/keys", "/ui/plans", f"/ui/plans/{seeded.runs[0]}"]


async def measure(url: str, targets: list[str], repeat: int) -> dict[str, dict[str, float]]:
    app = create_dashboard({"observe": {"ledger": url}}, env={"LLMSWITCH_ADMIN_KEY": ADMIN})
    out: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bench") as http:
        assert (await http.post("/ui/login", data={"key": ADMIN})).status_code == 303
        for target in targets:
            times = []
            for _ in range(repeat + 1):
                start = time.perf_counter()
                response = await http.get(target)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (target, response.status_code)
            out[target] = {"first_ms": round(times[0], 1),
                           "median_ms": round(statistics.median(times[1:]), 1),
                           "max_ms": round(max(times[1:]), 1)}
            print(f"{target:55s} first {times[0]:7.1f} ms   median {out[target]['median_ms']:6.1f}"
                  f" ms   max {out[target]['max_ms']:6.1f} ms", flush=True)
    app.close()
    return out


def add_keys(url: str) -> None:
    """Virtual keys in the gateway's store for the seeded key ids (the keys page reads both)."""
    from llmswitch.gateway.keys import KeySpec, KeyStore
    from llmswitch.observe.db import Database

    store = KeyStore(url)
    db = Database(url)
    try:
        for seeded_id in ("key-team-a", "key-team-b"):
            _, record = store.create(KeySpec(name=seeded_id, budget_usd=500.0, period="month"))
            db.conn.cursor().execute(db.sql("UPDATE attempts SET key_id = ? WHERE key_id = ?"),
                                     (record.id, seeded_id))
            db.conn.commit()
    finally:
        db.close()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL DSN (tables dropped)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/dashboard.json"))
    args = parser.parse_args()
    if args.postgres:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS attempts, traces, llmswitch_schema, "
                         "gateway_keys, llmswitch_keys_schema")
        url = args.postgres
    else:
        url = str(Path(tempfile.mkdtemp(prefix="llmswitch-dash-bench-")) / "ledger.sqlite")
    started = time.perf_counter()
    seeded = seed_ledger(url, args.requests, days=args.days, runs=20)
    print(f"seeded {len(seeded.rows)} attempt rows ({args.requests} requests) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    add_keys(url)
    if args.postgres:  # what autovacuum does after a bulk insert: statistics, visibility map
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE attempts")
            conn.execute("VACUUM ANALYZE traces")
    load = os.getloadavg()[0]
    results = asyncio.run(measure(url, pages(seeded), args.repeat))
    report = {"database": "postgres" if args.postgres else "sqlite",
              "requests": args.requests, "attempt_rows": len(seeded.rows), "days": args.days,
              "repeat": args.repeat, "load_average_1m": round(load, 2),
              "cpus": os.cpu_count(), "pages": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    suffix = "" if not args.postgres else "-postgres"
    out = Path(args.out.replace(".json", f"{suffix}.json"))
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
