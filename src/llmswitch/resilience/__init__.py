"""Resilience building blocks: retry policy, deadlines, circuit breakers, rate limiters.

Strategies (`fallback`, `loadbalance`) compose these; nothing here does I/O except sleeping
through an injectable `Clock`, so tests run without waiting.

`__all__` is the public surface for a shared store (the gateway's Redis state implements
`BreakerStore` and `LimitStore`, documented in docs/resilience.md) and for injecting state into
a `Switch` (`Switch(..., services={SERVICE_KEY: Resilience(...)})`). Imported on first use.
"""

import typing as _typing

from llmswitch._lazy import lazy_exports as _lazy_exports

_EXPORTS: dict[str, str] = {
    "BreakerPolicy": "llmswitch.resilience.breaker",
    "BreakerStore": "llmswitch.resilience.breaker",
    "MemoryBreakerStore": "llmswitch.resilience.breaker",
    "State": "llmswitch.resilience.breaker",
    "Ticket": "llmswitch.resilience.breaker",
    "CLOSED": "llmswitch.resilience.breaker",
    "PROBE": "llmswitch.resilience.breaker",
    "counts_against": "llmswitch.resilience.breaker",
    "Admission": "llmswitch.resilience.ratelimit",
    "LimitStore": "llmswitch.resilience.ratelimit",
    "MemoryLimitStore": "llmswitch.resilience.ratelimit",
    "Clock": "llmswitch.resilience.clock",
    "FakeClock": "llmswitch.resilience.clock",
    "SystemClock": "llmswitch.resilience.clock",
    "Resilience": "llmswitch.resilience.services",
    "SERVICE_KEY": "llmswitch.resilience.services",
}

if _typing.TYPE_CHECKING:
    from llmswitch.resilience.breaker import (
        CLOSED,
        PROBE,
        BreakerPolicy,
        BreakerStore,
        MemoryBreakerStore,
        State,
        Ticket,
        counts_against,
    )
    from llmswitch.resilience.clock import Clock, FakeClock, SystemClock
    from llmswitch.resilience.ratelimit import Admission, LimitStore, MemoryLimitStore
    from llmswitch.resilience.services import SERVICE_KEY, Resilience

__all__ = [
    "CLOSED",
    "PROBE",
    "SERVICE_KEY",
    "Admission",
    "BreakerPolicy",
    "BreakerStore",
    "Clock",
    "FakeClock",
    "LimitStore",
    "MemoryBreakerStore",
    "MemoryLimitStore",
    "Resilience",
    "State",
    "SystemClock",
    "Ticket",
    "counts_against",
]


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals(), __all__)
