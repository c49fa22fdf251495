"""The ledger's queue: `flush` waits for every call queued before it, across many batches,
from any thread; a ledger that never wrote needs no writer to flush or close."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from llmswitch import Switch
from llmswitch.observe import Ledger, LedgerStore, ObserveConfig
from llmswitch.testing import FakeModel


def test_flush_covers_every_batch_queued_before_it(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    ledger = Ledger(url, ObserveConfig(ledger=url, batch_size=7, flush_interval=5.0))
    switch = Switch({"routes": {"r": {"strategy": "fallback", "targets": ["a"]}}},
                    models={"a": FakeModel("a", ["x"] * 100)}, observers=[ledger])

    async def calls() -> None:
        for _ in range(100):
            await switch.complete("r", "hi")

    asyncio.run(calls())
    flusher = threading.Thread(target=ledger.flush)
    flusher.start()
    flusher.join(timeout=60)
    assert not flusher.is_alive()
    with LedgerStore(url) as store:
        assert len(store.attempts()) == 100
    ledger.flush()  # nothing queued: returns
    ledger.close()
    ledger.close()
    assert ledger.stats()["written"] == 100


def test_a_ledger_that_never_wrote_flushes_and_closes(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    ledger.flush()
    ledger.close()
    assert ledger.stats() == {"written": 0, "dropped": 0, "failures": 0, "last_error": None}


def test_rows_of_several_attempts_are_written_with_and_without_traces(tmp_path: Path) -> None:
    from llmswitch import OverloadedError

    for traces in (True, False):
        url = str(tmp_path / f"{traces}.sqlite")
        ledger = Ledger(url, ObserveConfig(ledger=url, traces=traces))
        models = {"a": FakeModel("a", [OverloadedError("down")], provider="p1"),
                  "b": FakeModel("b", ["fine"], provider="p2")}
        switch = Switch({"routes": {"r": {"strategy": "fallback", "targets": ["a", "b"],
                                          "retries": 0}}},
                        models=models, observers=[ledger])
        answer = asyncio.run(switch.complete("r", "hi", tags={"key_id": "k1"}))
        ledger.close()
        with LedgerStore(url) as store:
            rows = store.attempts()
            requests = store.requests()
        assert [(r["model"], r["status"], r["served"], r["key_id"], r["attempt"])
                for r in rows] == [("a", "error", 0, "k1", 1), ("b", "ok", 1, "k1", 2)]
        assert {r["request_id"] for r in rows} == {answer.trace_id}
        assert [q["request_id"] for q in requests] == ([answer.trace_id] if traces else [])
