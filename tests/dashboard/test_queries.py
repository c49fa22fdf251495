"""The dashboard's numbers, checked against the seeded rows computed independently in Python,
on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import pytest

from llmswitch import Catalog, Usage, cost_usd
from llmswitch.dashboard.ledger import LedgerReader
from llmswitch.dashboard.plans import run_view
from llmswitch.dashboard.queries import (
    RequestFilter,
    find_requests,
    overview,
    request_detail,
    savings,
)
from llmswitch.dashboard.rollup import HOUR, REBUILD_S, Rollup
from llmswitch.observe.db import Database
from llmswitch.observe.records import COLUMNS
from llmswitch.observe.report import percentile
from tests.support.ledger_seed import Seeded, seed_ledger

NOW = 1_790_000_000.0


def model_id(row: dict[str, Any]) -> str:
    return f"{row['provider']}/{row['model']}"


@pytest.fixture
def seeded(ledger_url: str) -> tuple[str, Seeded]:
    return ledger_url, seed_ledger(ledger_url, 400, days=5, now=NOW, runs=2, content=True)


def test_overview_sums_match_the_rows(seeded: tuple[str, Seeded]) -> None:
    url, data = seeded
    reader = LedgerReader(url)
    view = overview(reader, Rollup(reader, clock=lambda: NOW), "all", "model", NOW)
    cost: dict[str, float] = defaultdict(float)
    errors: dict[str, int] = defaultdict(int)
    for r in data.rows:
        cost[model_id(r)] += r["cost_usd"]
        if r["status"] != "ok":
            errors[r["error_type"]] += 1
    shown = {s.model: s for s in view.models}
    assert set(shown) == set(cost)
    for model, expected in cost.items():
        assert shown[model].cost_usd == pytest.approx(expected)
        assert shown[model].attempts == sum(1 for r in data.rows if model_id(r) == model)
    assert view.errors == dict(errors)
    assert view.requests == len(data.requests())
    assert view.attempts == len(data.rows)
    assert view.cost_usd == pytest.approx(sum(cost.values()))
    # the stacked series sums to the same spend, bucket by bucket
    assert sum(sum(v) for v in view.series.groups.values()) == pytest.approx(view.cost_usd)
    assert view.series.bucket_s == 86400  # five days: daily buckets


def test_percentiles_are_exact_and_period_bounded(seeded: tuple[str, Seeded]) -> None:
    url, data = seeded
    reader = LedgerReader(url)
    view = overview(reader, Rollup(reader, clock=lambda: NOW), "24h", "route", NOW)
    since = (NOW - 86400) // HOUR * HOUR
    for stats in view.models:
        ok = [r for r in data.rows if model_id(r) == stats.model and r["status"] == "ok"
              and r["ts"] >= since]
        assert stats.latency["p50"] == pytest.approx(percentile([r["latency_ms"] for r in ok],
                                                                50))
        assert stats.ttft["p95"] == pytest.approx(percentile([r["ttft_ms"] for r in ok], 95))
    assert view.requests == len({r["request_id"] for r in data.rows if r["ts"] >= since})


def test_rollup_keeps_settled_hours_and_reads_recent_rows_live(ledger_url: str) -> None:
    now = [NOW]
    seed_ledger(ledger_url, 50, days=1, now=NOW, runs=0)
    reader = LedgerReader(ledger_url)
    rollup = Rollup(reader, clock=lambda: now[0])
    before = sum(c.get("attempts") for c in rollup.cells())
    # a row in the live hour, and one stamped long ago (settled: seen at the next rebuild)
    db = Database(ledger_url)
    row = dict.fromkeys(COLUMNS)
    row.update(ts=NOW - 60, request_id="f" * 32, route="r", attempt=1, provider="p", model="m",
               status="ok", input_tokens=1, output_tokens=1, cached_input_tokens=0,
               reasoning_tokens=0, cost_usd=0.5, retry_wait_s=0.0, served=1,
               cache_write_tokens=0, attempt_id="late-1", usage_estimated=0)
    late = dict(row, ts=NOW - 5 * 86400, attempt_id="late-2", request_id="e" * 32)
    db.insert("attempts", COLUMNS, [tuple(row[c] for c in COLUMNS),
                                    tuple(late[c] for c in COLUMNS)])
    db.close()
    # both at once: the late one is added to its settled hour (it was missing until the
    # rebuild, up to 6 h later, so a backdated or imported row did not count)
    cells = rollup.cells()
    assert sum(c.get("attempts") for c in cells) == before + 2
    old_hour = int((NOW - 5 * 86400) // HOUR)
    assert sum(c.get("cost_usd") for c in cells if c.hour == old_hour) == pytest.approx(0.5)
    assert sum(c.get("attempts") for c in rollup.cells()) == before + 2  # counted once
    now[0] += REBUILD_S + 1  # the rebuild sums the same
    assert sum(c.get("attempts") for c in rollup.cells()) == before + 2


def test_search_by_provider_model_or_bare_name_and_pages(seeded: tuple[str, Seeded]) -> None:
    url, data = seeded
    reader = LedgerReader(url)
    for q in ("openai/gpt-4o-mini", "gpt-4o-mini"):
        rows, _ = find_requests(reader, RequestFilter(q=q), NOW, limit=1000)
        expected = {r["request_id"] for r in data.rows if r["model"] == "gpt-4o-mini"}
        assert {r.trace_id for r in rows} == expected
        assert all("openai/gpt-4o-mini" in r.models for r in rows)
    # every request exactly once across pages, newest first
    seen: list[str] = []
    before = ""
    while True:
        rows, before_next = find_requests(reader, RequestFilter(before=before), NOW, limit=37)
        seen += [r.trace_id for r in rows]
        if before_next is None:
            break
        before = before_next
    assert sorted(seen) == sorted(data.requests()) and len(seen) == len(set(seen))
    assert seen == list(reversed(data.requests()))
    failed, _ = find_requests(reader, RequestFilter(status="error"), NOW, limit=1000)
    assert {r.trace_id for r in failed} == {r["request_id"] for r in data.rows
                                            if r["status"] == "error"}
    prefix = data.requests()[3][:10]
    assert [r.trace_id for r in find_requests(reader, RequestFilter(q=prefix), NOW)[0]] == [
        data.requests()[3]]
    assert find_requests(reader, RequestFilter(q="no/such-model"), NOW) == ([], None)


def test_request_detail_has_every_attempt_and_the_tree(seeded: tuple[str, Seeded]) -> None:
    url, data = seeded
    failed = next(r for r in data.rows if r["status"] == "error" and r["attempt"] == 1)
    detail = request_detail(LedgerReader(url), failed["request_id"])
    assert detail is not None and detail.trace is not None
    mine = [r for r in data.rows if r["request_id"] == failed["request_id"]]
    assert [(a["provider"], a["model"], a["error_type"]) for a in detail.attempts] == [
        (r["provider"], r["model"], r["error_type"]) for r in mine]
    assert detail.trace["attributes"]["llmswitch.strategy"] == "fallback"
    assert "gen_ai.input.messages" in detail.trace["attributes"]
    assert request_detail(LedgerReader(url), "0" * 32) is None


def test_savings_reprices_served_tokens_at_the_baseline(seeded: tuple[str, Seeded]) -> None:
    url, data = seeded
    catalog = Catalog.shipped()
    reader = LedgerReader(url)
    view = savings(Rollup(reader, clock=lambda: NOW), catalog, "all", "openai/gpt-4o", NOW)
    for line in view.routes:
        rows = [r for r in data.rows if r["route"] == line.name]
        usage = sum((Usage(r["input_tokens"], r["output_tokens"]) for r in rows if r["served"]),
                    Usage())
        assert line.baseline_usd == pytest.approx(cost_usd(catalog.get("openai/gpt-4o"), usage))
        assert line.actual_usd == pytest.approx(sum(r["cost_usd"] for r in rows))
        assert sum(line.answers.values()) == sum(r["served"] for r in rows)
    assert {line.name for line in view.runs} == set(data.runs)
    default = savings(Rollup(reader, clock=lambda: NOW), catalog, "all", None, NOW)
    assert default.baseline == "openai/gpt-4o"  # the dearest model the ledger used


def test_plan_run_streams_and_baseline(seeded: tuple[str, Seeded]) -> None:
    url, data = seeded
    run_id = data.runs[0]
    view = run_view(LedgerReader(url), Catalog.shipped(), run_id, {})
    assert view is not None
    rows = [r for r in data.rows if r["run_id"] == run_id]
    streams = {json.loads(r["tags"])["stream_id"] for r in rows}
    assert {s.stream for s in view.streams} == streams
    assert view.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert view.baseline is not None and view.baseline_usd is not None


def test_an_empty_or_missing_ledger_reads_as_empty(tmp_path: Any) -> None:
    reader = LedgerReader(str(tmp_path / "none.sqlite"))
    view = overview(reader, Rollup(reader, clock=time.time), "all", "model", time.time())
    assert view.requests == 0 and view.models == [] and view.series.buckets == []
    assert not (tmp_path / "none.sqlite").exists()  # reading never creates it
