"""Routes inside routes keep the promises of each: a nested route that cannot start (its
circuits are open, its deployments over their RPM/TPM budget) lets the outer route move on or
wait, as a plain target would."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import (
    AllAttemptsFailedError,
    NoRouteError,
    OverloadedError,
    RateLimitedError,
    Switch,
)
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel

BREAKER = {"failures": 1, "cooldown": 30}


def make(routes: dict[str, Any], clock: FakeClock, **models: FakeModel) -> Switch:
    return Switch({"routes": routes, "observe": {"ledger": False}}, models=models,
                  services={SERVICE_KEY: Resilience(clock=clock, rng=lambda: 0.0)},
                  observers=[])


@pytest.mark.parametrize("strategy", ["fallback", "loadbalance"])
async def test_outer_fallback_moves_past_a_nested_route_whose_circuits_are_open(
        strategy: str) -> None:
    """Once the nested route's only target opened its circuit, every later call of the outer
    route failed with "circuit open, skipped" instead of going to its healthy backup."""
    clock = FakeClock()
    down = FakeModel("down", [OverloadedError("busy")])
    switch = make({"inner": {"strategy": strategy, "targets": ["down"], "retries": 0,
                             "breaker": BREAKER},
                   "outer": {"strategy": "fallback", "targets": ["inner", "backup"],
                             "retries": 0}},
                  clock, down=down, backup=FakeModel("backup", ["from backup"]))
    for _ in range(3):
        assert (await switch.complete("outer", "hi")).text == "from backup"
    assert down.call_count == 1  # the open circuit kept the others away from it
    trace = (await switch.complete("outer", "hi")).trace
    assert trace is not None and trace.attributes["llmswitch.chosen"] == "backup"


async def test_a_balancer_that_cannot_start_raises_the_rate_limit_itself() -> None:
    """Over its RPM budget (max_wait 0) the balancer says `rate_limited` with `retry_after`,
    as documented, so an outer fallback waits for the slot when that fits."""
    clock = FakeClock()
    model = FakeModel("m", ["ok"])
    switch = make({"lb": {"strategy": "loadbalance", "max_wait": 0,
                          "targets": [{"model": "m", "rpm": 1}]},
                   "outer": {"strategy": "fallback", "targets": ["lb"], "retries": 1,
                             "backoff": {"base": 0, "max_retry_after": 120}}},
                  clock, m=model)
    await switch.complete("lb", "hi")
    with pytest.raises(RateLimitedError) as info:
        await switch.complete("lb", "hi")
    assert info.value.retry_after == pytest.approx(60)
    assert info.value.trace is not None  # the route's span, with the refusal
    answer = await switch.complete("outer", "hi")
    assert answer.text == "ok" and clock.sleeps == [pytest.approx(60)]
    assert model.call_count == 2


async def test_a_balancer_with_every_circuit_open_says_no_route() -> None:
    clock = FakeClock()
    switch = make({"lb": {"strategy": "loadbalance", "retries": 0, "breaker": BREAKER,
                          "targets": ["down"]}},
                  clock, down=FakeModel("down", [OverloadedError("busy")]))
    with pytest.raises(AllAttemptsFailedError):
        await switch.complete("lb", "hi")  # an attempt was made: every cause, as before
    with pytest.raises(NoRouteError, match="no deployment available"):
        await switch.complete("lb", "hi")
