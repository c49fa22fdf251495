"""A deterministic ledger for the dashboard's tests and benchmark: requests on routes and models
with fallbacks after `overloaded`/`rate_limited` errors, virtual keys, plan runs with streams,
and the stored trace tree of each request, written with the ledger's own schema and columns.

`seed_ledger(url, requests=N)` returns the rows it wrote, so a test can compute what a page
should show independently of the dashboard's SQL.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from llmswitch import Catalog, Usage, cost_usd
from llmswitch.observe.db import Database
from llmswitch.observe.ledger import TRACE_COLUMNS
from llmswitch.observe.records import COLUMNS

ROUTES: dict[str, list[str]] = {
    # route -> targets in order (a fallback: the next one serves when one fails)
    "answer": ["openai/gpt-4o", "anthropic/claude-haiku-4-5"],
    "cheap": ["openai/gpt-4o-mini", "openai/gpt-4o"],
    "openai/gpt-4o-mini": ["openai/gpt-4o-mini"],
}
KEYS = ["key-team-a", "key-team-b", None]
ERRORS = [("overloaded", 503), ("rate_limited", 429), ("timeout", None)]


@dataclass
class Seeded:
    """What was written: attempt rows (dicts keyed by column) and trace ids by route."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    traces: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    def requests(self) -> list[str]:
        """Trace ids, oldest first."""
        return list(dict.fromkeys(r["request_id"] for r in self.rows))


def _attempt(rng: random.Random, catalog: Catalog, ts: float, trace_id: str, route: str,
             n: int, target: str, failed: tuple[str, int | None] | None,
             tags: dict[str, str]) -> dict[str, Any]:
    provider, model = target.split("/", 1)
    usage = Usage(rng.randint(20, 2000), 0 if failed else rng.randint(10, 800))
    cost = 0.0 if failed else cost_usd(catalog.get(target), usage)
    latency = rng.uniform(200, 900) if failed else rng.lognormvariate(6.5, 0.5)
    return {
        "ts": ts, "request_id": trace_id, "route": route, "attempt": n,
        "provider": provider, "model": model, "status": "error" if failed else "ok",
        "error_type": failed[0] if failed else None,
        "http_status": failed[1] if failed else 200,
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "cached_input_tokens": 0, "reasoning_tokens": 0, "cost_usd": cost,
        "latency_ms": round(latency, 3),
        "ttft_ms": None if failed else round(latency * rng.uniform(0.2, 0.6), 3),
        "retry_wait_s": 0.0, "served": 0 if failed else 1, "cache_write_tokens": 0,
        "attempt_id": f"{trace_id}-{n}", "usage_estimated": 0, "key_id": tags.get("key_id"),
        "run_id": tags.get("run_id"),
        "tags": json.dumps(tags, sort_keys=True) if tags else None,
    }


def _trace(route: str, targets: list[str], rows: list[dict[str, Any]],
           content: bool) -> dict[str, Any]:
    children = []
    for row in rows:
        span: dict[str, Any] = {
            "name": f"chat {row['model']}", "kind": "attempt", "status": row["status"],
            "duration_ms": row["latency_ms"],
            "attributes": {"gen_ai.provider.name": row["provider"],
                           "gen_ai.request.model": row["model"],
                           "gen_ai.usage.input_tokens": row["input_tokens"],
                           "gen_ai.usage.output_tokens": row["output_tokens"],
                           "llmswitch.cost_usd": row["cost_usd"],
                           "llmswitch.attempt": row["attempt"]},
            "children": []}
        if row["status"] == "error":
            span["error"] = {"type": row["error_type"],
                             "message": f"{row['provider']}/{row['model']}: "
                                        f"{row['error_type']} (mock)"}
        children.append(span)
    served = next((r for r in rows if r["served"]), None)
    failures = [r["error_type"] for r in rows if r["status"] == "error"]
    reason = (f"{served['model']} answered after {len(failures)} failed attempt(s): "
              f"{', '.join(failures)}" if served and failures
              else f"{served['model']} answered" if served else "every target failed")
    attributes: dict[str, Any] = {
        "llmswitch.strategy": "fallback", "llmswitch.route": route,
        "llmswitch.candidates": targets,
        "llmswitch.chosen": served["model"] if served else None,
        "llmswitch.reason": reason, "llmswitch.attempts": len(rows)}
    if content:
        attributes["gen_ai.input.messages"] = [{"role": "user", "content": "What is 2 + 2?"}]
        attributes["gen_ai.output.messages"] = [{"role": "assistant", "content": "4"}]
    return {"name": f"fallback {route}", "kind": "strategy",
            "status": "ok" if served else "error",
            "duration_ms": round(sum(r["latency_ms"] for r in rows), 3),
            "attributes": attributes, "children": children}


