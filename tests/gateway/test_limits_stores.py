"""The rate, budget and breaker stores, in-process and on Redis, held to the same behaviour:
sliding 60-second windows (never calendar minutes), exact admission under concurrency from
several "replicas" (separate clients), budgets that never pass their limit, leases that free
what a dead replica held, and the library's BreakerStore/LimitStore contracts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from llmswitch import OverloadedError, Switch
from llmswitch.gateway.limits import (
    BudgetHold,
    BudgetRefusal,
    Limit,
    MemoryBudgetStore,
    MemoryRateStore,
    RateHold,
    RateRefusal,
)
from llmswitch.resilience.breaker import CLOSED, BreakerPolicy, MemoryBreakerStore
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


class Clock:
    """Seconds, moved by hand."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class Stores:
    """Factories for one kind of store; `replica()` is a new client on the same state."""

    def __init__(self, kind: str, clock: Clock, url: str | None) -> None:
        self.kind, self.clock, self.url = kind, clock, url
        self.clients: list[Any] = []
        self._rates: MemoryRateStore | None = None
        self._budgets: MemoryBudgetStore | None = None

    def _client(self) -> Any:
        from llmswitch.gateway.redis_state import connect

        assert self.url is not None
        client = connect(self.url)
        self.clients.append(client)
        return client

    def rates(self) -> Any:
        if self.kind == "memory":
            self._rates = self._rates or MemoryRateStore(self.clock)
            return self._rates
        from llmswitch.gateway.redis_state import RedisRateStore

        return RedisRateStore(self._client(), clock=self.clock)

    def budgets(self, lease_s: float = 900.0) -> Any:
        if self.kind == "memory":
            self._budgets = self._budgets or MemoryBudgetStore()
            return self._budgets
        from llmswitch.gateway.redis_state import RedisBudgetStore

        return RedisBudgetStore(self._client(), clock=self.clock, lease_s=lease_s)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made = Stores(request.param, Clock(), url)
    yield made
    await made.close()


def rpm(n: int, key: str = "k") -> Limit:
    return Limit(key, n, None, key)


async def test_rpm_is_a_sliding_window_not_a_calendar_minute(stores: Stores) -> None:
    rates, clock = stores.rates(), stores.clock
    limit = [rpm(5)]
    for _ in range(3):
        assert isinstance(await rates.acquire(limit, 1), RateHold)
    clock.t += 30
    for _ in range(2):
        assert isinstance(await rates.acquire(limit, 1), RateHold)
    refused = await rates.acquire(limit, 1)
    assert isinstance(refused, RateRefusal) and refused.requests == 5
    assert refused.retry_after == pytest.approx(30.0)  # when the first three leave
    clock.t += 29.999
    assert isinstance(await rates.acquire(limit, 1), RateRefusal)
    clock.t += 0.001  # 60 s after the first three: exactly three slots free
    for _ in range(3):
        assert isinstance(await rates.acquire(limit, 1), RateHold)
    again = await rates.acquire(limit, 1)
    assert isinstance(again, RateRefusal) and again.retry_after == pytest.approx(30.0)


async def test_tpm_counts_the_reservation_then_the_real_usage(stores: Stores) -> None:
    rates = stores.rates()
    limit = [Limit("t", None, 1000, "t")]
    first = await rates.acquire(limit, 600)
    assert isinstance(first, RateHold)
    refused = await rates.acquire(limit, 500)
    assert isinstance(refused, RateRefusal) and refused.tokens == 600
    await rates.settle(first, 100)  # it used far less than it reserved
    second = await rates.acquire(limit, 500)
    assert isinstance(second, RateHold)
    await rates.release(second)  # never ran: gives its tokens back
    assert isinstance(await rates.acquire(limit, 900), RateHold)
    big = [Limit("big", None, 100, "big")]
    assert isinstance(await rates.acquire(big, 5000), RateHold)  # alone in an empty window
    assert isinstance(await rates.acquire(big, 1), RateRefusal)


async def test_several_limits_are_taken_together_or_not_at_all(stores: Stores) -> None:
    rates = stores.rates()
    model = rpm(3, "model")
    a, b = rpm(2, "key-a"), rpm(5, "key-b")
    assert isinstance(await rates.acquire([a, model], 1), RateHold)
    assert isinstance(await rates.acquire([a, model], 1), RateHold)
    refused = await rates.acquire([a, model], 1)
    assert isinstance(refused, RateRefusal) and refused.limit == a
    # the refusal took nothing from the model's limit: key b gets its last slot
    assert isinstance(await rates.acquire([b, model], 1), RateHold)
    last = await rates.acquire([b, model], 1)
    assert isinstance(last, RateRefusal) and last.limit == model


