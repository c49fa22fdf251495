"""Every attempt that reached a provider has exactly one ledger row, however the call ended:
cancelled by the caller (a web server cancels on every client disconnect), a stream the caller
abandoned, a stream cut after tokens, or a batch the writer had to retry."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import MockUpstream

from llmswitch import Switch, TextDelta
from llmswitch.calls import is_trace_id
from llmswitch.errors import BadRequestError, OverloadedError
from llmswitch.observe.db import MIGRATIONS, Database
from llmswitch.observe.ledger import Ledger
from llmswitch.observe.store import LedgerStore
from llmswitch.testing import FakeModel

PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}


def http_switch(upstream: MockUpstream, ledger: str, **route: Any) -> Switch:
    config = {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
        "models": {n: {"provider": "openai", "name": n, **PRICES} for n in ("primary", "backup")},
        "routes": {"r": {"strategy": "fallback", "targets": ["primary", "backup"],
                         "retries": 0, **route}},
        "observe": {"ledger": ledger, "flush_interval": 0.05},
    }
    return Switch(config, env={"OPENAI_API_KEY": "sk-test"})


async def rows_of(switch: Switch, ledger: str) -> list[dict[str, Any]]:
    await switch.aclose()
    with LedgerStore(ledger) as store:
        return store.attempts()


async def wait_until(condition: Any, limit: float = 20.0) -> None:
    """Poll a condition (bounded); the machine may be busy, so the bound is generous."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("model", ["primary", "r"])
async def test_cancelled_calls_that_reached_the_provider_are_in_the_ledger(
        tmp_path: Path, model: str) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream(hang_s=30.0) as upstream:
        upstream.script("primary", ["hang"])
        switch = http_switch(upstream, ledger)
        tasks = [asyncio.create_task(switch.complete(model, f"question {i} " * 20))
                 for i in range(20)]
        await wait_until(lambda: len(upstream.seen) == 20)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        rows = await rows_of(switch, ledger)
    assert len(rows) == len(upstream.seen) == 20
    assert {r["status"] for r in rows} == {"cancelled"}
    assert len({r["attempt_id"] for r in rows}) == 20
    # Billed up to then: the input, counted by the tokenizer, and marked as an estimate.
    assert all(r["input_tokens"] > 20 and r["usage_estimated"] == 1 for r in rows)
    assert all(r["cost_usd"] and r["cost_usd"] > 0 for r in rows)
    with LedgerStore(ledger) as store:
        assert {q["status"] for q in store.requests(limit=100)} == {"cancelled"}


