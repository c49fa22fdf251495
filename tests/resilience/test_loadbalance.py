"""Load balancing: policies, RPM limits, circuits, failover, bad config."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from llmswitch import (
    AllAttemptsFailedError,
    BadRequestError,
    ConfigError,
    OverloadedError,
    StreamEnd,
    Switch,
    TextDelta,
)
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


def make(route: dict[str, Any], models: dict[str, FakeModel], state: Resilience) -> Switch:
    return Switch({"routes": {"lb": {"strategy": "loadbalance", **route}}}, models=models,
                  services={SERVICE_KEY: state}, observers=[])


def cycling(values: list[float]) -> Any:
    it = iter(values * 1000)
    return lambda: next(it)


async def test_weighted_split_follows_weights() -> None:
    models = {"a": FakeModel("a", ["a"]), "b": FakeModel("b", ["b"])}
    state = Resilience(clock=FakeClock(), rng=cycling([i / 100 for i in range(100)]))
    switch = make({"targets": [{"model": "a", "weight": 3}, "b"]}, models, state)
    served = Counter([(await switch.complete("lb", "hi")).model for _ in range(100)])
    assert served == {"a": 75, "b": 25}


async def test_least_inflight_spreads_concurrent_calls() -> None:
    models = {n: FakeModel(n, [n], delay=0.01) for n in ("a", "b", "c")}
    switch = make({"targets": list(models), "policy": "least_inflight"}, models,
                  Resilience(clock=FakeClock()))
    done = await asyncio.gather(*(switch.complete("lb", "hi") for _ in range(9)))
    assert Counter(c.model for c in done) == {"a": 3, "b": 3, "c": 3}


async def test_latency_policy_prefers_the_fastest_after_exploring() -> None:
    models = {"slow": FakeModel("slow", ["s"], delay=0.02), "fast": FakeModel("fast", ["f"])}
    switch = make({"targets": ["slow", "fast"], "policy": "latency"}, models,
                  Resilience(clock=FakeClock()))
    served = [(await switch.complete("lb", "hi")).model for _ in range(6)]
    assert served[:2] == ["slow", "fast"] and set(served[2:]) == {"fast"}


async def test_rpm_limit_moves_calls_to_the_other_deployment_then_waits() -> None:
    clock = FakeClock()
    models = {"a": FakeModel("a", ["a"]), "b": FakeModel("b", ["b"])}
    switch = make({"targets": [{"model": "a", "rpm": 2}, {"model": "b", "rpm": 1}],
                   "policy": "least_inflight", "max_wait": 120}, models, Resilience(clock=clock))
    served = [(await switch.complete("lb", "hi")).model for _ in range(3)]
    assert Counter(served) == {"a": 2, "b": 1} and clock.sleeps == []
    c = await switch.complete("lb", "hi")  # all budgets spent: wait for the oldest slot
    assert clock.sleeps == [60.0] and c.trace is not None
    assert c.trace.attributes["llmswitch.retry_wait_s"] == 60.0


async def test_failure_retries_on_another_deployment_and_opens_its_circuit() -> None:
    models = {"a": FakeModel("a", [OverloadedError("down")]), "b": FakeModel("b", ["b"])}
    state = Resilience(clock=FakeClock(), rng=lambda: 0.0)  # weighted pick: always "a" first
    switch = make({"targets": ["a", "b"], "breaker": {"failures": 2, "cooldown": 10}},
                  models, state)
    for _ in range(2):
        c = await switch.complete("lb", "hi")
        assert c.model == "b"
    c = await switch.complete("lb", "hi")
    assert models["a"].call_count == 2 and c.trace is not None
    assert [s.attributes["llmswitch.target"] for s in c.trace.attempts()] == ["b"]


async def test_non_retryable_error_is_raised_as_is() -> None:
    models = {"a": FakeModel("a", [BadRequestError("no")]), "b": FakeModel("b", ["b"])}
    switch = make({"targets": ["a", "b"]}, models, Resilience(clock=FakeClock(),
                                                               rng=lambda: 0.0))
    with pytest.raises(BadRequestError):
        await switch.complete("lb", "hi")
    assert models["b"].call_count == 0


async def test_all_down_raises_all_failed() -> None:
    models = {n: FakeModel(n, [OverloadedError("down")]) for n in ("a", "b")}
    switch = make({"targets": ["a", "b"]}, models, Resilience(clock=FakeClock()))
    with pytest.raises(AllAttemptsFailedError) as info:
        await switch.complete("lb", "hi")
    assert [e.type for e in info.value.errors] == ["overloaded", "overloaded"]


async def test_stream_fails_over_before_first_token() -> None:
    models = {"a": FakeModel("a", [OverloadedError("down")]), "b": FakeModel("b", ["x y"])}
    switch = make({"targets": ["a", "b"]}, models, Resilience(clock=FakeClock(),
                                                               rng=lambda: 0.0))
    events = [e async for e in switch.stream("lb", "hi")]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "x y"
    assert isinstance(events[-1], StreamEnd) and events[-1].completion.model == "b"


@pytest.mark.parametrize(("route", "needle"), [
    ({"targets": [{"model": "a", "weight": -1}]}, r"routes\.lb: targets\[0\] has a negative"),
    ({"targets": ["a"], "weights": [-2]}, r"routes\.lb: targets\[0\] has a negative"),
    ({"targets": ["a"], "policy": "random"}, r"routes\.lb: policy"),
    ({"targets": [{"model": "a", "rpm": 0}]}, r"routes\.lb: targets\[0\]\.rpm"),
    ({"targets": [{"model": "zzz-unknown"}]}, r"routes\.lb: targets\[0\]: unknown model"),
])
def test_bad_config_is_rejected_at_load(route: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Switch({"routes": {"lb": {"strategy": "loadbalance", **route}}},
               models={"a": FakeModel("a")}, observers=[])
