"""Circuit breakers per deployment: open after N failures in a row or an error rate over a
window, skip while open, let one probe through after a cooldown (half-open), close on success.

State lives behind `BreakerStore`, an async interface a shared store (e.g. Redis, for several
gateway replicas) can implement; `MemoryBreakerStore` keeps it in-process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from llmswitch.errors import AuthenticationError, LLMSwitchError, QuotaExceededError
from llmswitch.resilience.clock import Clock, SystemClock

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a circuit opens and how long it stays open."""

    failures: int = 5
    """Consecutive failures that open the circuit."""
    error_rate: float = 0.5
    """Failure share over `window` seconds that opens it (once `min_calls` were made)."""
    window: float = 60.0
    min_calls: int = 20
    cooldown: float = 30.0
    """Seconds open before one probe is let through."""

    def __post_init__(self) -> None:
        if self.failures < 1 or not 0 < self.error_rate <= 1 or self.window <= 0:
            raise ValueError("failures >= 1, 0 < error_rate <= 1 and window > 0 are required")
        if self.min_calls < 1 or self.cooldown < 0:
            raise ValueError("min_calls >= 1 and cooldown >= 0 are required")

    @classmethod
    def from_option(cls, value: Any) -> BreakerPolicy | None:
        """From a route's `breaker` option: `false` (off), `true`/absent (defaults) or a dict."""
        if value is False:
            return None
        if value is None or value is True:
            return cls()
        if not isinstance(value, Mapping):
            raise TypeError("breaker must be true, false or a mapping")
        unknown = set(value) - {"failures", "error_rate", "window", "min_calls", "cooldown"}
        if unknown:
            raise ValueError(f"unknown breaker key(s) {', '.join(sorted(unknown))}")
        return cls(**value)


def counts_against(error: BaseException) -> bool:
    """Whether an error says the deployment is unhealthy (not the request's fault)."""
    return isinstance(error, LLMSwitchError) and (
        error.retryable or isinstance(error, (AuthenticationError, QuotaExceededError))
    )


Ticket = str
"""What `BreakerStore.allow` hands out: `CLOSED` for an ordinary call, `PROBE` for the single
half-open probe (a shared store may hand out its own probe token instead)."""
CLOSED: Ticket = "closed"
PROBE: Ticket = "probe"


class BreakerStore(Protocol):
    """Circuit state by deployment key. Implementations must be safe for concurrent calls.

    Every ticket `allow` hands out is given back exactly once: to `record` when the call ended
    with a verdict on the deployment's health (success, or an error that `counts_against` it),
    to `release` otherwise (an error that is the request's fault, a cancellation, a stream the
    caller abandoned). A shared store should also lease the probe (it frees itself after a
    while), since a replica can die holding it.
    """

    async def allow(self, key: str, policy: BreakerPolicy) -> Ticket | None:
        """A ticket when a call may go to `key` now (`PROBE`: it is the half-open probe),
        `None` when the circuit is open."""

    async def record(self, key: str, ticket: Ticket, ok: bool, policy: BreakerPolicy) -> None:
        """The health verdict of a call that `allow` let through."""

    async def release(self, key: str, ticket: Ticket, policy: BreakerPolicy) -> None:
        """A call that `allow` let through ended without a verdict: free its probe slot."""

    async def state(self, key: str, policy: BreakerPolicy) -> State:
        """The circuit's state (for traces and listings)."""


@dataclass
class _Circuit:
    state: State = "closed"
    consecutive: int = 0
    opened_at: float = 0.0
    probing: bool = False
    calls: deque[tuple[float, bool]] = field(default_factory=deque)


class MemoryBreakerStore:
    """In-process circuits (one event loop; operations do not await, so they are atomic)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._circuits: dict[str, _Circuit] = {}

    def _get(self, key: str) -> _Circuit:
        c = self._circuits.get(key)
        if c is None:
            c = self._circuits[key] = _Circuit()
        return c

    async def allow(self, key: str, policy: BreakerPolicy) -> Ticket | None:
        """Closed: yes. Open: only after the cooldown, as the single half-open probe."""
        c = self._get(key)
        if c.state == "closed":
            return CLOSED
        if c.state == "open" and self.clock.now() - c.opened_at >= policy.cooldown:
            c.state = "half_open"
            c.probing = False
        if c.state == "half_open" and not c.probing:
            c.probing = True
            return PROBE
        return None

    async def record(self, key: str, ticket: Ticket, ok: bool, policy: BreakerPolicy) -> None:
        """Count the outcome; open or close the circuit as the policy says. The probe's
        verdict closes or reopens a half-open circuit; a late verdict of a call let through
        before the circuit opened changes nothing."""
        c = self._get(key)
        now = self.clock.now()
        if ticket == PROBE:
            if c.state == "half_open" and c.probing:
                c.probing = False
                if ok:
                    self._close(c)
                else:
                    self._open(c, now)
            return
        if c.state != "closed":
            return
        c.calls.append((now, ok))
        while c.calls and now - c.calls[0][0] > policy.window:
            c.calls.popleft()
        c.consecutive = 0 if ok else c.consecutive + 1
        if ok:
            return
        failed = sum(1 for _, good in c.calls if not good)
        rate_tripped = len(c.calls) >= policy.min_calls and failed / len(c.calls) >= \
            policy.error_rate
        if c.consecutive >= policy.failures or rate_tripped:
            self._open(c, now)

    async def release(self, key: str, ticket: Ticket, policy: BreakerPolicy) -> None:
        """Free the probe slot, so the next call probes again (an ordinary ticket holds
        nothing)."""
        if ticket == PROBE:
            c = self._get(key)
            if c.state == "half_open":
                c.probing = False

    async def state(self, key: str, policy: BreakerPolicy) -> State:
        """The current state (an open circuit past its cooldown reads as half-open)."""
        c = self._get(key)
        if c.state == "open" and self.clock.now() - c.opened_at >= policy.cooldown:
            return "half_open"
        return c.state

    @staticmethod
    def _open(c: _Circuit, now: float) -> None:
        c.state, c.opened_at, c.consecutive = "open", now, 0
        c.calls.clear()

    @staticmethod
    def _close(c: _Circuit) -> None:
        c.state, c.consecutive = "closed", 0
        c.calls.clear()


async def give_back(store: BreakerStore, key: str, ticket: Ticket, policy: BreakerPolicy,
                    error: BaseException | None) -> None:
    """Return a ticket for a call that ended: a verdict for a success or an error that
    `counts_against` the deployment, a release for anything else (including `CancelledError`
    and `GeneratorExit`)."""
    if error is None:
        await store.record(key, ticket, True, policy)
    elif counts_against(error):
        await store.record(key, ticket, False, policy)
    else:
        await store.release(key, ticket, policy)
