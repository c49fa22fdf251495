"""Every way an attempt ends resolves what it held: the half-open probe of a circuit breaker
and a load balancer's in-flight count (issue 12, item 1). A probe that ends in an error that does
not count against the breaker, is cancelled, or is a stream the caller abandons frees the slot."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from tests.resilience.scripted import BLOCK, Scripted, until

from llmswitch import (
    BadRequestError,
    ContextTooLongError,
    OverloadedError,
    Switch,
    TextDelta,
)
from llmswitch.models import Model
from llmswitch.resilience.breaker import BreakerPolicy, MemoryBreakerStore
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel

BREAKER = {"failures": 1, "cooldown": 10}


def switch_for(strategy: str, models: dict[str, Model], state: Resilience,
               **options: Any) -> Switch:
    route = {"strategy": strategy, "targets": list(models), "retries": 1 if strategy ==
             "loadbalance" else 0, "breaker": BREAKER, **options}
    return Switch({"routes": {"r": route}, "observe": {"ledger": False}}, models=models,
                  services={SERVICE_KEY: state}, observers=[])


def state_for(clock: FakeClock) -> Resilience:
    return Resilience(clock=clock, rng=lambda: 0.0)  # weighted pick: always "a" first


async def open_then_cool(switch: Switch, clock: FakeClock) -> None:
    """The first call fails on `a` (its circuit opens) and is served by `b`; then the cooldown
    passes, so the next call is `a`'s half-open probe."""
    assert (await switch.complete("r", "hi")).model == "b"
    clock.time += 10


async def cancel_when_started(switch: Switch, model: Scripted) -> None:
    task = asyncio.ensure_future(switch.complete("r", "hi"))
    await until(model.started.is_set)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("strategy", ["fallback", "loadbalance"])
@pytest.mark.parametrize("error", [BadRequestError("bad"), ContextTooLongError("too long")])
async def test_probe_ending_in_a_non_counting_error_frees_the_slot(
        strategy: str, error: Exception) -> None:
    clock = FakeClock()
    a = Scripted("a", [OverloadedError("down"), error, "back"])
    b = Scripted("b", ["from b"])
    state = state_for(clock)
    switch = switch_for(strategy, {"a": a, "b": b}, state)
    await open_then_cool(switch, clock)
    with contextlib.suppress(BadRequestError):  # loadbalance raises it, fallback falls back
        await switch.complete("r", "hi")
    assert a.call_count == 2
    c = await switch.complete("r", "hi")        # `a` is probed again, and closes
    assert (c.model, a.call_count) == ("a", 3)
    assert await state.store.state("a", BreakerPolicy(**BREAKER)) == "closed"
    assert state.inflight.get("a", 0) == 0 and state.inflight.get("b", 0) == 0


@pytest.mark.parametrize("strategy", ["fallback", "loadbalance"])
async def test_cancelled_probe_frees_the_slot_and_the_inflight_count(strategy: str) -> None:
    clock = FakeClock()
    a = Scripted("a", [OverloadedError("down"), BLOCK, "back"])
    b = Scripted("b", ["from b"])
    state = state_for(clock)
    switch = switch_for(strategy, {"a": a, "b": b}, state)
    await open_then_cool(switch, clock)
    a.started.clear()
    await cancel_when_started(switch, a)
    assert a.call_count == 2 and state.inflight.get("a", 0) == 0
    c = await switch.complete("r", "hi")
    assert (c.model, a.call_count) == ("a", 3)


@pytest.mark.parametrize("strategy", ["fallback", "loadbalance"])
async def test_abandoned_probe_stream_frees_the_slot_and_the_inflight_count(
        strategy: str) -> None:
    clock = FakeClock()
    a = FakeModel("a", [OverloadedError("down"), "one two three four", "back"])
    b = FakeModel("b", ["from b"])
    state = state_for(clock)
    switch = switch_for(strategy, {"a": a, "b": b}, state)
    await open_then_cool(switch, clock)
    events = switch.model("r").stream(switch.request("hi"))
    async for event in events:
        if isinstance(event, TextDelta):
            break
    await events.aclose()  # type: ignore[attr-defined]
    assert a.call_count == 2 and state.inflight.get("a", 0) == 0
    c = await switch.complete("r", "hi")
    assert (c.model, a.call_count) == ("a", 3)


