"""`/healthz`, `/readyz` and the per-worker gauges of `/metrics`.

`/healthz` says the process answers. `/readyz` says it can do its job: the ledger's database
answers (`Ledger.ping`), the shared state answers (Redis `PING` when `gateway.state` is set;
an authenticator's or limiter's own `ready()`, when it has one), and the gateway is not
draining. Each
check is bounded by `READY_TIMEOUT` seconds; the answer is 200 or 503 with what failed.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from llmswitch.gateway.metrics import BREAKER_VALUES, Gauge

if TYPE_CHECKING:
    from llmswitch.gateway.app import Gateway

READY_TIMEOUT = 2.0


async def readiness(gateway: Gateway, timeout: float = READY_TIMEOUT
                    ) -> tuple[int, dict[str, Any]]:
    """(status, body) of `/readyz`: every check's verdict, "ok" or what failed."""
    checks: dict[str, str] = {}
    if gateway.draining:
        checks["draining"] = "the gateway is shutting down"
    for observer in gateway.switch.observers:
        ping = getattr(observer, "ping", None)
        if callable(ping):
            name = type(observer).__name__.lower()
            checks[name] = await _check(asyncio.to_thread(ping), timeout)
    redis = getattr(gateway.access, "redis", None)  # gateway.state: redis://...
    if redis is not None:
        checks["state"] = await _check(redis.ping(), timeout)
    for name, part in (("keys", gateway.auth), ("limits", gateway.limits)):
        ready = getattr(part, "ready", None)
        if callable(ready):
            checks[name] = await _check(ready(), timeout)
    ok = all(v == "ok" for v in checks.values())
    return (200 if ok else 503), {"status": "ready" if ok else "unavailable",
                                  "checks": checks}


async def _check(work: Any, timeout: float) -> str:
    try:
        await asyncio.wait_for(work, timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return "ok"


async def worker_gauges(gateway: Gateway) -> list[Gauge]:
    """The worker's gauges: in-flight requests, breaker state per route target, ledger
    rows written and dropped (`Ledger.stats()`)."""
    worker = str(os.getpid())
    out = [Gauge("llmswitch_gateway_in_flight_requests", {"worker": worker},
                 float(gateway.inflight))]
    try:
        states = await asyncio.wait_for(gateway.switch.breaker_states(), READY_TIMEOUT)
    except Exception:  # a shared store that does not answer must not fail the scrape
        states = {}
    out.extend(Gauge("llmswitch_gateway_breaker_state", {"target": t, "worker": worker},
                     float(BREAKER_VALUES.get(s, 0))) for t, s in sorted(states.items()))
    for observer in gateway.switch.observers:
        stats = getattr(observer, "stats", None)
        if not callable(stats):
            continue
        figures = stats()
        if not isinstance(figures, dict):
            continue
        for key, name in (("written", "llmswitch_ledger_rows_written_total"),
                          ("dropped", "llmswitch_ledger_rows_dropped_total"),
                          ("failures", "llmswitch_ledger_write_failures_total")):
            value = figures.get(key)
            if isinstance(value, (int, float)):
                out.append(Gauge(name, {"worker": worker}, float(value)))
    return out
