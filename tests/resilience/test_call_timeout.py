"""The call's `timeout` bounds the whole call through a route (issue 12, item 4, strategy
level), and Retry-After on a 503/529 is honoured like on a 429 (item 8)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest
from tests.resilience.scripted import Scripted

from llmswitch import (
    AllAttemptsFailedError,
    OverloadedError,
    RateLimitedError,
    StreamEnd,
    Switch,
    TimeoutError,
)
from llmswitch.adapters.http_errors import error_for_status
from llmswitch.models import Model
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


def route(strategy: str, models: dict[str, Model], clock: FakeClock, **options: Any) -> Switch:
    config = {"routes": {"r": {"strategy": strategy, "targets": list(models), **options}},
              "observe": {"ledger": False}}
    return Switch(config, models=models, observers=[],
                  services={SERVICE_KEY: Resilience(clock=clock, rng=lambda: 0.5)})


def timeouts(model: Scripted) -> list[float | None]:
    return [r.settings.timeout for r in model.calls]


async def test_a_retry_after_longer_than_the_call_timeout_is_not_waited_for() -> None:
    clock = FakeClock()
    a = Scripted("a", [RateLimitedError("slow down", retry_after=10)])
    switch = route("fallback", {"a": a}, clock, retries=2)
    with pytest.raises(AllAttemptsFailedError) as info:
        await switch.complete("r", "hi", timeout=3)
    assert clock.sleeps == [] and a.call_count == 1
    causes = info.value.errors
    assert isinstance(causes[0], RateLimitedError) and causes[0].retry_after == 10
    assert isinstance(causes[-1], TimeoutError) and "10s" in causes[-1].message


async def test_a_wait_that_does_not_fit_falls_back_at_once() -> None:
    clock = FakeClock()
    a = Scripted("a", [RateLimitedError("slow down", retry_after=10)])
    b = Scripted("b", ["from b"])
    c = await route("fallback", {"a": a, "b": b}, clock, retries=2).complete(
        "r", "hi", timeout=3)
    assert c.model == "b" and clock.sleeps == [] and timeouts(b) == [3]


async def test_each_attempt_gets_what_is_left_of_the_call_timeout() -> None:
    clock = FakeClock()
    busy = OverloadedError("busy")
    a = Scripted("a", [busy, busy, busy, "late"], clock=clock, spends=1.0)
    switch = route("fallback", {"a": a}, clock, retries=3, backoff={"base": 0.5, "cap": 0.5})
    request = switch.request("hi", timeout=5)
    c = await switch.model("r").complete(request)
    assert c.text == "late" and clock.sleeps == [0.25, 0.25, 0.25]
    assert timeouts(a) == [5, 3.75, 2.5, 1.25]
    assert request.settings.timeout == 5          # the caller's request is never changed


async def test_no_attempt_starts_when_the_time_is_spent() -> None:
    clock = FakeClock()
    a = Scripted("a", [OverloadedError("busy")], clock=clock, spends=3.0)
    b = Scripted("b", ["from b"])
    with pytest.raises(AllAttemptsFailedError) as info:
        await route("fallback", {"a": a, "b": b}, clock, retries=1).complete(
            "r", "hi", timeout=3)
    assert a.call_count == 1 and b.call_count == 0
    assert isinstance(info.value.errors[-1], TimeoutError)


@pytest.mark.parametrize(("deadline", "timeout", "first"), [(2, 5, 2), (5, 2, 2), (4, None, 4)])
async def test_route_deadline_and_call_timeout_compose(deadline: float, timeout: float | None,
                                                       first: float) -> None:
    a = Scripted("a", ["ok"])
    switch = route("fallback", {"a": a}, FakeClock(), deadline=deadline)
    await switch.complete("r", "hi", timeout=timeout)
    assert timeouts(a) == [first]


async def test_stream_attempts_share_the_call_timeout() -> None:
    clock = FakeClock()
    a = Scripted("a", [OverloadedError("busy")], clock=clock, spends=2.0)
    b = Scripted("b", ["from b"])
    events = [e async for e in route("fallback", {"a": a, "b": b}, clock, retries=0).stream(
        "r", "hi", timeout=5)]
    assert isinstance(events[-1], StreamEnd) and timeouts(b) == [3]


async def test_loadbalance_bounds_its_attempts_and_slot_waits_by_the_call_timeout() -> None:
    clock = FakeClock()
    a = Scripted("a", [OverloadedError("busy")], clock=clock, spends=2.0)
    b = Scripted("b", ["from b"])
    switch = route("loadbalance", {"a": a, "b": b}, clock, policy="least_inflight")
    assert (await switch.complete("r", "hi", timeout=5)).model == "b"
    assert timeouts(a) == [5] and timeouts(b) == [3]
    limited = {"a": FakeModel("a")}
    switch = Switch({"routes": {"r": {"strategy": "loadbalance", "max_wait": 120,
                                      "targets": [{"model": "a", "rpm": 1}]}},
                     "observe": {"ledger": False}}, models=limited, observers=[],
                    services={SERVICE_KEY: Resilience(clock=clock)})
    await switch.complete("r", "hi")
    with pytest.raises(RateLimitedError) as info:   # the slot frees in 60 s: not waited
        await switch.complete("r", "hi", timeout=3)
    assert clock.sleeps == []
    assert info.value.retry_after == pytest.approx(60)
    await switch.complete("r", "hi")                       # without a timeout it waits
    assert clock.sleeps == [pytest.approx(60)]


@pytest.mark.parametrize("status", [503, 529, 500])
def test_retry_after_is_read_on_overloaded_statuses(status: int) -> None:
    seconds = error_for_status(status, "busy", {"Retry-After": "7"})
    assert isinstance(seconds, OverloadedError) and seconds.retry_after == 7
    millis = error_for_status(status, "busy", {"retry-after-ms": "1500"})
    assert isinstance(millis, OverloadedError) and millis.retry_after == 1.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    dated = error_for_status(status, "busy", {"retry-after": date})
    assert isinstance(dated, OverloadedError) and 20 < (dated.retry_after or 0) <= 30
    unsaid = error_for_status(status, "busy", {})
    assert isinstance(unsaid, OverloadedError) and unsaid.retry_after is None


async def test_retry_after_on_overloaded_is_honoured_by_retry_and_fallback() -> None:
    clock = FakeClock()
    a = FakeModel("a", [OverloadedError("busy", retry_after=7.0), "ok"])
    c = await route("fallback", {"a": a}, clock).complete("r", "hi")
    assert c.text == "ok" and clock.sleeps == [7.0]
    a = FakeModel("a", [OverloadedError("busy", retry_after=7.0)])
    b = FakeModel("b", ["from b"])
    c = await route("fallback", {"a": a, "b": b}, clock).complete("r", "hi", timeout=5)
    assert c.model == "b" and clock.sleeps == [7.0]  # no second wait: 7 s does not fit in 5


@pytest.mark.parametrize("strategy", ["fallback", "loadbalance"])
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_model_that_ignores_its_timeout_is_stopped_by_the_route(
        strategy: str, streamed: bool) -> None:
    """A custom model that never looks at `timeout` ran the route's call for its full 60 s
    under `timeout=0.5`: the route itself now stops the attempt once the call's time is spent
    (a little later than the model's own timeout would, so that one speaks first)."""
    import asyncio

    slow = FakeModel("slow", ["late"], delay=60)
    switch = Switch({"routes": {"r": {"strategy": strategy, "targets": ["slow"]}},
                     "observe": {"ledger": False}}, models={"slow": slow}, observers=[])

    async def call() -> None:
        if streamed:
            async for _ in switch.stream("r", "hi", timeout=0.5):
                pass
        else:
            await switch.complete("r", "hi", timeout=0.5)

    with pytest.raises(AllAttemptsFailedError) as info:
        await asyncio.wait_for(call(), 30)  # bounded: fails the test instead of hanging
    causes = info.value.errors
    assert isinstance(causes[0], TimeoutError) and "slow" in str(causes[0])
    assert slow.call_count == 1