async def test_inflight_counts_never_leak() -> None:
    """least_inflight: cancelled calls, non-counting errors and abandoned streams all give
    their count back, so the policy keeps spreading calls."""
    a = Scripted("a", [BLOCK])
    b = Scripted("b", [BadRequestError("no")])
    state = Resilience(clock=FakeClock())
    switch = switch_for("loadbalance", {"a": a, "b": b}, state, policy="least_inflight",
                        breaker=False)
    tasks = [asyncio.ensure_future(switch.complete("r", "hi")) for _ in range(4)]
    await until(lambda: a.call_count + b.call_count == 4)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert state.inflight == {"a": 0, "b": 0}
    stream_model = FakeModel("s", ["one two three"])
    switch = switch_for("loadbalance", {"s": stream_model}, state, breaker=False)
    events = switch.model("r").stream(switch.request("hi"))
    async for _ in events:
        break
    await events.aclose()  # type: ignore[attr-defined]
    assert state.inflight["s"] == 0


async def test_store_release_frees_only_the_probe() -> None:
    clock = FakeClock()
    store, policy = MemoryBreakerStore(clock), BreakerPolicy(failures=1, cooldown=5)
    early = await store.allow("k", policy)          # an ordinary call, still in flight
    assert early == "closed"
    await store.record("k", "closed", False, policy)
    clock.time += 5
    probe = await store.allow("k", policy)
    assert probe == "probe" and await store.allow("k", policy) is None
    await store.release("k", early, policy)           # a stale ordinary pass frees nothing
    await store.record("k", early, True, policy)      # nor does a stale outcome close it
    assert await store.allow("k", policy) is None
    await store.release("k", probe, policy)           # the probe ended without a verdict
    assert await store.state("k", policy) == "half_open"
    assert await store.allow("k", policy) == "probe"  # the next call probes again


class FailingSettle:
    """A limit store (e.g. a networked one) whose `settle` fails once it is told to."""

    def __init__(self, clock: FakeClock) -> None:
        from llmswitch.resilience.ratelimit import MemoryLimitStore

        self.inner = MemoryLimitStore(clock)
        self.broken = False

    async def acquire(self, key: str, rpm: int | None, tpm: int | None, tokens: int) -> Any:
        return await self.inner.acquire(key, rpm, tpm, tokens)

    async def settle(self, reservation: Any, tokens: int) -> None:
        if self.broken:
            raise OSError("limit store unreachable")
        await self.inner.settle(reservation, tokens)

    async def release(self, reservation: Any) -> None:
        await self.inner.release(reservation)


async def test_a_failing_limit_store_does_not_keep_the_probe() -> None:
    """The breaker's ticket is given back even when the limit store fails while settling: the
    probe's verdict was lost, and the circuit stayed half-open (no traffic) for good."""
    clock = FakeClock()
    limits = FailingSettle(clock)
    state = Resilience(clock=clock, rng=lambda: 0.0, limits=limits)
    a = Scripted("a", [OverloadedError("down"), "back"])
    switch = Switch({"routes": {"r": {"strategy": "loadbalance", "retries": 1,
                                      "breaker": BREAKER, "targets": [
                                          {"model": "a", "tpm": 100_000}, "b"]}},
                     "observe": {"ledger": False}},
                    models={"a": a, "b": Scripted("b", ["from b"])},
                    services={SERVICE_KEY: state}, observers=[])
    await open_then_cool(switch, clock)
    limits.broken = True
    with pytest.raises(OSError, match="unreachable"):
        await switch.complete("r", "hi")      # the probe answered; settling it failed
    assert a.call_count == 2 and state.inflight.get("a", 0) == 0
    assert await state.store.state("a", BreakerPolicy(**BREAKER)) == "closed"
