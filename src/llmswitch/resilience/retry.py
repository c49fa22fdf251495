"""Retry policy: full-jitter exponential backoff, `retry_after` honoured, a per-request deadline.

Only errors whose type is retryable (rate limited, overloaded, timeout, connection, bad
response) are retried; authentication, bad request and the like never are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.errors import AllAttemptsFailedError, LLMSwitchError, RateLimitedError
from llmswitch.resilience.clock import Clock


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait between attempts on one target.

    The n-th retry waits `uniform(0, min(cap, base * multiplier**n))` ("full jitter"), or the
    provider's `retry_after` when it is longer (up to `max_retry_after`).
    """

    retries: int = 2
    base: float = 0.5
    cap: float = 20.0
    multiplier: float = 2.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.cap < 0 or self.multiplier < 1:
            raise ValueError("retries, base and cap must be >= 0 and multiplier >= 1")

    @classmethod
    def from_options(cls, retries: Any = 2, backoff: Any = None) -> RetryPolicy:
        """Build from route options: `retries: N`, `backoff: SECONDS | {base, cap, multiplier,
        max_retry_after}`. Raises ValueError/TypeError on bad values."""
        kw: dict[str, float] = {}
        if isinstance(backoff, Mapping):
            unknown = set(backoff) - {"base", "cap", "multiplier", "max_retry_after"}
            if unknown:
                raise ValueError(f"unknown backoff key(s) {', '.join(sorted(unknown))}")
            kw = {k: float(v) for k, v in backoff.items()}
        elif backoff is not None:
            kw = {"base": float(backoff)}
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError("retries must be a whole number")
        return cls(retries=retries, **kw)

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Full-jitter wait before retry number `retry` (0-based)."""
        ceiling = min(self.cap, self.base * self.multiplier ** retry)
        return ceiling * rng()

    def wait(self, retry: int, error: BaseException,
             rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retrying after `error`."""
        jitter = self.backoff(retry, rng)
        after = retry_after_of(error)
        if after is None:
            return jitter
        return max(jitter, min(after, self.max_retry_after))


def retry_after_of(error: BaseException) -> float | None:
    """The provider's requested wait, when the error carries one."""
    if isinstance(error, RateLimitedError):
        return error.retry_after
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether retrying the same target may help (by type, never by message)."""
    if isinstance(error, AllAttemptsFailedError):
        return False
    return isinstance(error, LLMSwitchError) and error.retryable


class Deadline:
    """A per-request time budget measured on a `Clock`; `None` seconds means no limit."""

    def __init__(self, clock: Clock, seconds: float | None) -> None:
        self.clock = clock
        self.seconds = seconds
        self.started = clock.now()

    def remaining(self) -> float | None:
        """Seconds left (never negative), or `None` without a limit."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (self.clock.now() - self.started))

    def expired(self) -> bool:
        """Whether the budget is spent."""
        left = self.remaining()
        return left is not None and left <= 0

    def allows(self, wait: float) -> bool:
        """Whether waiting `wait` seconds still leaves time for an attempt."""
        left = self.remaining()
        return left is None or wait < left
