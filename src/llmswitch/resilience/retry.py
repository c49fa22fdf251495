"""Retry policy: full-jitter exponential backoff, `retry_after` honoured, a per-request deadline.

Only errors whose type is retryable (rate limited, overloaded, timeout, connection, bad
response) are retried; authentication, bad request and the like never are.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.errors import (
    AllAttemptsFailedError,
    LLMSwitchError,
    OverloadedError,
    RateLimitedError,
    TimeoutError,
)
from llmswitch.request import Request
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
    """The provider's requested wait, when the error carries one (a 429, or a 503/529 that
    said `retry-after`)."""
    if isinstance(error, (RateLimitedError, OverloadedError)):
        return error.retry_after
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether retrying the same target may help (by type, never by message)."""
    if isinstance(error, AllAttemptsFailedError):
        return False
    return isinstance(error, LLMSwitchError) and error.retryable


CLIP_SLACK = 0.001
"""Seconds by which an attempt's timeout may exceed what is left (saves a copy per call)."""


class Deadline:
    """A per-request time budget measured on a `Clock`; `None` seconds means no limit.
    `what` names the budget in messages ("the call's timeout of 3s")."""

    def __init__(self, clock: Clock, seconds: float | None, what: str = "deadline") -> None:
        self.clock = clock
        self.seconds = seconds
        self.what = what
        self.started = clock.now()

    @classmethod
    def for_call(cls, clock: Clock, request: Request,
                 route_deadline: float | None = None) -> Deadline:
        """The whole call's budget: the request's `timeout` or the route's `deadline`,
        whichever is smaller."""
        timeout = request.settings.timeout
        if timeout is not None and (route_deadline is None or timeout <= route_deadline):
            return cls(clock, timeout, f"the call's timeout of {timeout:g}s")
        if route_deadline is not None:
            return cls(clock, route_deadline, f"the route's deadline of {route_deadline:g}s")
        return cls(clock, None)

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

    def clip(self, request: Request) -> Request | None:
        """The request for the next attempt: a copy whose `timeout` is what is left (the
        caller's request is never changed; returned as is when its timeout is within 1 ms of
        that, as on a first attempt), or `None` when no time is left."""
        left = self.remaining()
        current = request.settings.timeout
        if left is None or (current is not None and current <= left + CLIP_SLACK):
            return request
        if left <= 0:
            return None
        return dataclasses.replace(request, settings=dataclasses.replace(request.settings,
                                                                         timeout=left))

    def spent(self, route: str) -> TimeoutError:
        """The error noted when the budget ran out."""
        return TimeoutError(f"route {route}: {self.what} reached",
                            hint="raise the timeout or lower retries/backoff")

    def no_room(self, route: str, wait: float) -> TimeoutError:
        """The error noted when a wait does not fit in what is left."""
        left = self.remaining() or 0.0
        return TimeoutError(f"route {route}: a wait of {wait:g}s does not fit in the "
                            f"{left:.3g}s left of {self.what}",
                            hint="raise the timeout, or let the route fall back sooner")
