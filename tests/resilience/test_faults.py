"""Real HTTP faults from the mock upstream through `Switch`: outcome, attempts, waits, trace
and ledger rows for each fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mock_upstream import ANSWER, MockUpstream

from llmswitch import (
    AllAttemptsFailedError,
    BadRequestError,
    StreamEnd,
    StreamNotice,
    Switch,
    TextDelta,
)
from llmswitch.observe.store import LedgerStore
from llmswitch.resilience.clock import FakeClock

Make = Callable[..., Switch]


async def ledger_rows(switch: Switch, tmp_path: Path) -> list[dict[str, Any]]:
    await switch.aclose()
    with LedgerStore(str(tmp_path / "ledger.sqlite")) as store:
        return store.attempts()


def outline(rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["model"], r["status"], r["error_type"]) for r in rows]


@pytest.mark.parametrize(("fault", "error_type", "wait"), [
    ("429", "rate_limited", 0.25),      # full jitter: 0.5 * base 0.5 * 2**0
    ("429:3", "rate_limited", 3.0),     # retry-after honoured
    ("500", "overloaded", 0.25),
    ("503", "overloaded", 0.25),
    ("529", "overloaded", 0.25),
    ("503:3", "overloaded", 3.0),      # retry-after on a 503 honoured like on a 429
    ("529:2", "overloaded", 2.0),
    ("reset", "connection", 0.25),
])
async def test_retryable_fault_is_retried_on_the_same_model(
        http_switch: Make, upstream: MockUpstream, clock: FakeClock, tmp_path: Path,
        fault: str, error_type: str, wait: float) -> None:
    upstream.script("primary", [fault, "ok"])
    switch = http_switch(retries=1)
    c = await switch.complete("r", "hello")
    assert (c.text, c.model) == (ANSWER, "primary")
    assert upstream.count("primary") == 2 and upstream.count("backup") == 0
    assert clock.sleeps == [wait]
    assert c.trace is not None
    assert [s.status for s in c.trace.attempts()] == ["error", "ok"]
    assert c.trace.attempts()[1].attributes["llmswitch.retry_wait_s"] == wait
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "error", error_type), ("primary", "ok", None)]
    assert rows[1]["retry_wait_s"] == wait and rows[1]["served"] == 1
    assert rows[0]["request_id"] == rows[1]["request_id"]


async def test_persistent_failure_falls_back_after_retries(
        http_switch: Make, upstream: MockUpstream, clock: FakeClock, tmp_path: Path) -> None:
    upstream.script("primary", ["503"])
    switch = http_switch(retries=2)
    c = await switch.complete("r", "hello")
    assert c.model == "backup" and upstream.count("primary") == 3
    assert clock.sleeps == [0.25, 0.5]
    assert c.trace is not None and c.trace.attributes["llmswitch.chosen"] == "backup"
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "error", "overloaded")] * 3 + [
        ("backup", "ok", None)]
    assert rows[0]["http_status"] == 503
    assert rows[-1]["cost_usd"] > 0


async def test_hang_past_timeout_falls_back(http_switch: Make, upstream: MockUpstream,
                                            tmp_path: Path) -> None:
    upstream.script("primary", ["hang"])
    switch = http_switch(retries=0, timeout=0.3)
    c = await switch.complete("r", "hello")
    assert c.model == "backup"
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "error", "timeout"), ("backup", "ok", None)]
    assert rows[0]["latency_ms"] >= 250


async def test_bad_request_is_not_retried_nor_fallen_back(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path) -> None:
    upstream.script("primary", ["400"])
    switch = http_switch(retries=3)
    with pytest.raises(BadRequestError) as info:
        await switch.complete("r", "hello")
    assert upstream.count("primary") == 1 and upstream.count("backup") == 0
    assert info.value.trace is not None and info.value.trace.kind == "strategy"
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "error", "bad_request")]


async def test_everything_down_raises_one_error_with_every_cause(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path) -> None:
    upstream.script("primary", ["500"])
    upstream.script("backup", ["429"])
    switch = http_switch(retries=1)
    with pytest.raises(AllAttemptsFailedError) as info:
        await switch.complete("r", "hello")
    assert [e.type for e in info.value.errors] == ["overloaded"] * 2 + ["rate_limited"] * 2
    rows = await ledger_rows(switch, tmp_path)
    assert len(rows) == 4 and all(r["status"] == "error" for r in rows)
    assert len({r["request_id"] for r in rows}) == 1


async def stream_all(switch: Switch) -> tuple[str, list[Any]]:
    events = [e async for e in switch.stream("r", "hello")]
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events


@pytest.mark.parametrize("fault", ["cut_before", "429", "reset"])
async def test_stream_fault_before_first_token_switches_transparently(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path, fault: str) -> None:
    upstream.script("primary", [fault])
    switch = http_switch(retries=0)
    text, events = await stream_all(switch)
    end = events[-1]
    assert isinstance(end, StreamEnd) and text == end.completion.text == ANSWER
    assert not any(isinstance(e, StreamNotice) for e in events)
    assert end.completion.model == "backup"
    rows = await ledger_rows(switch, tmp_path)
    assert [r["status"] for r in rows] == ["error", "ok"]


@pytest.mark.parametrize(("fault", "error_type"), [("cut_after", "connection"),
                                                    ("malformed", "bad_response")])
async def test_stream_fault_after_first_token_continues_on_backup(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path, fault: str,
        error_type: str) -> None:
    upstream.script("primary", [fault])
    switch = http_switch(retries=0)
    text, events = await stream_all(switch)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    partial = "The quick " if fault == "cut_after" else "The "
    assert text == end.completion.text == ANSWER  # no piece lost, none repeated
    assert [e.kind for e in events if isinstance(e, StreamNotice)] == ["failover"]
    continued = upstream.seen[-1].body["messages"]
    assert continued[-2] == {"role": "assistant", "content": partial}
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "cut", error_type), ("backup", "ok", None)]
    # The cut attempt is billed for what it streamed: estimated, never zero.
    assert rows[0]["input_tokens"] > 0 and rows[0]["output_tokens"] > 0
    assert rows[0]["usage_estimated"] == 1


async def test_stream_fault_after_first_token_errors_when_configured(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path) -> None:
    upstream.script("primary", ["cut_after"])
    switch = http_switch(retries=0, on_stream_error="error")
    seen: list[str] = []
    with pytest.raises(AllAttemptsFailedError):
        async for e in switch.stream("r", "hello"):
            if isinstance(e, TextDelta):
                seen.append(e.text)
    assert "".join(seen) == "The quick " and upstream.count("backup") == 0
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "cut", "connection")]


async def test_late_cut_bills_the_usage_reported_before_the_cut(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path) -> None:
    upstream.script("primary", ["cut_late"])
    switch = http_switch(retries=0)
    _, events = await stream_all(switch)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    rows = await ledger_rows(switch, tmp_path)
    failed = rows[0]
    assert failed["status"] == "cut" and failed["output_tokens"] > 0
    assert failed["cost_usd"] > 0
    assert end.completion.cost_usd == pytest.approx(sum(r["cost_usd"] for r in rows))


async def test_slow_drip_is_served_whole(http_switch: Make, upstream: MockUpstream,
                                         tmp_path: Path) -> None:
    upstream.script("primary", ["drip"])
    switch = http_switch(retries=0, timeout=5)
    text, events = await stream_all(switch)
    end = events[-1]
    assert isinstance(end, StreamEnd) and text == ANSWER and end.completion.model == "primary"
    assert sum(isinstance(e, TextDelta) for e in events) == len(ANSWER.split(" "))
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "ok", None)]
    assert rows[0]["ttft_ms"] is not None and rows[0]["latency_ms"] > rows[0]["ttft_ms"]


async def test_drip_past_the_call_timeout_ends_with_an_explicit_error(
        http_switch: Make, upstream: MockUpstream, tmp_path: Path) -> None:
    upstream.script("primary", ["drip"])
    upstream.drip_s = 0.1  # each gap is under the read timeout; the whole call is not
    switch = http_switch(retries=0, timeout=5, on_stream_error="error")
    seen: list[str] = []
    with pytest.raises(AllAttemptsFailedError) as info:
        async for e in switch.stream("r", "hello", timeout=0.35):
            if isinstance(e, TextDelta):
                seen.append(e.text)
    assert [e.type for e in info.value.errors] == ["timeout"]
    assert 0 < len(seen) < len(ANSWER.split(" ")) and upstream.count("backup") == 0
    rows = await ledger_rows(switch, tmp_path)
    assert outline(rows) == [("primary", "cut", "timeout")]