def _request(rng: random.Random, catalog: Catalog, ts: float, route: str,
             tags: dict[str, str], content: bool) -> tuple[list[dict[str, Any]], tuple[Any, ...]]:
    trace_id = f"{rng.getrandbits(128):032x}"
    targets = ROUTES[route]
    rows = []
    for n, target in enumerate(targets, start=1):
        last = n == len(targets)
        failed = rng.choice(ERRORS) if not last and rng.random() < 0.15 else None
        if last and len(targets) == 1 and rng.random() < 0.03:
            failed = ERRORS[0]
        rows.append(_attempt(rng, catalog, ts + n * 0.001, trace_id, route, n, target, failed,
                             tags))
        if failed is None:
            break
    tree = _trace(route, targets, rows, content)
    tree["trace_id"] = trace_id
    served = next((r for r in rows if r["served"]), None)
    trace = (trace_id, ts, route, tree["status"], served["provider"] if served else None,
             served["model"] if served else None, sum(r["cost_usd"] for r in rows),
             tree["duration_ms"], json.dumps(tree), tags.get("key_id"), tags.get("run_id"),
             json.dumps(tags, sort_keys=True) if tags else None)
    return rows, trace


def seed_ledger(url: str, requests: int = 200, *, days: float = 7.0, now: float | None = None,
                runs: int = 3, seed: int = 7, content: bool = False,
                batch: int = 5000) -> Seeded:
    """Write `requests` requests (about 1.1 attempts each) spread over the last `days` days,
    `runs` plan runs among them (three streams each). Deterministic for a given `seed`."""
    rng = random.Random(seed)
    catalog = Catalog.shipped()
    now = time.time() if now is None else now
    out = Seeded()
    run_ids = [f"feature-2026{i:04d}-{rng.getrandbits(16):04x}" for i in range(runs)]
    out.runs = run_ids
    db = Database(url)
    try:
        rows: list[tuple[Any, ...]] = []
        traces: list[tuple[Any, ...]] = []
        for i in range(requests):
            ts = now - days * 86400 * (1 - (i + 0.5) / requests)
            route = rng.choice(list(ROUTES))
            tags: dict[str, str] = {}
            key = rng.choice(KEYS)
            if key is not None:
                tags["key_id"] = key
            if run_ids and i % max(1, requests // (runs * 3)) == 0 and len(out.traces) < runs * 3:
                tags = {"run_id": run_ids[len(out.traces) // 3],
                        "stream_id": ("migration", "data_layer", "tests")[len(out.traces) % 3]}
                route = "answer" if len(out.traces) % 3 else "cheap"
            made, trace = _request(rng, catalog, ts, route, tags, content)
            if "run_id" in tags:
                out.traces[f"{tags['run_id']}:{tags['stream_id']}"] = made[0]["request_id"]
            out.rows.extend(made)
            rows.extend(tuple(r[c] for c in COLUMNS) for r in made)
            traces.append(trace)
            if len(rows) >= batch:
                db.write([("attempts", COLUMNS, rows), ("traces", TRACE_COLUMNS, traces)])
                rows, traces = [], []
        db.write([("attempts", COLUMNS, rows), ("traces", TRACE_COLUMNS, traces)])
    finally:
        db.close()
    return out
