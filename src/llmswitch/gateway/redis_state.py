"""State shared by gateway replicas in Redis (`gateway.state: redis://host:port/db`).

Every operation is one Lua script (one round trip, atomic on the server), timed by the Redis
server's clock (`TIME`), so replicas' clocks do not matter:

- `RedisRateStore`: the sliding 60-second RPM/TPM logs of `limits.py` (a sorted set of request
  ids by admission time and a hash of their tokens per limit).
- `RedisBudgetStore`: spend counters per key and period, with leased reservations (a replica
  that dies holding one does not hold the budget forever: after `BUDGET_LEASE_S` the
  reservation counts as spent, and a late settle corrects it to the real cost).
- `RedisBreakerStore`: the library's `BreakerStore` (circuit state per deployment; the
  half-open probe is a lease, freed by itself if its replica dies).
- `RedisLimitStore`: the library's `LimitStore` (the RPM/TPM of a `loadbalance` route's
  deployments), over the same logs as the rate store.

All keys share the hash tag `{llmswitch}` (scripts that touch several keys stay on one shard of
a Redis Cluster). The gateway's own limits and budgets fail closed when Redis is unreachable
(503); the library's breakers and deployment limits fail open (calls go on, a warning is
logged once a minute), since they protect providers, not money.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from llmswitch import ConfigError, new_trace_id
from llmswitch.gateway.limits import (
    BUDGET_LEASE_S,
    WINDOW_MS,
    BudgetAsk,
    BudgetHold,
    BudgetRefusal,
    Holds,
    Limit,
    RateHold,
    RateRefusal,
    Seed,
)
from llmswitch.resilience import CLOSED, BreakerPolicy, State, Ticket
from llmswitch.resilience import Admission as DeploymentAdmission

log = logging.getLogger("llmswitch.gateway.redis")
PREFIX = "{llmswitch}:"
TIMEOUT_S = 2.0
"""Every Redis call (connect, read, write) is bounded by this many seconds."""

_COMMON = """
local function now_ms(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(x) return string.format('%d', x) end
"""

# Rate logs: per limit a sorted set `z` (hold id -> admission ms) and a hash `h` (hold id ->
# tokens, `_sum`). Budgets: per bucket a hash `bh` (`spent`, `reserved`, `x:<member>` for
# reservations whose lease ran out) and a sorted set `bz` of leased reservations
# (`<id>:<nano-dollars>` -> lease end ms).
_LIMITS = _COMMON + """
local function rate_purge(z, h, cutoff)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', int(cutoff))
  if #old == 0 then return end
  local sub = 0
  for s = 1, #old, 1000 do
    local e = math.min(s + 999, #old)
    local vals = redis.call('HMGET', h, unpack(old, s, e))
    for _, v in ipairs(vals) do if v then sub = sub + tonumber(v) end end
    redis.call('HDEL', h, unpack(old, s, e))
  end
  redis.call('HINCRBY', h, '_sum', int(-sub))
  redis.call('ZREMRANGEBYSCORE', z, '-inf', int(cutoff))
end
local function fits(count, used, rpm, tpm, tokens)
  return (rpm < 0 or count < rpm) and (tpm < 0 or count == 0 or used + tokens <= tpm)
end
local function rate_check(z, h, rpm, tpm, tokens, now, window)
  local count = redis.call('ZCARD', z)
  local used = tonumber(redis.call('HGET', h, '_sum') or '0')
  if fits(count, used, rpm, tpm, tokens) then return nil end
  local wait = window
  if tpm < 0 then
    local at = redis.call('ZRANGE', z, count - rpm, count - rpm, 'WITHSCORES')
    if #at == 2 then wait = tonumber(at[2]) + window - now end
  else
    local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    local c, u = count, used
    for k = 1, #entries, 2 do
      c = c - 1
      u = u - tonumber(redis.call('HGET', h, entries[k]) or '0')
      if fits(c, u, rpm, tpm, tokens) then
        wait = tonumber(entries[k + 1]) + window - now
        break
      end
    end
  end
  return {math.max(1, wait), count, used}
end
local function rate_take(z, h, id, tokens, now, window)
  redis.call('ZADD', z, int(now), id)
  redis.call('HSET', h, id, int(tokens))
  redis.call('HINCRBY', h, '_sum', int(tokens))
  redis.call('PEXPIRE', z, int(window + 60000))
  redis.call('PEXPIRE', h, int(window + 60000))
end
local function rate_settle(h, id, tokens)
  local old = redis.call('HGET', h, id)
  if old then
    redis.call('HINCRBY', h, '_sum', int(tokens - tonumber(old)))
    redis.call('HSET', h, id, int(tokens))
  end
end
local function budget_open(bh, bz, now)
  if redis.call('HEXISTS', bh, 'spent') == 0 then return nil, nil end
  local expired = redis.call('ZRANGEBYSCORE', bz, '-inf', int(now))
  if #expired > 0 then
    local total = 0
    for _, m in ipairs(expired) do
      total = total + tonumber(string.match(m, ':(%d+)$'))
      redis.call('HSET', bh, 'x:' .. m, '1')
    end
    redis.call('HINCRBY', bh, 'spent', int(total))
    redis.call('HINCRBY', bh, 'reserved', int(-total))
    redis.call('ZREMRANGEBYSCORE', bz, '-inf', int(now))
  end
  return tonumber(redis.call('HGET', bh, 'spent')),
         tonumber(redis.call('HGET', bh, 'reserved') or '0')
end
local function budget_settle(bh, bz, member, amount, actual)
  if redis.call('HEXISTS', bh, 'spent') == 0 then return end
  if actual < 0 then actual = amount end
  if redis.call('ZREM', bz, member) == 1 then
    redis.call('HINCRBY', bh, 'reserved', int(-amount))
    redis.call('HINCRBY', bh, 'spent', int(actual))
  elseif redis.call('HDEL', bh, 'x:' .. member) == 1 then
    redis.call('HINCRBY', bh, 'spent', int(actual - amount))
  end
end
"""

# KEYS: z, h per limit, then bh, bz when budgeted. ARGV: now, window_ms, tokens, hold id, n
# limits, rpm and tpm per limit (-1: none), budgeted (1/0), budget, amount, member, lease_ms,
# ttl_s. Returns {1} admitted, {0, limit index, wait ms, requests, tokens} over a rate limit,
# {2, 0, 0, spent, reserved} over the budget, {-1} when the budget bucket needs its seed.
ADMIT = _LIMITS + """
local now = now_ms(ARGV[1])
local window, tokens, id, n = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
for i = 1, n do rate_purge(KEYS[2 * i - 1], KEYS[2 * i], now - window) end
for i = 1, n do
  local r = rate_check(KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[4 + 2 * i]),
                       tonumber(ARGV[5 + 2 * i]), tokens, now, window)
  if r then return {0, i, r[1], r[2], r[3]} end
end
local b = 6 + 2 * n
local budgeted = ARGV[b] == '1'
if budgeted then
  local spent, reserved = budget_open(KEYS[2 * n + 1], KEYS[2 * n + 2], now)
  if spent == nil then return {-1, 0, 0, 0, 0} end
  if spent + reserved + tonumber(ARGV[b + 2]) > tonumber(ARGV[b + 1]) then
    return {2, 0, 0, spent, reserved}
  end
end
for i = 1, n do rate_take(KEYS[2 * i - 1], KEYS[2 * i], id, tokens, now, window) end
if budgeted then
  local bh, bz, ttl = KEYS[2 * n + 1], KEYS[2 * n + 2], tonumber(ARGV[b + 5])
  redis.call('HINCRBY', bh, 'reserved', int(tonumber(ARGV[b + 2])))
  redis.call('ZADD', bz, int(now + tonumber(ARGV[b + 4])), ARGV[b + 3])
  if ttl > 0 then
    redis.call('EXPIRE', bh, int(ttl))
    redis.call('EXPIRE', bz, int(ttl))
  end
end
return {1, 0, 0, 0, 0}
"""

# KEYS as ADMIT. ARGV: hold id, tokens (-1: leave), n limits, budgeted, member, amount,
# actual (-1: unknown, keep the reservation as spent).
SETTLE = _LIMITS + """
local n, tokens = tonumber(ARGV[3]), tonumber(ARGV[2])
if tokens >= 0 then
  for i = 1, n do rate_settle(KEYS[2 * i], ARGV[1], tokens) end
end
if ARGV[4] == '1' then
  budget_settle(KEYS[2 * n + 1], KEYS[2 * n + 2], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
end
return 1
"""

RATE_RELEASE = _COMMON + """
for i = 1, #KEYS / 2 do
  local z, h = KEYS[2 * i - 1], KEYS[2 * i]
  local old = redis.call('HGET', h, ARGV[1])
  if old then
    redis.call('HINCRBY', h, '_sum', int(-tonumber(old)))
    redis.call('HDEL', h, ARGV[1])
  end
  redis.call('ZREM', z, ARGV[1])
end
return 1
"""

BUDGET_SEED = _COMMON + """
redis.call('HSETNX', KEYS[1], 'spent', ARGV[1])
redis.call('HSETNX', KEYS[1], 'reserved', '0')
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

BREAKER_ALLOW = _COMMON + """
local now = now_ms(ARGV[1])
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'closed' then return 'closed' end
if st == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  if now - opened < tonumber(ARGV[2]) then return false end
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
end
local holder = redis.call('HGET', KEYS[1], 'probe')
local lease = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if holder and now < lease then return false end
redis.call('HSET', KEYS[1], 'probe', ARGV[4], 'probe_until', int(now + tonumber(ARGV[3])))
redis.call('EXPIRE', KEYS[1], 86400)
return ARGV[4]
"""

BREAKER_RECORD = _COMMON + """
local now = now_ms(ARGV[1])
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function reset(state)
  redis.call('HSET', KEYS[1], 'state', state, 'opened_at', int(now), 'consecutive', '0')
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('EXPIRE', KEYS[1], 86400)
end
local ok = ARGV[3] == '1'
if ARGV[2] ~= 'closed' then
  if st == 'half_open' and redis.call('HGET', KEYS[1], 'probe') == ARGV[2] then
    if ok then reset('closed') else reset('open') end
  end
  return 1
end
if st ~= 'closed' then return 0 end
local window = tonumber(ARGV[6])
redis.call('ZADD', KEYS[2], int(now), ARGV[8])
if not ok then redis.call('ZADD', KEYS[3], int(now), ARGV[8]) end
local cutoff = '(' .. int(now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff)
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], int(window + 86400000)) end
if ok then
  redis.call('HSET', KEYS[1], 'consecutive', '0')
  return 1
end
local cons = redis.call('HINCRBY', KEYS[1], 'consecutive', 1)
local calls, fails = redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])
if cons >= tonumber(ARGV[4]) or
   (calls >= tonumber(ARGV[7]) and fails / calls >= tonumber(ARGV[5])) then
  reset('open')
end
return 1
"""

BREAKER_RELEASE = """
if redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
end
return 1
"""

BREAKER_STATE = _COMMON + """
local now = now_ms(ARGV[1])
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
if st == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  if now - opened >= tonumber(ARGV[2]) then return 'half_open' end
end
return st
"""


def connect(url: str) -> Any:
    """An asyncio Redis client for `url` (connects on first use; extra `gateway`)."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise ConfigError("gateway.state on Redis needs the redis client",
                          hint="pip install 'llmswitch[gateway]'") from None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"gateway.state: {url.split('://', 1)[0]!r} is not a Redis URL",
                          hint="e.g. redis://127.0.0.1:6379/0")
    return aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=TIMEOUT_S,
                                   socket_connect_timeout=TIMEOUT_S)


class _Scripts:
    """A client plus its registered scripts (EVALSHA, loaded again after a Redis restart)."""

    def __init__(self, client: Any, clock: Callable[[], float] | None = None,
                 owns_client: bool = True) -> None:
        self.client = client
        self.clock = clock
        self._owns = owns_client

    def script(self, text: str) -> Any:
        return self.client.register_script(text)

    def now(self) -> str:
        """The time argument: '' (the Redis server's clock) unless a test clock is set."""
        return "" if self.clock is None else str(int(self.clock() * 1000))

    async def aclose(self) -> None:
        """Close the client if this store opened it."""
        if self._owns:
            await self.client.aclose()


def _rate_keys(limits: Sequence[Limit]) -> list[str]:
    keys = []
    for limit in limits:
        keys += [f"{PREFIX}rl:{limit.key}:z", f"{PREFIX}rl:{limit.key}:t"]
    return keys


def _budget_keys(bucket: str) -> list[str]:
    return [f"{PREFIX}budget:{bucket}", f"{PREFIX}budget:{bucket}:res"]


class RedisLimits(_Scripts):
    """`limits.LimitsStore` in Redis: a request's rate limits and budget reservation are
    checked and taken in ONE script (one round trip), and given back in one more."""

    def __init__(self, client: Any, clock: Callable[[], float] | None = None,
                 owns_client: bool = True, lease_s: float = BUDGET_LEASE_S) -> None:
        super().__init__(client, clock, owns_client)
        self.lease_ms = int(lease_s * 1000)
        self._admit = self.script(ADMIT)
        self._settle = self.script(SETTLE)
        self._release = self.script(RATE_RELEASE)
        self._seed = self.script(BUDGET_SEED)
        self._seeding: dict[str, asyncio.Future[None]] = {}

    async def admit(self, limits: Sequence[Limit], tokens: int, ask: BudgetAsk | None
                    ) -> Holds | RateRefusal | BudgetRefusal:
        """Take every limit and the budget reservation at once, or refuse."""
        hold_id = new_trace_id()[:24]
        keys = _rate_keys(limits)
        args: list[Any] = [self.now(), WINDOW_MS, tokens, hold_id, len(limits)]
        for limit in limits:
            args += [-1 if limit.rpm is None else limit.rpm,
                     -1 if limit.tpm is None else limit.tpm]
        member = ""
        if ask is None:
            args += [0, 0, 0, "", 0, 0]
        else:
            member = f"{hold_id}:{ask.amount}"
            keys += _budget_keys(ask.bucket)
            args += [1, ask.budget, ask.amount, member, self.lease_ms, ask.ttl_s or 0]
        for _ in range(2):
            ok, index, wait, a, b = (int(x) for x in await self._admit(keys=keys, args=args))
            if ok == 1:
                return Holds(RateHold(hold_id, tuple(limits), tokens) if limits else None,
                             BudgetHold(ask.bucket, member, ask.amount) if ask else None)
            if ok == 0:
                return RateRefusal(limits[index - 1], wait / 1000, a, b)
            if ok == 2:
                return BudgetRefusal(a, b)
            assert ask is not None
            await self._seed_once(ask)
        raise RuntimeError("the budget could not be seeded")  # pragma: no cover

    async def _seed_once(self, ask: BudgetAsk) -> None:
        """Start a bucket's counter from the ledger, one ledger read per replica at a time
        (concurrent first requests share it; the first replica's value wins)."""
        pending = self._seeding.get(ask.bucket)
        if pending is None:
            async def run() -> None:
                await self._seed(keys=_budget_keys(ask.bucket)[:1],
                                 args=[await ask.seed(), ask.ttl_s or 0])

            pending = self._seeding[ask.bucket] = asyncio.ensure_future(run())
            pending.add_done_callback(lambda _: self._seeding.pop(ask.bucket, None))
        await asyncio.shield(pending)

    async def settle(self, holds: Holds, tokens: int | None, actual: int | None) -> None:
        """Correct the tokens (`None`: leave them) and replace the budget reservation by the
        real cost (`None`: unknown, keep it as spent), in one script."""
        rate, budget = holds.rate, holds.budget
        keys = _rate_keys(rate.limits) if rate is not None else []
        args: list[Any] = [rate.id if rate else "", -1 if tokens is None or rate is None
                           else tokens, len(rate.limits) if rate else 0]
        if budget is None:
            args += [0, "", 0, -1]
        else:
            keys += _budget_keys(budget.bucket)
            args += [1, budget.id, budget.amount, -1 if actual is None else actual]
        await self._settle(keys=keys, args=args)
        if rate is not None and tokens is not None:
            rate.tokens = tokens

    async def release(self, hold: RateHold) -> None:
        """Take a rate hold out of every window (its call never ran)."""
        await self._release(keys=_rate_keys(hold.limits), args=[hold.id])


class RedisRateStore:
    """`limits.RateStore` in Redis (exact across replicas): `RedisLimits` without budgets."""

    def __init__(self, client: Any, clock: Callable[[], float] | None = None,
                 owns_client: bool = True) -> None:
        self.limits = RedisLimits(client, clock, owns_client)

    async def acquire(self, limits: Sequence[Limit], tokens: int) -> RateHold | RateRefusal:
        """Admit under every limit in one script, or refuse with the wait."""
        got = await self.limits.admit(limits, tokens, None)
        if isinstance(got, Holds):
            assert got.rate is not None
            return got.rate
        assert isinstance(got, RateRefusal)
        return got

    async def settle(self, hold: RateHold, tokens: int) -> None:
        """Correct the hold's tokens in every window still holding it."""
        await self.limits.settle(Holds(hold, None), tokens, None)

    async def release(self, hold: RateHold) -> None:
        """Take the hold out of every window."""
        await self.limits.release(hold)

    async def aclose(self) -> None:
        """Close the client if this store opened it."""
        await self.limits.aclose()


class RedisBudgetStore:
    """`limits.BudgetStore` in Redis: `RedisLimits` without rate limits."""

    def __init__(self, client: Any, clock: Callable[[], float] | None = None,
                 owns_client: bool = True, lease_s: float = BUDGET_LEASE_S) -> None:
        self.limits = RedisLimits(client, clock, owns_client, lease_s)

    async def reserve(self, bucket: str, budget: int, amount: int, seed: Seed,
                      ttl_s: int | None) -> BudgetHold | BudgetRefusal:
        """Reserve or refuse; a bucket Redis does not hold starts from the ledger's figure."""
        got = await self.limits.admit([], 0, BudgetAsk(bucket, budget, amount, seed, ttl_s))
        if isinstance(got, Holds):
            assert got.budget is not None
            return got.budget
        assert isinstance(got, BudgetRefusal)
        return got

    async def settle(self, hold: BudgetHold, actual: int | None, ttl_s: int | None) -> None:
        """Replace the reservation by the real cost (unknown: keep it as spent)."""
        await self.limits.settle(Holds(None, hold), None, actual)

    async def aclose(self) -> None:
        """Close the client if this store opened it."""
        await self.limits.aclose()


class _FailOpen:
    """Logs a Redis failure at most once a minute (calls go on without shared state)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._last = -1e18

    def __call__(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last >= 60:
            self._last = now
            log.warning("llmswitch gateway: Redis unreachable for %s (%s); going on without "
                        "shared state", self.what, exc)


class RedisBreakerStore(_Scripts):
    """The library's `BreakerStore` in Redis: circuits shared by every replica."""

    def __init__(self, client: Any, clock: Callable[[], float] | None = None,
                 owns_client: bool = True,
                 probe_lease_s: float = 60.0) -> None:
        super().__init__(client, clock, owns_client)
        self.probe_lease_ms = int(probe_lease_s * 1000)
        self._allow = self.script(BREAKER_ALLOW)
        self._record = self.script(BREAKER_RECORD)
        self._release = self.script(BREAKER_RELEASE)
        self._state = self.script(BREAKER_STATE)
        self._failed = _FailOpen("circuit breakers")

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"{PREFIX}br:{key}", f"{PREFIX}br:{key}:calls", f"{PREFIX}br:{key}:fails"]

    async def allow(self, key: str, policy: BreakerPolicy) -> Ticket | None:
        """`closed`, this replica's probe token (half-open), or `None` (open)."""
        token = "probe:" + new_trace_id()[:16]
        try:
            got = await self._allow(keys=self._keys(key)[:1], args=[
                self.now(), int(policy.cooldown * 1000), self.probe_lease_ms, token])
        except Exception as exc:
            self._failed(exc)
            return CLOSED
        return str(got) if got else None

    async def record(self, key: str, ticket: Ticket, ok: bool, policy: BreakerPolicy) -> None:
        """The verdict of a call `allow` let through."""
        try:
            await self._record(keys=self._keys(key), args=[
                self.now(), ticket, 1 if ok else 0, policy.failures, policy.error_rate,
                int(policy.window * 1000), policy.min_calls, new_trace_id()[:16]])
        except Exception as exc:
            self._failed(exc)

    async def release(self, key: str, ticket: Ticket, policy: BreakerPolicy) -> None:
        """Free this replica's probe (a call that ended without a verdict)."""
        if ticket == CLOSED:
            return
        try:
            await self._release(keys=self._keys(key)[:1], args=[ticket])
        except Exception as exc:
            self._failed(exc)

    async def state(self, key: str, policy: BreakerPolicy) -> State:
        """`closed`, `open` or `half_open` (an open circuit past its cooldown)."""
        try:
            got = await self._state(keys=self._keys(key)[:1], args=[
                self.now(), int(policy.cooldown * 1000)])
        except Exception as exc:
            self._failed(exc)
            return "closed"
        return "open" if got == "open" else "half_open" if got == "half_open" else "closed"


class RedisLimitStore:
    """The library's `LimitStore` (a loadbalance route's deployment RPM/TPM) on the rate
    store's Redis logs."""

    def __init__(self, rates: RedisRateStore) -> None:
        self.rates = rates
        self._failed = _FailOpen("deployment rate limits")

    async def acquire(self, key: str, rpm: int | None, tpm: int | None,
                      tokens: int) -> DeploymentAdmission:
        """Admit one request to deployment `key`, or say when it would fit."""
        try:
            got = await self.rates.acquire([Limit(f"deployment:{key}", rpm, tpm, key)], tokens)
        except Exception as exc:
            self._failed(exc)
            return DeploymentAdmission(True, 0.0, None)
        if isinstance(got, RateRefusal):
            return DeploymentAdmission(False, got.retry_after)
        return DeploymentAdmission(True, 0.0, got)

    async def settle(self, reservation: Any, tokens: int) -> None:
        """Correct the reservation's tokens."""
        if reservation is None:
            return
        try:
            await self.rates.settle(reservation, tokens)
        except Exception as exc:
            self._failed(exc)

    async def release(self, reservation: Any) -> None:
        """Give the reservation back."""
        if reservation is None:
            return
        try:
            await self.rates.release(reservation)
        except Exception as exc:
            self._failed(exc)