async def test_replicas_under_concurrent_load_admit_exactly_the_limit(stores: Stores) -> None:
    replicas = [stores.rates() for _ in range(3)]
    limit = [rpm(37)]
    results = await asyncio.gather(*(replicas[i % 3].acquire(limit, 1) for i in range(120)))
    assert sum(isinstance(r, RateHold) for r in results) == 37


async def test_budget_never_passes_its_limit_and_settles_to_the_real_cost(
        stores: Stores) -> None:
    replicas = [stores.budgets() for _ in range(3)]
    seeded: list[str] = []

    async def seed() -> int:  # a ledger read: it waits
        seeded.append("x")
        await asyncio.sleep(0.01)
        return 100

    results = await asyncio.gather(*(replicas[i % 3].reserve("k:total", 1000, 70, seed, None)
                                     for i in range(50)))
    holds = [r for r in results if isinstance(r, BudgetHold)]
    assert len(holds) == (1000 - 100) // 70  # 12: the seed counts as spent
    assert 1 <= len(seeded) <= 3  # asked when a store has no counter, not per call
    refused = next(r for r in results if isinstance(r, BudgetRefusal))
    assert refused.spent == 100 and refused.reserved == 12 * 70
    for hold in holds[:10]:
        await replicas[0].settle(hold, 20, None)
    await replicas[1].settle(holds[10], None, None)  # unknown cost: the reservation is spent
    after = await replicas[2].reserve("k:total", 1000, 700, seed, None)
    assert isinstance(after, BudgetRefusal)
    assert (after.spent, after.reserved) == (100 + 10 * 20 + 70, 70)
    fits = await replicas[2].reserve("k:total", 1000, 1000 - 100 - 200 - 70 - 70, seed, None)
    assert isinstance(fits, BudgetHold)


async def test_a_dead_replicas_budget_reservation_expires_and_a_late_settle_corrects_it(
        redis_url: str) -> None:
    stores = Stores("redis", Clock(), redis_url)
    budgets = stores.budgets(lease_s=10)

    async def seed() -> int:
        return 0

    held = await budgets.reserve("k:d1", 100, 80, seed, 3600)
    assert isinstance(held, BudgetHold)
    assert isinstance(await budgets.reserve("k:d1", 100, 30, seed, 3600), BudgetRefusal)
    stores.clock.t += 11  # the lease ran out: counted as spent, no longer reserved
    still = await budgets.reserve("k:d1", 100, 30, seed, 3600)
    assert isinstance(still, BudgetRefusal) and (still.spent, still.reserved) == (80, 0)
    await budgets.settle(held, 25, 3600)  # the call did end after all: its real cost counts
    assert isinstance(await budgets.reserve("k:d1", 100, 75, seed, 3600), BudgetHold)
    await stores.close()


# -- the library's breaker and deployment-limit stores on Redis ----------------------------------
POLICY = BreakerPolicy(failures=3, cooldown=30, error_rate=0.5, min_calls=4, window=60)


@pytest.fixture(params=["memory", "redis"])
async def breakers(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Clock, Callable[
        [], Any]]]:
    clock = Clock()
    if request.param == "memory":
        shared = MemoryBreakerStore(clock)
        yield clock, lambda: shared
        return
    from llmswitch.gateway.redis_state import RedisBreakerStore, connect

    url = request.getfixturevalue("redis_url")
    clients: list[Any] = []

    def replica() -> Any:
        clients.append(connect(url))
        return RedisBreakerStore(clients[-1], clock=clock, probe_lease_s=45)

    yield clock, replica
    for client in clients:
        await client.aclose()


async def test_breaker_opens_for_every_replica_and_lets_one_probe_through(
        breakers: tuple[Clock, Callable[[], Any]]) -> None:
    clock, replica = breakers
    a, b = replica(), replica()
    for _ in range(3):
        ticket = await a.allow("dep", POLICY)
        assert ticket == CLOSED
        await a.record("dep", ticket, False, POLICY)
    assert await b.allow("dep", POLICY) is None  # opened on a, open on b
    assert await b.state("dep", POLICY) == "open"
    clock.t += 30
    assert await b.state("dep", POLICY) == "half_open"
    probe = await b.allow("dep", POLICY)
    assert probe not in (None, CLOSED)
    assert await a.allow("dep", POLICY) is None  # one probe across the fleet
    await b.release("dep", probe, POLICY)  # no verdict (e.g. a bad request): probe again
    probe = await a.allow("dep", POLICY)
    assert probe not in (None, CLOSED)
    await a.record("dep", probe, True, POLICY)
    assert await b.state("dep", POLICY) == "closed"
    assert await b.allow("dep", POLICY) == CLOSED


