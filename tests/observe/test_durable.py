"""The durable ledger (`CommitLedger`, public in `llmswitch.observe`): a call's `committed`
resolves once its rows are in the database, and says False (never hangs) when they cannot be."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmswitch import Switch
from llmswitch.observe import CommitLedger, LedgerStore, ObserveConfig
from llmswitch.testing import FakeModel


async def _answered(ledger: CommitLedger) -> str:
    switch = Switch({"routes": {"r": {"strategy": "fallback", "targets": ["a"]}}},
                    models={"a": FakeModel("a", ["fine"])}, observers=[ledger])
    answer = await switch.complete("r", "hi")
    assert answer.trace_id
    return answer.trace_id


async def test_committed_resolves_when_the_rows_are_in_the_database(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    ledger = CommitLedger(url, ObserveConfig(ledger=url, flush_interval=5.0))
    try:
        trace_id = await _answered(ledger)
        # No flush: a commit ledger writes at once, not after the 5 s flush interval.
        assert await ledger.committed(trace_id, timeout=30.0)
        with LedgerStore(url) as store:
            assert [row["request_id"] for row in store.attempts()] == [trace_id]
        assert await ledger.committed("never-queued", timeout=1.0)
    finally:
        await ledger.aclose()


async def test_a_closed_ledger_says_its_rows_were_not_written(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    ledger = CommitLedger(url, ObserveConfig(ledger=url))
    await ledger.aclose()
    trace_id = await _answered(ledger)
    assert await asyncio.wait_for(ledger.committed(trace_id, timeout=5.0), 30.0) is False
