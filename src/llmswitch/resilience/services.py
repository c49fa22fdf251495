"""Per-`Switch` resilience state shared by every route: the clock, the circuit-breaker store,
the RPM/TPM limit store, in-flight counts and latency averages. Lives in
`RouteContext.services`; tests pass their own
(`Switch(..., services={SERVICE_KEY: Resilience(clock=FakeClock())})`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmswitch.resilience.breaker import BreakerStore, MemoryBreakerStore
from llmswitch.resilience.clock import Clock, SystemClock
from llmswitch.resilience.ratelimit import LimitStore, MemoryLimitStore

SERVICE_KEY = "llmswitch.resilience"


@dataclass
class Resilience:
    """Shared state; keys of the dicts are deployment (target) names. `breakers` and
    `limits` default to in-process stores; pass shared ones to share state between processes."""

    clock: Clock = field(default_factory=SystemClock)
    breakers: BreakerStore | None = None
    rng: Callable[[], float] = random.random
    limits: LimitStore | None = None
    inflight: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.breakers is None:
            self.breakers = MemoryBreakerStore(self.clock)
        if self.limits is None:
            self.limits = MemoryLimitStore(self.clock)

    @property
    def store(self) -> BreakerStore:
        """The breaker store (always set after construction)."""
        assert self.breakers is not None
        return self.breakers

    @property
    def limit_store(self) -> LimitStore:
        """The RPM/TPM limit store (always set after construction)."""
        assert self.limits is not None
        return self.limits

    def observe_latency(self, key: str, ms: float, alpha: float = 0.3) -> None:
        """Fold a call's latency into the deployment's EWMA."""
        old = self.latency_ms.get(key)
        self.latency_ms[key] = ms if old is None else alpha * ms + (1 - alpha) * old


def resilience_of(services: dict[str, Any]) -> Resilience:
    """The shared state in a Switch's services (created on first use)."""
    found = services.get(SERVICE_KEY)
    if not isinstance(found, Resilience):
        found = services[SERVICE_KEY] = Resilience()
    return found