async def test_breaker_error_rate_and_a_failed_probe_reopens(
        breakers: tuple[Clock, Callable[[], Any]]) -> None:
    clock, replica = breakers
    a, b = replica(), replica()
    for ok in (False, True, False, True, False):  # 3 of 5 failed, never 3 in a row
        store = a if ok else b
        await store.record("dep", await store.allow("dep", POLICY), ok, POLICY)
    assert await a.state("dep", POLICY) == "open"
    clock.t += 31
    probe = await a.allow("dep", POLICY)
    await a.record("dep", probe, False, POLICY)
    assert await b.state("dep", POLICY) == "open"
    assert await b.allow("dep", POLICY) is None


async def test_a_probe_held_by_a_dead_replica_is_freed_by_its_lease(redis_url: str) -> None:
    from llmswitch.gateway.redis_state import RedisBreakerStore, connect

    clock = Clock()
    clients = [connect(redis_url), connect(redis_url)]
    a, b = (RedisBreakerStore(c, clock=clock, probe_lease_s=45) for c in clients)
    for _ in range(3):
        await a.record("dep", CLOSED, False, POLICY)
    clock.t += 30
    assert await a.allow("dep", POLICY) not in (None, CLOSED)  # a dies holding the probe
    clock.t += 44
    assert await b.allow("dep", POLICY) is None
    clock.t += 1
    assert await b.allow("dep", POLICY) not in (None, CLOSED)
    for c in clients:
        await c.aclose()


async def test_breakers_fail_open_when_redis_is_unreachable() -> None:
    from llmswitch.gateway.redis_state import (
        RedisBreakerStore,
        RedisLimitStore,
        RedisRateStore,
        connect,
    )
    from tests.gateway.state_servers import free_port

    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    store = RedisBreakerStore(client)
    assert await store.allow("dep", POLICY) == CLOSED
    await store.record("dep", CLOSED, False, POLICY)
    assert await store.state("dep", POLICY) == "closed"
    limits = RedisLimitStore(RedisRateStore(client))
    admitted = await limits.acquire("dep", 1, None, 10)
    assert admitted.admitted and admitted.reservation is None
    await client.aclose()


async def test_two_switches_share_circuits_and_deployment_limits_on_redis(
        redis_url: str) -> None:
    from llmswitch.gateway.redis_state import (
        RedisBreakerStore,
        RedisLimitStore,
        RedisRateStore,
        connect,
    )

    config = {"routes": {
        "r": {"strategy": "fallback", "targets": ["a", "b"], "retries": 0,
              "breaker": {"failures": 2, "cooldown": 300}},
        "lb": {"strategy": "loadbalance", "targets": [{"model": "c", "rpm": 2}],
               "max_wait": 0}},
        "observe": {"ledger": False}}
    clients = [connect(redis_url), connect(redis_url)]
    fakes = [{"a": FakeModel("a", [OverloadedError("busy")]), "b": FakeModel("b", ["fine"]),
              "c": FakeModel("c", ["c"])} for _ in clients]
    switches = [Switch(config, models=models, observers=[], services={SERVICE_KEY: Resilience(
        breakers=RedisBreakerStore(c), limits=RedisLimitStore(RedisRateStore(c)))})
        for c, models in zip(clients, fakes, strict=True)]
    for _ in range(2):
        assert (await switches[0].complete("r", "hi")).text == "fine"
    assert (await switches[1].complete("r", "hi")).text == "fine"
    assert fakes[0]["a"].call_count == 2 and fakes[1]["a"].call_count == 0  # skipped: open
    await switches[0].complete("lb", "hi")
    await switches[1].complete("lb", "hi")
    with pytest.raises(Exception, match="RPM/TPM"):
        await switches[1].complete("lb", "hi")  # the deployment's 2 rpm are spent fleet-wide
    for switch in switches:
        await switch.aclose()
    for c in clients:
        await c.aclose()
