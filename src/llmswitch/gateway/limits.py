"""Rate limits and budgets: `GatewayLimiter` (the app's `Limiter`) over two stores.

- **Rate limits** (RPM, TPM) per key (its `rpm`/`tpm`) and per model or route
  (`gateway.limits: {name: {rpm, tpm}}`, every caller together), over a sliding 60-second log:
  a request is admitted only if, counting it, no limit has more than `rpm` requests or `tpm`
  tokens admitted in the last 60 seconds, so no 60-second window ever holds more. All the
  limits of one request are checked and reserved in one atomic step. TPM counts the input
  tokens plus the maximum output when admitting and is corrected to the real usage after.
- **Budgets** per key and period (`day`, `month` UTC calendar, or `total`): before a call its
  maximum cost is reserved (`CallEstimate.max_cost_usd` times the attempts that may be
  billed, see `billed_attempts`); after it the reservation is replaced by the ledger's figure.
  A call is admitted only if spent + reserved + its maximum fit in the budget, so the spend
  never passes the budget, whatever the number of replicas. Amounts are kept as integer
  nano-dollars (no float drift), rounded up.

`MemoryRateStore`/`MemoryBudgetStore` serve one replica; `redis_state.RedisRateStore`/
`RedisBudgetStore` (`gateway.state: redis://...`) share them between replicas with Lua scripts,
one round trip each.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmswitch import CallEstimate, Config, Usage, new_trace_id
from llmswitch.gateway.keys import dollars, iso, period_bounds
from llmswitch.gateway.policy import Admission, Principal
from llmswitch.gateway.protocols.common import Call
from llmswitch.gateway.protocols.errors import GatewayError

log = logging.getLogger("llmswitch.gateway.limits")
WINDOW_MS = 60_000
NANO = 1_000_000_000
DEFAULT_RETRIES = {"fallback": 2}
"""Retries per target a strategy makes when its route does not say (fallback.py's default)."""
BUDGET_LEASE_S = 900.0
"""A reservation not settled within this time (its replica died) counts as spent."""


def to_nano(usd: float) -> int:
    """USD as whole nano-dollars, rounded up (a reservation is never too small)."""
    return max(0, math.ceil(round(usd * NANO, 3)))


def usd(nano: int) -> float:
    """Nano-dollars as USD."""
    return nano / NANO


# -- rate limits -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Limit:
    """One RPM/TPM limit: its store key, values (`None`: unlimited) and a name for messages."""

    key: str
    rpm: int | None
    tpm: int | None
    label: str


@dataclass(slots=True)
class RateHold:
    """A request admitted under some limits (given back to `settle` or `release`)."""

    id: str
    limits: tuple[Limit, ...]
    tokens: int


@dataclass(frozen=True, slots=True)
class RateRefusal:
    """Not admitted: the first limit that is full, and seconds until the request fits."""

    limit: Limit
    retry_after: float
    requests: int
    tokens: int


class RateStore(Protocol):
    """Sliding-window RPM/TPM counters; each method is atomic across every caller."""

    async def acquire(self, limits: Sequence[Limit], tokens: int) -> RateHold | RateRefusal:
        """Admit one request of `tokens` under every limit at once, or refuse."""
        ...

    async def settle(self, hold: RateHold, tokens: int) -> None:
        """Correct the request's tokens to what it used (it stays one request)."""
        ...

    async def release(self, hold: RateHold) -> None:
        """Give the request and its tokens back (it never ran)."""
        ...


def fits(count: int, used: int, rpm: int | None, tpm: int | None, tokens: int) -> bool:
    """Whether one more request of `tokens` fits. A request larger than `tpm` on its own is
    admitted into an empty window only (else it could never run)."""
    return (rpm is None or count < rpm) and (tpm is None or count == 0 or used + tokens <= tpm)


class _Log:
    """One limit's window: entries `[at_ms, hold_id, tokens, live]`, oldest first, and the
    totals of the live ones."""

    __slots__ = ("count", "entries", "used")

    def __init__(self) -> None:
        self.entries: deque[list[Any]] = deque()
        self.count = 0
        self.used = 0

    def purge(self, now: int) -> None:
        while self.entries and self.entries[0][0] <= now - WINDOW_MS:
            self.drop(self.entries.popleft())

    def drop(self, entry: list[Any]) -> None:
        if entry[3]:
            entry[3] = False
            self.count -= 1
            self.used -= entry[2]


class MemoryRateStore:
    """In-process sliding logs (one event loop; no method awaits, so each is atomic)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._logs: dict[str, _Log] = {}
        self._live: dict[str, list[tuple[_Log, list[Any]]]] = {}
        """Entries of holds not given back yet (each hold is settled or released once)."""

    def _now(self) -> int:
        return int(self.clock() * 1000)

    async def acquire(self, limits: Sequence[Limit], tokens: int) -> RateHold | RateRefusal:
        """Admit and reserve under every limit, or refuse with the wait until it fits."""
        now = self._now()
        logs = []
        for limit in limits:
            entries = self._logs.get(limit.key)
            if entries is None:
                entries = self._logs[limit.key] = _Log()
            entries.purge(now)
            if not fits(entries.count, entries.used, limit.rpm, limit.tpm, tokens):
                wait = _wait_ms(entries, now, limit, tokens)
                return RateRefusal(limit, wait / 1000, entries.count, entries.used)
            logs.append(entries)
        hold = RateHold(new_trace_id()[:16], tuple(limits), tokens)
        live = []
        for entries in logs:
            entry = [now, hold.id, tokens, True]
            entries.entries.append(entry)
            entries.count += 1
            entries.used += tokens
            live.append((entries, entry))
        self._live[hold.id] = live
        return hold

    async def settle(self, hold: RateHold, tokens: int) -> None:
        """Correct the tokens of the hold's entries still in the window."""
        for entries, entry in self._live.pop(hold.id, ()):
            if entry[3]:
                entries.used += tokens - entry[2]
                entry[2] = tokens
        hold.tokens = tokens

    async def release(self, hold: RateHold) -> None:
        """Take the hold out of the window."""
        for entries, entry in self._live.pop(hold.id, ()):
            entries.drop(entry)


def _wait_ms(entries: _Log, now: int, limit: Limit, tokens: int) -> int:
    """Milliseconds until enough of the window expires for the request to fit."""
    count, used = entries.count, entries.used
    for at, _, spent, live in entries.entries:
        if not live:
            continue
        count -= 1
        used -= spent
        if fits(count, used, limit.rpm, limit.tpm, tokens):
            return max(1, int(at) + WINDOW_MS - now)
    return WINDOW_MS


# -- budgets -------------------------------------------------------------------------------------
@dataclass(slots=True)
class BudgetHold:
    """A reservation against one key's budget in one period."""

    bucket: str
    id: str
    amount: int
    """Nano-dollars reserved."""


@dataclass(frozen=True, slots=True)
class BudgetRefusal:
    """Not admitted: what is spent and reserved (nano-dollars) in the period."""

    spent: int
    reserved: int


Seed = Callable[[], Awaitable[int]]
"""What the ledger recorded for a bucket's key and period (nano-dollars): asked once, when a
store has no counter for the bucket (first use, or the shared state was lost)."""


class BudgetStore(Protocol):
    """Spend counters per bucket (key and period); each method is atomic across callers."""

    async def reserve(self, bucket: str, budget: int, amount: int, seed: Seed,
                      ttl_s: int | None) -> BudgetHold | BudgetRefusal:
        """Reserve `amount` if spent + reserved + amount <= budget, or refuse."""
        ...

    async def settle(self, hold: BudgetHold, actual: int | None, ttl_s: int | None) -> None:
        """Replace the reservation by the real cost (`None`, unknown: keep it as spent)."""
        ...


@dataclass
class _Bucket:
    spent: int
    reserved: int = 0
    holds: set[str] = field(default_factory=set)


class MemoryBudgetStore:
    """In-process budget counters (exact for one replica)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._seeding: dict[str, asyncio.Future[int]] = {}

    async def reserve(self, bucket: str, budget: int, amount: int, seed: Seed,
                      ttl_s: int | None) -> BudgetHold | BudgetRefusal:
        """Reserve or refuse (the counter starts from the ledger's figure, read once)."""
        b = await self.seeded(bucket, seed)
        if b.spent + b.reserved + amount > budget:
            return BudgetRefusal(b.spent, b.reserved)
        hold = BudgetHold(bucket, new_trace_id()[:16], amount)
        b.reserved += amount
        b.holds.add(hold.id)
        return hold

    async def seeded(self, bucket: str, seed: Seed) -> _Bucket:
        """The bucket's counter, started from the ledger's figure (read once)."""
        b = self._buckets.get(bucket)
        if b is None:
            pending = self._seeding.get(bucket)
            if pending is None:
                pending = self._seeding[bucket] = asyncio.ensure_future(seed())
                pending.add_done_callback(lambda _: self._seeding.pop(bucket, None))
            start = await asyncio.shield(pending)
            b = self._buckets.setdefault(bucket, _Bucket(start))
        return b

    async def settle(self, hold: BudgetHold, actual: int | None, ttl_s: int | None) -> None:
        """Move the reservation to spent, at its real cost."""
        b = self._buckets.get(hold.bucket)
        if b is None or hold.id not in b.holds:
            return
        b.holds.discard(hold.id)
        b.reserved -= hold.amount
        b.spent += hold.amount if actual is None else actual


# -- both at once ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BudgetAsk:
    """A budget reservation to take with a request's rate limits (nano-dollars)."""

    bucket: str
    budget: int
    amount: int
    seed: Seed
    ttl_s: int | None


@dataclass(slots=True)
class Holds:
    """What one request holds: its rate-limit entries and its budget reservation."""

    rate: RateHold | None = None
    budget: BudgetHold | None = None


class LimitsStore(Protocol):
    """What the limiter needs: one request's rate limits and budget reservation taken
    together (all or nothing), and given back together."""

    async def admit(self, limits: Sequence[Limit], tokens: int, ask: BudgetAsk | None
                    ) -> Holds | RateRefusal | BudgetRefusal:
        """Take every limit and the reservation, or refuse (taking nothing)."""
        ...

    async def settle(self, holds: Holds, tokens: int | None, actual: int | None) -> None:
        """Real tokens (`None`: leave them) and real cost (`None`: unknown, keep the
        reservation as spent)."""
        ...


class MemoryLimits:
    """`LimitsStore` in the process (one replica): the memory rate and budget stores."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.rates = MemoryRateStore(clock)
        self.budgets = MemoryBudgetStore()

    @property
    def clock(self) -> Callable[[], float]:
        """The rate windows' clock (tests move it)."""
        return self.rates.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self.rates.clock = value

    async def admit(self, limits: Sequence[Limit], tokens: int, ask: BudgetAsk | None
                    ) -> Holds | RateRefusal | BudgetRefusal:
        """Seed the budget's counter first if needed (it awaits the ledger); then nothing
        below awaits, so the rest is atomic on the event loop."""
        if ask is not None:
            await self.budgets.seeded(ask.bucket, ask.seed)
        holds = Holds()
        if limits:
            got = await self.rates.acquire(limits, tokens)
            if isinstance(got, RateRefusal):
                return got
            holds.rate = got
        if ask is not None:
            reserved = await self.budgets.reserve(ask.bucket, ask.budget, ask.amount,
                                                  ask.seed, ask.ttl_s)
            if isinstance(reserved, BudgetRefusal):
                if holds.rate is not None:
                    await self.rates.release(holds.rate)
                return reserved
            holds.budget = reserved
        return holds

    async def settle(self, holds: Holds, tokens: int | None, actual: int | None) -> None:
        """Give back what the request did not use."""
        if holds.rate is not None and tokens is not None:
            await self.rates.settle(holds.rate, tokens)
        if holds.budget is not None:
            await self.budgets.settle(holds.budget, actual, None)


# -- what a call may bill -------------------------------------------------------------------
def billed_attempts(config: Config, name: str, cap: int = 64) -> int:
    """How many provider attempts one call of `name` can make that may each be billed up to
    the estimate's maximum, from the config: a model or alias is 1; a route is the sum over
    its targets (every target may be tried; cascades, ensembles and chains call several)
    times `retries + 1` (fallback's default retries: 2), plus models its options name (a
    judge). Capped at `cap`. An upper bound: most failed attempts bill nothing."""
    return min(cap, _attempts(config, name, set()))


def _attempts(config: Config, name: str, seen: set[str]) -> int:
    route = config.routes.get(name)
    if route is None:
        entry = config.models.get(name)
        if entry is not None and entry.model is not None and entry.model not in seen:
            return _attempts(config, entry.model, seen | {name})
        return 1
    if name in seen:
        return 1
    seen = seen | {name}
    total = 0
    for target in route.targets:
        target_name = target.get("model") if isinstance(target, Mapping) else target
        if isinstance(target_name, str):
            total += _attempts(config, target_name, seen)
    options = route.options()
    retries = options.get("retries", DEFAULT_RETRIES.get(route.strategy, 0))
    total *= (retries if isinstance(retries, int) and retries > 0 else 0) + 1
    for value in options.values():
        if isinstance(value, str) and (value in config.routes or value in config.models):
            total += _attempts(config, value, seen)
    return max(1, total)


def schema_attempts(call: Call) -> int:
    """A structured-output call may be asked again after an invalid answer
    (`response_format.retries`, default 2), each time billed."""
    fmt = call.settings.get("response_format")
    if fmt is None:
        return 1
    retries = fmt.get("retries", 2) if isinstance(fmt, Mapping) else getattr(fmt, "retries", 2)
    return (retries if isinstance(retries, int) and retries > 0 else 0) + 1


# -- the limiter ---------------------------------------------------------------------------
Spent = Callable[[str, float], Awaitable[float]]
"""`(key_id, since_epoch) -> USD` the ledger recorded (seeds budget counters)."""


@dataclass(frozen=True, slots=True)
class _Budget:
    """A budget reservation being asked for, with what its refusal message needs."""

    ask: BudgetAsk
    usd: float
    period: str
    attempts: int
    resets: float | None


class GatewayLimiter:
    """Per-key and per-model RPM/TPM and per-key budgets over one `LimitsStore`: a request's
    limits and budget reservation are taken together (one Redis round trip) and given back
    together (one more).

    A store failure while admitting refuses the call (503 `unavailable`: limits and budgets
    must hold); while settling it is logged and the call's answer stands (a budget
    reservation then stays counted as spent until its lease ends)."""

    def __init__(self, config: Config, store: LimitsStore, spent: Spent | None = None,
                 model_limits: Mapping[str, Any] | None = None,
                 budget_attempts: int | None = None,
                 wall: Callable[[], float] = time.time,
                 names: Callable[[str], frozenset[str]] | None = None) -> None:
        self.config = config
        self.store = store
        self.spent = spent
        self.budget_attempts = budget_attempts
        self.wall = wall
        self.model_limits: dict[str, Limit] = {}
        """By every name of the model (`names`): `gpt-4o-mini` and `openai/gpt-4o-mini`
        share one window; a name the config lists itself keeps its own limit."""
        same: dict[str, Limit] = {}
        for name, value in (model_limits or {}).items():
            rpm, tpm = _limit_values(value)
            if rpm is not None or tpm is not None:
                limit = self.model_limits[name] = Limit(f"model:{name}", rpm, tpm,
                                                        f"model {name!r}")
                for other in names(name) if names is not None else ():
                    same.setdefault(other, limit)
        for other, limit in same.items():
            self.model_limits.setdefault(other, limit)
        self._attempts: dict[str, int] = {}

    def limits_for(self, principal: Principal, model: str) -> list[Limit]:
        """The rate limits a call of `model` by `principal` is under."""
        out = []
        rpm, tpm = principal.limits.get("rpm"), principal.limits.get("tpm")
        if principal.key_id is not None and (rpm is not None or tpm is not None):
            out.append(Limit(f"key:{principal.key_id}", rpm, tpm, f"key {principal.name!r}"))
        limit = self.model_limits.get(model)
        if limit is not None:
            out.append(limit)
        return out

    async def admit(self, principal: Principal, call: Call,
                    estimate: Callable[[], CallEstimate]) -> Admission:
        """Take room under every rate limit and the budget at once; refuse with 429 or 402."""
        admission = Admission(principal, call.model)
        limits = self.limits_for(principal, call.model)
        budget = principal.limits.get("budget_usd")
        if not limits and budget is None:
            return admission
        est = estimate()
        tokens = est.input_tokens + est.max_output_tokens
        ask = self._budget(principal, call, est, float(budget)) if budget is not None else None
        try:
            got = await self.store.admit(limits, tokens, ask.ask if ask else None)
        except GatewayError:
            raise
        except Exception as exc:
            log.error("llmswitch gateway: the limits store failed: %s", exc)
            raise GatewayError("unavailable", "the gateway's shared limit state is "
                               f"unreachable; retry shortly ({type(exc).__name__})") from None
        if isinstance(got, RateRefusal):
            raise _rate_refusal(got, tokens)
        if isinstance(got, BudgetRefusal):
            assert ask is not None
            raise _budget_refusal(principal, ask, got)
        admission.handles.append(got)
        admission.reserved_tokens = tokens if limits else 0
        admission.reserved_usd = usd(ask.ask.amount) if ask else 0.0
        return admission

    def _budget(self, principal: Principal, call: Call, est: CallEstimate,
                budget: float) -> _Budget:
        key_id = principal.key_id or "anonymous"
        if est.max_cost_usd is None:
            raise GatewayError(
                "model_not_allowed",
                f"the key {principal.name!r} has a budget, and the price of {call.model!r} "
                "is unknown, so the call's cost cannot be bounded (give the model "
                "input_per_mtok and output_per_mtok under models in the config)", "model")
        attempts = self._billed(call)
        period = str(principal.limits.get("period") or "month")
        now = self.wall()
        period_id, start, resets = period_bounds(period, now)
        spent = self.spent

        async def seed() -> int:
            return to_nano(await spent(key_id, start)) if spent is not None else 0

        ask = BudgetAsk(f"{key_id}:{period_id}", to_nano(budget),
                        to_nano(est.max_cost_usd) * attempts, seed,
                        None if resets is None else int(resets - now) + 86400)
        return _Budget(ask, budget, period, attempts, resets)

    def _billed(self, call: Call) -> int:
        attempts = self._attempts.get(call.model)
        if attempts is None:
            attempts = self._attempts[call.model] = billed_attempts(self.config, call.model)
        attempts *= schema_attempts(call)
        if self.budget_attempts is not None:
            attempts = min(attempts, self.budget_attempts)
        return attempts

    async def settle(self, admission: Admission, usage: Usage | None,
                     cost_usd: float | None) -> None:
        """Replace the reservations by the call's real tokens and cost; never raises."""
        for holds in admission.handles:
            if not isinstance(holds, Holds):
                continue
            # no usage reported (0 tokens): keep the reservations rather than count nothing
            known = usage is not None and usage.total_tokens > 0
            tokens = usage.total_tokens if known and usage is not None else None
            actual = to_nano(cost_usd) if known and cost_usd is not None else None
            try:
                await self.store.settle(holds, tokens, actual)
            except Exception as exc:
                log.error("llmswitch gateway: settling limits failed: %s", exc)

    async def aclose(self) -> None:
        """Close the store if it holds connections."""
        closer = getattr(self.store, "aclose", None)
        if closer is not None:
            await closer()


def _limit_values(value: Any) -> tuple[int | None, int | None]:
    if isinstance(value, Mapping):
        return value.get("rpm"), value.get("tpm")
    return getattr(value, "rpm", None), getattr(value, "tpm", None)


def _rate_refusal(refusal: RateRefusal, tokens: int) -> GatewayError:
    limit = refusal.limit
    wait = max(refusal.retry_after, 0.001)
    if limit.rpm is not None and refusal.requests >= limit.rpm:
        what = f"{limit.rpm} requests per minute"
    else:
        what = (f"{limit.tpm} tokens per minute ({refusal.tokens} used in the last 60 s; "
                f"this request may use {tokens})")
    return GatewayError("limit_exceeded", f"rate limit of {limit.label} reached: {what}; "
                        f"retry in {wait:.1f} s", retry_after=wait,
                        headers={"retry-after-ms": str(max(1, math.ceil(wait * 1000)))})


def _budget_refusal(principal: Principal, budget: _Budget, got: BudgetRefusal) -> GatewayError:
    period, resets = budget.period, budget.resets
    when = f"resets at {iso(resets)}" if resets is not None else "a total budget never resets"
    span = "in total" if period == "total" else f"this {period}"
    tries = f" over up to {budget.attempts} billed attempts" if budget.attempts > 1 else ""
    reserved = f" (+ ${usd(got.reserved):.6f} reserved by calls in flight)" if got.reserved \
        else ""
    return GatewayError(
        "budget_exceeded",
        f"budget of key {principal.name!r} exhausted: spent ${usd(got.spent):.6f}{reserved} "
        f"of {dollars(budget.usd)} {span}; this call may cost up to "
        f"${usd(budget.ask.amount):.6f}"
        f"{tries}; {when}")
