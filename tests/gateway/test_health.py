"""Readiness, breaker state and ledger figures: the library accessors the gateway's
/readyz and /metrics read (Switch.breaker_states, Ledger.ping, Ledger.stats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch import ConfigError, OverloadedError, Switch
from llmswitch.observe.ledger import Ledger
from llmswitch.testing import FakeModel


async def test_breaker_states_show_a_target_whose_circuit_opened() -> None:
    config = {"observe": {"ledger": False}, "routes": {
        "r": {"strategy": "fallback", "targets": ["a", "b"], "retries": 0,
              "breaker": {"failures": 1, "cooldown": 600}},
        "quiet": {"strategy": "fallback", "targets": ["c"], "breaker": False}}}
    switch = Switch(config, models={
        "a": FakeModel("a", [OverloadedError("down")]), "b": FakeModel("b", ["ok"]),
        "c": FakeModel("c", ["ok"])})
    assert await switch.breaker_states() == {"a": "closed", "b": "closed"}
    out = await switch.complete("r", "hi")
    assert out.text == "ok"
    assert await switch.breaker_states() == {"a": "open", "b": "closed"}


def test_ledger_ping_answers_or_names_what_failed(tmp_path: Path) -> None:
    Ledger(str(tmp_path / "ok" / "l.sqlite")).ping()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        Ledger(str(blocker / "l.sqlite")).ping()
