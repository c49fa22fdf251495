"""Pure tests of the retry policy, deadline, circuit breaker and rate limiter."""

from __future__ import annotations

import pytest

from llmswitch import (
    AllAttemptsFailedError,
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    OverloadedError,
    RateLimitedError,
    TimeoutError,
)
from llmswitch.resilience.breaker import BreakerPolicy, MemoryBreakerStore, counts_against
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.ratelimit import MemoryLimitStore
from llmswitch.resilience.retry import Deadline, RetryPolicy, is_retryable


def test_full_jitter_is_bounded_by_the_capped_exponential() -> None:
    p = RetryPolicy(base=1, cap=5, multiplier=2)
    assert [p.backoff(n, lambda: 1.0) for n in range(5)] == [1, 2, 4, 5, 5]
    assert p.backoff(3, lambda: 0.0) == 0


def test_retry_after_wins_when_longer_and_is_capped() -> None:
    p = RetryPolicy(base=1, max_retry_after=10)
    assert p.wait(0, RateLimitedError("x", retry_after=4), lambda: 0.5) == 4
    assert p.wait(0, RateLimitedError("x", retry_after=400), lambda: 0.5) == 10
    assert p.wait(0, RateLimitedError("x"), lambda: 0.5) == 0.5


def test_only_retryable_types_are_retried() -> None:
    assert all(is_retryable(e) for e in (RateLimitedError("x"), OverloadedError("x"),
                                         TimeoutError("x"), ConnectionError("x")))
    assert not any(is_retryable(e) for e in (AuthenticationError("x"), BadRequestError("x"),
                                             AllAttemptsFailedError("x", []), ValueError()))


def test_deadline() -> None:
    clock = FakeClock()
    d = Deadline(clock, 10)
    assert d.allows(9) and not d.allows(10)
    clock.time += 10
    assert d.expired() and Deadline(clock, None).remaining() is None


async def test_breaker_opens_on_consecutive_failures_and_half_opens() -> None:
    clock = FakeClock()
    store, policy = MemoryBreakerStore(clock), BreakerPolicy(failures=3, cooldown=5)
    for _ in range(3):
        ticket = await store.allow("k", policy)
        assert ticket == "closed"
        await store.record("k", ticket, False, policy)
    assert await store.allow("k", policy) is None and await store.state("k", policy) == "open"
    clock.time += 5
    probe = await store.allow("k", policy)
    assert probe == "probe"                          # the probe
    assert await store.allow("k", policy) is None    # only one probe at a time
    await store.record("k", probe, False, policy)    # probe failed: open again
    assert await store.state("k", policy) == "open"
    clock.time += 5
    probe = await store.allow("k", policy)
    assert probe == "probe"
    await store.record("k", probe, True, policy)
    assert await store.state("k", policy) == "closed"


async def test_breaker_opens_on_error_rate_over_window() -> None:
    clock = FakeClock()
    store = MemoryBreakerStore(clock)
    policy = BreakerPolicy(failures=100, error_rate=0.5, min_calls=4, window=60)
    for ok in (True, False, True, False):
        await store.record("k", "closed", ok, policy)
    assert await store.state("k", policy) == "open"


def test_breaker_counts_only_deployment_health_errors() -> None:
    assert counts_against(OverloadedError("x")) and counts_against(AuthenticationError("x"))
    assert not counts_against(BadRequestError("x"))


async def test_rate_limits_rpm_and_tpm() -> None:
    clock = FakeClock()
    store = MemoryLimitStore(clock)
    assert (await store.acquire("k", 2, 100, 60)).admitted
    assert not (await store.acquire("k", 2, 100, 60)).admitted
    assert (await store.acquire("k", 2, 100, 40)).admitted
    full = await store.acquire("k", 2, 100, 0)
    assert not full.admitted and full.retry_after == 60
    clock.time += 60
    assert (await store.acquire("k", 2, 100, 100)).admitted


@pytest.mark.parametrize("bad", [{"retries": -1}, {"backoff": {"base": -1}},
                                 {"backoff": {"jitter": 1}}])
def test_bad_retry_options(bad: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy.from_options(bad.get("retries", 2), bad.get("backoff"))