async def test_abandoned_streams_are_recorded_with_the_text_they_delivered(
        tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream(drip_s=0.2) as upstream:
        upstream.script("primary", ["drip"])
        switch = http_switch(upstream, ledger)
        for i in range(20):
            events = switch.stream("r", f"tell me {i}")
            async for event in events:
                if isinstance(event, TextDelta):
                    break  # the caller walks away after the first piece
            await events.aclose()  # type: ignore[attr-defined]
        rows = await rows_of(switch, ledger)
    assert len(rows) == len(upstream.seen) == 20
    assert {r["status"] for r in rows} == {"abandoned"}
    assert all(r["output_tokens"] > 0 and r["input_tokens"] > 0 for r in rows)
    assert all(r["usage_estimated"] == 1 for r in rows)


async def test_an_ensemble_branch_cancelled_by_its_strategy_still_gets_a_row(
        tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream(hang_s=30.0) as upstream:
        upstream.script("backup", ["hang"])
        config = {
            "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
            "models": {n: {"provider": "openai", "name": n, **PRICES}
                       for n in ("primary", "backup")},
            "routes": {"r": {"strategy": "ensemble", "targets": ["primary", "backup"],
                             "aggregate": "first"}},
            "observe": {"ledger": ledger, "flush_interval": 0.05},
        }
        switch = Switch(config, env={"OPENAI_API_KEY": "sk-test"})
        answer = await switch.complete("r", "hello")
        assert answer.model == "primary"
        rows = await rows_of(switch, ledger)
    assert len(rows) == len(upstream.seen) == 2
    assert sorted((r["model"], r["status"]) for r in rows) == [
        ("backup", "cancelled"), ("primary", "ok")]


async def test_trace_id_and_tags_name_the_call_everywhere(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    config = {"routes": {"r": {"strategy": "fallback", "targets": ["a", "b"], "retries": 0}},
              "observe": {"ledger": ledger, "flush_interval": 0.05}}
    a = FakeModel("a", [OverloadedError("down")])
    b = FakeModel("b", ["fine"])
    switch = Switch(config, models={"a": a, "b": b})
    tags = {"key_id": "k1", "run_id": "run7", "team": "search"}
    answer = await switch.complete("r", "hi", tags=tags, trace_id="ab" * 16)
    assert answer.trace_id == "ab" * 16
    generated = await switch.complete("r", "hi")
    assert is_trace_id(generated.trace_id) and generated.trace_id != answer.trace_id
    b.script = [OverloadedError("down too")]
    with pytest.raises(Exception) as caught:
        await switch.complete("r", "hi", tags={"key_id": "k2"})
    failed_id = caught.value.trace_id  # type: ignore[attr-defined]
    assert is_trace_id(failed_id) and caught.value.to_dict()["trace_id"] == failed_id  # type: ignore[attr-defined]
    with pytest.raises(BadRequestError):
        await switch.complete("r", "hi", trace_id="not-an-id")
    rows = await rows_of(switch, ledger)
    mine = [r for r in rows if r["request_id"] == "ab" * 16]
    assert [(r["key_id"], r["run_id"]) for r in mine] == [("k1", "run7")] * 2
    assert '"team": "search"' in mine[0]["tags"]
    assert {r["key_id"] for r in rows if r["request_id"] == failed_id} == {"k2"}
    with LedgerStore(ledger) as store:
        tree = store.trace("ab" * 16)
    assert tree is not None and tree["trace_id"] == "ab" * 16


async def test_a_batch_retried_after_a_failure_half_way_is_not_written_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = str(tmp_path / "l.sqlite")
    config = {"routes": {"r": {"strategy": "fallback", "targets": ["a"], "retries": 0}},
              "observe": {"ledger": ledger, "flush_interval": 0.05}}
    switch = Switch(config, models={"a": FakeModel("a", ["x"], cost_per_call=0.5)})
    original = Database.write
    failed: list[bool] = []

    def flaky(self: Database, tables: Any) -> None:
        # The attempts go in, then the traces insert fails once (a transient error).
        if not failed:
            failed.append(True)
            cur = self.conn.cursor()
            table, columns, rows = tables[0]
            marks = ", ".join("?" for _ in columns)
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                            [tuple(r) for r in rows])
            raise RuntimeError("transient failure on the traces insert")
        original(self, tables)

    monkeypatch.setattr(Database, "write", flaky)
    for _ in range(10):
        await switch.complete("r", "hi")
    rows = await rows_of(switch, ledger)
    assert failed and len(rows) == 10
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(5.0)


def test_readers_never_migrate_or_create(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = Database(str(path))
    db.close()
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM llmswitch_schema WHERE version > 1")
    conn.commit()
    conn.close()
    with LedgerStore(str(path)) as store:
        store.attempts()
    conn = sqlite3.connect(path)
    versions = [v for (v,) in conn.execute("SELECT version FROM llmswitch_schema")]
    conn.close()
    assert versions == [1]  # the reader changed nothing
    assert len(MIGRATIONS) > 1
    missing = tmp_path / "nowhere" / "ledger.sqlite"
    with pytest.raises(Exception, match="no ledger"):
        LedgerStore(str(missing))
    assert not missing.parent.exists()


def test_ledger_stats_count_what_was_dropped(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    assert ledger.stats() == {"written": 0, "dropped": 0, "failures": 0, "last_error": None}


async def test_live_calls_are_visible_while_running_and_forgotten_after(tmp_path: Path) -> None:
    config = {"observe": {"ledger": False}}
    switch = Switch(config, models={"a": FakeModel("a", ["one two three"])})
    events = switch.stream("a", "hi", trace_id="cd" * 16)
    first = await anext(events)  # type: ignore[call-overload]
    assert isinstance(first, TextDelta)
    assert switch.live_call("cd" * 16) is not None
    async for _ in events:  # type: ignore[attr-defined]
        pass
    assert switch.live_call("cd" * 16) is None
    with pytest.raises(Exception, match="nosuch"):
        async for _ in switch.stream("nosuch/model", "hi", trace_id="ef" * 16):
            pass
    assert switch.live_call("ef" * 16) is None  # an unknown model leaves nothing behind
    assert switch._live == {}


def test_a_ledger_failure_never_prints_the_dsn_password() -> None:
    from llmswitch.observe.db import describe_failure

    url = "postgresql://app:s3cretPassw0rd@db.internal/ledger"
    text = describe_failure(url, RuntimeError('invalid token: "s3cretPassw0rd"'))
    assert "s3cretPassw0rd" not in text and "db.internal" in text
