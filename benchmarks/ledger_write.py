"""The ledger writer's CPU per call: SQLite inserts of one call's rows, schema v4 vs current.

Builds a batch of rows shaped like `Switch.complete`'s (one attempt row and its trace row with
a ~900-byte trace JSON, fresh random ids per call), then writes the same batches (500 calls
each, the ledger's batch size) into fresh ledgers of each schema, candidates interleaved per
round, and reports the writer thread's CPU µs per call (median over rounds). `--prefill N`
starts every ledger from a copy of one holding N calls already (a ledger that has been in use:
random-key index pages no longer fit the page cache).

    .venv/bin/python benchmarks/ledger_write.py                  # 20,000 calls, 3 rounds
    .venv/bin/python benchmarks/ledger_write.py --prefill 200000
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from llmswitch.observe.db import ID_TYPES, MIGRATIONS, Database
from llmswitch.observe.ledger import TRACE_COLUMNS
from llmswitch.observe.records import COLUMNS

BATCH = 500
TRACE_JSON = (
    '{"name":"chat gpt-4o-mini","kind":"attempt","status":"ok","duration_ms":198.25,'
    '"attributes":{"gen_ai.operation.name":"chat","gen_ai.provider.name":"openai",'
    '"gen_ai.request.model":"gpt-4o-mini","gen_ai.request.temperature":0.2,'
    '"gen_ai.request.max_tokens":128,"llmswitch.attempt_id":"%s-1",'
    '"gen_ai.usage.input_tokens":25,"gen_ai.usage.output_tokens":33,'
    '"gen_ai.usage.cached_input_tokens":0,"gen_ai.usage.cache_write_tokens":0,'
    '"gen_ai.usage.reasoning_tokens":0,"llmswitch.cost_usd":0.00002355,'
    '"gen_ai.response.finish_reasons":["stop"],"gen_ai.response.model":"gpt-4o-mini",'
    '"llmswitch.latency_ms":198.217,"llmswitch.ttft_ms":197.897},"children":[],'
    '"trace_id":"%s"}')


def batches(calls: int, ordered: bool = False
            ) -> list[list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]]:
    """`calls` calls' rows, as the ledger hands them to `Database.write`. `ordered`: ids that
    start with the time (48 bits of milliseconds, then 80 random bits), for comparison."""
    out = []
    ts = time.time()
    for start in range(0, calls, BATCH):
        attempts, traces = [], []
        for i in range(start, min(calls, start + BATCH)):
            rid = uuid.uuid4().hex
            if ordered:
                rid = f"{int((ts + i * 1e-3) * 1000):012x}{rid[12:]}"
            t = ts + i * 1e-3
            attempts.append((t, rid, "openai/gpt-4o-mini", 1, "openai", "gpt-4o-mini", "ok",
                             None, None, 25, 33, 0, 0, 2.355e-05, 198.25, 197.897, 0.0, 1, 0,
                             f"{rid}-1", 0, None, None, None))
            traces.append((rid, t, "openai/gpt-4o-mini", "ok", "openai", "gpt-4o-mini",
                           2.355e-05, 198.25, TRACE_JSON % (rid, rid), None, None, None))
        out.append([("attempts", COLUMNS, attempts), ("traces", TRACE_COLUMNS, traces)])
    return out


def create(path: Path, versions: int) -> None:
    """A ledger at schema version `versions` (what `Database` would have made then)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE llmswitch_schema (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:versions], start=1):
        for statement in statements:
            conn.execute(statement.replace("{id}", ID_TYPES["sqlite"]))
        conn.execute("INSERT INTO llmswitch_schema VALUES (?)", (version,))
    conn.commit()
    conn.close()


def writer_cpu(path: Path, work: list[Any], versions: int) -> float:
    """CPU µs per call of writing `work` with the ledger's own `Database.write`."""
    db = Database(str(path)) if versions == len(MIGRATIONS) else _unmigrated(path)
    try:
        calls = sum(len(b[0][2]) for b in work)
        start = time.thread_time()
        for batch in work:
            db.write(batch)
        return (time.thread_time() - start) / calls * 1e6
    finally:
        db.close()


def _unmigrated(path: Path) -> Database:
    db = Database.__new__(Database)
    db.url, db.readonly, db.dialect = str(path), False, "sqlite"
    db.conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    db.conn.execute("PRAGMA journal_mode=WAL")
    db.conn.execute("PRAGMA synchronous=NORMAL")
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefill", type=int, default=0, help="calls already in each ledger")
    parser.add_argument("--ordered-ids", action="store_true",
                        help="time-ordered request ids (not what llmswitch makes: a what-if)")
    args = parser.parse_args()
    schemas = {"v4": 4, "current": len(MIGRATIONS)}
    tmp = Path(tempfile.mkdtemp(prefix="ledger-write-"))
    try:
        seeds: dict[str, Path] = {}
        for name, versions in schemas.items():
            seeds[name] = tmp / f"seed-{name}.sqlite"
            create(seeds[name], versions)
            if args.prefill:
                writer_cpu(seeds[name], batches(args.prefill, args.ordered_ids), versions)
        results: dict[str, list[float]] = {name: [] for name in schemas}
        for _ in range(args.rounds):
            work = batches(args.calls, args.ordered_ids)
            for name, versions in schemas.items():
                path = tmp / f"{name}.sqlite"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                shutil.copy(seeds[name], path)
                results[name].append(writer_cpu(path, work, versions))
        for name, values in results.items():
            print(f"{name:8s} {statistics.median(values):6.1f} µs CPU/call  "
                  f"(rounds: {', '.join(f'{v:.1f}' for v in values)}; prefill {args.prefill}"
                  f"{'; time-ordered ids' if args.ordered_ids else ''})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
