"""The spend ledger on SQLite and PostgreSQL: rows per attempt, traces, flushing, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmswitch import AllAttemptsFailedError, OverloadedError, ResponseError, Switch, Usage
from llmswitch.observe.config import ObserveConfig
from llmswitch.observe.db import MIGRATIONS, Database
from llmswitch.observe.ledger import Ledger, LedgerFullWarning
from llmswitch.observe.store import LedgerStore
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


def switch_for(url: str, models: dict[str, FakeModel], **observe: Any) -> Switch:
    config = {"routes": {"r": {"strategy": "fallback", "targets": list(models),
                               "retries": 0}},
              "observe": {"ledger": url, "flush_interval": 0.05, **observe}}
    return Switch(config, models=models,
                  services={SERVICE_KEY: Resilience(clock=FakeClock())})


async def test_rows_per_attempt_including_billed_failures(ledger_url: str) -> None:
    billed = ResponseError("cut", usage=Usage(40, 12, cache_write_tokens=30))
    billed.cost_usd = 0.003
    a = FakeModel("a", [billed, OverloadedError("down")], provider="p1")
    b = FakeModel("b", ["fine"], provider="p2", cost_per_call=0.01)
    switch = switch_for(ledger_url, {"a": a, "b": b})
    await switch.complete("r", "hello there")
    a.script = [OverloadedError("down")]
    b.script = [OverloadedError("down too")]
    with pytest.raises(AllAttemptsFailedError):
        await switch.complete("r", "again")
    await switch.aclose()
    with LedgerStore(ledger_url) as store:
        rows = store.attempts()
        requests = store.requests()
        tree = store.trace(requests[0]["request_id"])
    got = [(r["route"], r["provider"], r["model"], r["status"], r["error_type"], r["served"])
           for r in rows]
    assert got == [("r", "p1", "a", "error", "bad_response", 0),
                   ("r", "p2", "b", "ok", None, 1),
                   ("r", "p1", "a", "error", "overloaded", 0),
                   ("r", "p2", "b", "error", "overloaded", 0)]
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (40, 12)
    assert rows[0]["cache_write_tokens"] == 30
    assert rows[0]["cost_usd"] == pytest.approx(0.003)
    assert rows[1]["cost_usd"] == pytest.approx(0.01)
    assert len({r["request_id"] for r in rows}) == 2
    assert [q["status"] for q in requests] == ["error", "ok"]  # newest first
    assert tree is not None and tree["kind"] == "strategy"
    assert [c["status"] for c in tree["children"]] == ["error", "error"]


async def test_content_stays_out_of_traces_unless_opted_in(tmp_path: Path) -> None:
    for opt_in in (False, True):
        url = str(tmp_path / f"{opt_in}.sqlite")
        switch = switch_for(url, {"a": FakeModel("a", ["secret answer"])}, content=opt_in)
        await switch.complete("r", "secret prompt")
        await switch.aclose()
        with LedgerStore(url) as store:
            tree = store.trace(store.requests()[0]["request_id"])
        assert tree is not None
        text = str(tree)
        assert ("secret prompt" in text, "secret answer" in text) == (opt_in, opt_in)


async def test_close_writes_everything_queued(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    switch = switch_for(url, {"a": FakeModel("a", ["x"])})
    for _ in range(300):
        await switch.complete("r", "hi")
    await switch.aclose()
    with LedgerStore(url) as store:
        assert len(store.attempts()) == 300


def test_a_full_queue_drops_instead_of_blocking(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(str(tmp_path / "l.sqlite"), ObserveConfig(queue_size=2))
    monkeypatch.setattr(ledger, "_ensure_writer", lambda: None)  # nothing drains
    completion = FakeModel("a").complete
    import asyncio

    from llmswitch.request import Request

    request = Request(())
    answer = asyncio.run(completion(request))
    ledger.on_completion("a", request, answer)
    ledger.on_completion("a", request, answer)
    # Nothing drains the queue: a put that blocked would never return (bounded join).
    import threading

    third = threading.Thread(target=ledger.on_completion, args=("a", request, answer))
    with pytest.warns(LedgerFullWarning):
        third.start()
        third.join(timeout=30)
    assert not third.is_alive()
    assert ledger.dropped == 1


def test_an_older_schema_is_migrated_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE llmswitch_schema (version INTEGER NOT NULL)")
    for statement in MIGRATIONS[0]:
        conn.execute(statement.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
    conn.execute("INSERT INTO llmswitch_schema VALUES (1)")
    conn.commit()
    conn.close()
    db = Database(str(path))
    columns = [r["name"] for r in db.query("PRAGMA table_info(attempts)")]
    db.close()
    assert "cache_write_tokens" in columns


def test_migrations_are_versioned_and_idempotent(ledger_url: str) -> None:
    db = Database(ledger_url)
    assert db.migrate() == len(MIGRATIONS)
    db.close()
    db = Database(ledger_url)
    rows = db.query("SELECT version FROM llmswitch_schema")
    db.close()
    assert [r["version"] for r in rows] == list(range(1, len(MIGRATIONS) + 1))


def test_ledger_location_from_env_and_off(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from llmswitch.observe.config import DEFAULT_LEDGER, parse_observe

    monkeypatch.delenv("LLMSWITCH_LEDGER", raising=False)

    cfg = str(tmp_path / "llmswitch.yaml")
    assert parse_observe({}, {}, cfg).ledger == str(tmp_path / DEFAULT_LEDGER)
    assert parse_observe({"ledger": "l.db"}, {}, cfg).ledger == str(tmp_path / "l.db")
    home = tmp_path / "home"
    # a dict config (no file): the ledger lives in $LLMSWITCH_HOME
    assert parse_observe({}, {"LLMSWITCH_HOME": str(home)}).ledger == str(home / "ledger.sqlite")
    assert parse_observe({}, {"LLMSWITCH_LEDGER": "x.sqlite"}).ledger == "x.sqlite"
    assert parse_observe({}, {"LLMSWITCH_LEDGER": "off"}).ledger is None
    assert parse_observe({"ledger": False}, {"LLMSWITCH_LEDGER": "x"}).ledger is None
    assert parse_observe({"ledger": "y.sqlite"}, {"LLMSWITCH_LEDGER": "x"}).ledger == "y.sqlite"


@pytest.mark.parametrize(("observe", "needle"), [
    ({"legder": "x"}, "unknown key"),
    ({"content": "yes"}, "observe.content"),
    ({"otel": {"exporter": "otlp"}}, "needs an endpoint"),
    ({"batch_size": 0}, "observe.batch_size"),
])
def test_bad_observe_config_is_rejected(observe: dict[str, Any], needle: str) -> None:
    from llmswitch import ConfigError

    with pytest.raises(ConfigError, match=needle):
        Switch({"observe": observe})


def test_observers_empty_list_disables_defaults(tmp_path: Path) -> None:
    switch = Switch({"observe": {"ledger": str(tmp_path / "l.sqlite")}}, observers=[])
    assert switch.observers == []
    default = Switch({"observe": {"ledger": str(tmp_path / "l.sqlite")}})
    assert [type(o).__name__ for o in default.observers] == ["Ledger", "OtelObserver"]


async def test_an_unwritable_ledger_never_fails_a_request(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    switch = switch_for(str(blocker / "ledger.sqlite"), {"a": FakeModel("a", ["x"])})
    answer = await switch.complete("r", "hi")
    assert answer.text == "x"
    ledger = switch.observers[0]
    await switch.aclose()
    assert isinstance(ledger, Ledger) and ledger.failures == 1 and ledger.written == 0
    assert ledger.stats()["dropped"] == 1
    # What failed, in words (not "File exists"), and that spend is not being recorded.
    assert f"{blocker} is a file, not a folder" in caplog.text
    assert "spend is NOT being recorded" in caplog.text
    assert "File exists" not in caplog.text
