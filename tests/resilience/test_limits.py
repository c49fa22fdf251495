"""RPM/TPM limits (issue 12, item 6): the limit store is awaited and its answer honoured;
admission counts the request's maximum output and settles the actual usage on every way out."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from tests.resilience.scripted import BLOCK, Scripted, guarded, until

from llmswitch import AllAttemptsFailedError, RateLimitedError, Switch, TextDelta
from llmswitch.models import Model
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.results import Usage
from llmswitch.testing import FakeModel


def balancer(targets: list[Any], models: dict[str, Model], state: Resilience,
             **options: Any) -> Switch:
    route = {"strategy": "loadbalance", "targets": targets, "max_wait": 0, "breaker": False,
             **options}
    return Switch({"routes": {"lb": route}, "observe": {"ledger": False}}, models=models,
                  services={SERVICE_KEY: state}, observers=[])


async def outcomes(switch: Switch, n: int, **settings: Any) -> list[str]:
    """Each call's serving model, or the error type."""
    out = []
    for _ in range(n):
        try:
            out.append((await switch.complete("lb", "hi", **settings)).model)
        except AllAttemptsFailedError as exc:
            out.append(getattr(exc.errors[-1], "type", "?"))
        except RateLimitedError as exc:  # refused before any attempt: the refusal itself
            out.append(exc.type)
    return out


class AwaitingStore:
    """A store whose every method really suspends (as a networked one would), delegating to
    the in-process store."""

    def __init__(self, clock: FakeClock) -> None:
        from llmswitch.resilience.ratelimit import MemoryLimitStore

        self.inner = MemoryLimitStore(clock)
        self.calls: list[str] = []

    async def acquire(self, key: str, rpm: int | None, tpm: int | None, tokens: int) -> Any:
        self.calls.append("acquire")
        await asyncio.sleep(0)
        return await self.inner.acquire(key, rpm, tpm, tokens)

    async def settle(self, reservation: Any, tokens: int) -> None:
        self.calls.append("settle")
        await asyncio.sleep(0)
        await self.inner.settle(reservation, tokens)

    async def release(self, reservation: Any) -> None:
        self.calls.append("release")
        await asyncio.sleep(0)
        await self.inner.release(reservation)


async def test_an_awaited_store_is_honoured_under_concurrency() -> None:
    clock = FakeClock()
    store = AwaitingStore(clock)
    state = Resilience(clock=clock, limits=store)
    switch = balancer([{"model": "a", "rpm": 10}], {"a": FakeModel("a")}, state)
    results = await asyncio.gather(*(switch.complete("lb", "hi") for _ in range(100)),
                                   return_exceptions=True)
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RateLimitedError)]
    assert len(served) == 10 and len(refused) == 90
    assert refused[0].retry_after == pytest.approx(60)
    assert store.calls.count("acquire") == 100


async def test_tpm_settles_actual_usage() -> None:
    """The issue's case: 600 tokens used per call must not pass `tpm: 100` repeatedly."""
    clock = FakeClock()
    a = Scripted("a", ["answer"], usage=Usage(100, 500))
    switch = balancer([{"model": "a", "tpm": 100}], {"a": a}, Resilience(clock=clock))
    assert await outcomes(switch, 3) == ["a", "rate_limited", "rate_limited"]
    clock.time += 60
    assert await outcomes(switch, 1) == ["a"]


async def test_tpm_reserves_the_maximum_output_while_in_flight() -> None:
    clock = FakeClock()
    a, b = Scripted("a", [BLOCK]), Scripted("b", ["from b"])
    state = Resilience(clock=clock, rng=lambda: 0.0)
    switch = balancer([{"model": "a", "tpm": 1500}, "b"], {"a": a, "b": b}, state)
    first = asyncio.ensure_future(switch.complete("lb", "hi"))   # reserves 1 + 1024 on a
    await until(a.started.is_set)
    second = await guarded(switch.complete("lb", "hi"))                 # 1025 more would pass 1500
    assert second.model == "b" and a.call_count == 1
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    a.script = ["from a"]                                        # the cancelled call is
    assert (await switch.complete("lb", "hi")).model == "a"     # settled at its input only


async def test_max_tokens_replaces_the_default_output_reservation() -> None:
    clock = FakeClock()
    a, b = Scripted("a", [BLOCK]), Scripted("b", ["from b"])
    switch = balancer([{"model": "a", "tpm": 1500}, "b"], {"a": a, "b": b},
                      Resilience(clock=clock, rng=lambda: 0.0))
    tasks = [asyncio.ensure_future(switch.complete("lb", "hi", max_tokens=n))
             for n in (1200, 200)]                               # 1201 + 201 fit in 1500
    await until(lambda: a.call_count == 2)
    assert (await guarded(switch.complete("lb", "hi", max_tokens=200))).model == "b"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_errors_and_abandoned_streams_settle_their_reservation() -> None:
    clock = FakeClock()
    from llmswitch import OverloadedError

    a = Scripted("a", [OverloadedError("down")])
    switch = balancer([{"model": "a", "tpm": 1100}], {"a": a}, Resilience(clock=clock),
                      retries=0)
    for _ in range(3):  # each failed call is settled at its input, freeing its output share
        with pytest.raises(AllAttemptsFailedError) as info:
            await switch.complete("lb", "hi")
        assert getattr(info.value.errors[-1], "type", None) == "overloaded"
    s = FakeModel("s", ["one two three four"])
    switch = balancer([{"model": "s", "tpm": 1100}], {"s": s}, Resilience(clock=clock))
    for _ in range(3):
        events = switch.model("lb").stream(switch.request("hi"))
        async for event in events:
            if isinstance(event, TextDelta):
                break
        await events.aclose()  # type: ignore[attr-defined]
    assert s.call_count == 3


async def test_memory_store_window_settle_and_release() -> None:
    from llmswitch.resilience.ratelimit import MemoryLimitStore

    clock = FakeClock()
    store = MemoryLimitStore(clock)
    first = await store.acquire("k", 2, 100, 60)
    assert first.admitted and first.retry_after == 0
    refused = await store.acquire("k", 2, 100, 60)
    assert not refused.admitted and refused.retry_after == 60 and refused.reservation is None
    await store.settle(first.reservation, 30)        # it used less than it reserved
    second = await store.acquire("k", 2, 100, 60)
    assert second.admitted
    clock.time += 20
    third = await store.acquire("k", 2, 100, 0)
    assert not third.admitted and third.retry_after == 40   # rpm: the oldest leaves at 60
    await store.release(second.reservation)           # never sent: frees its request and tokens
    assert (await store.acquire("k", 2, 100, 70)).admitted
    clock.time += 40                                  # the first call left the window
    assert (await store.acquire("k", 2, 100, 0)).admitted
    big = await MemoryLimitStore(clock).acquire("k", None, 100, 5000)
    assert big.admitted                               # larger than tpm: admitted when empty
