"""`strategy: loadbalance`: spread requests over deployments of one logical model.

```yaml
routes:
  gpt4o:
    strategy: loadbalance
    policy: weighted            # or least_inflight, latency (EWMA of successful calls)
    targets:
      - {model: openai/gpt-4o, weight: 3, rpm: 500, tpm: 200000}
      - {model: azure/gpt-4o, weight: 1}
    retries: 1                  # other deployments to try after a retryable failure
    breaker: {failures: 5, cooldown: 30}
```

Targets may be plain names (weight 1, no limits) or mappings; `weights: [3, 1]` is accepted
too. Deployments whose circuit is open or whose RPM/TPM budget is spent are skipped; when all
are over budget the request waits for the earliest slot, up to `max_wait` and within the call's
`timeout` (an open circuit is not waited for), else fails at once with `rate_limited` and
`retry_after`. TPM admission counts the input plus the maximum output (`max_tokens`, else
`DEFAULT_OUTPUT_TOKENS`) and settles the real usage when the attempt ends. A stream fails over
before its first token; after it, it ends with an error (wrap the route in a `fallback` to
continue on another model).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llmswitch.errors import (
    LLMSwitchError,
    ModelNotFoundError,
    NoRouteError,
    RateLimitedError,
    ResponseError,
)
from llmswitch.models import Model, closing
from llmswitch.request import Request
from llmswitch.resilience.attempt import AttemptTimer
from llmswitch.resilience.breaker import BreakerPolicy, Ticket, give_back
from llmswitch.resilience.ratelimit import (
    DEFAULT_OUTPUT_TOKENS,
    Admission,
    input_tokens,
    used_tokens,
)
from llmswitch.resilience.retry import Deadline, is_retryable
from llmswitch.resilience.services import Resilience, resilience_of
from llmswitch.resilience.tally import Tally
from llmswitch.results import (
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from llmswitch.strategies.registry import RouteContext

Policy = Literal["weighted", "least_inflight", "latency"]
POLICIES: tuple[Policy, ...] = ("weighted", "least_inflight", "latency")
OPTIONS = frozenset({"policy", "weights", "retries", "breaker", "max_wait"})
TARGET_KEYS = frozenset({"model", "weight", "rpm", "tpm"})


@dataclass(frozen=True)
class Deployment:
    """One target: its name, model, weight and limits."""

    name: str
    model: Model
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None


def _limit(ctx: RouteContext, i: int, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ctx.fail(f"targets[{i}].{key} must be a positive whole number, not {value!r}")
    return value


def _weight(ctx: RouteContext, i: int, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.fail(f"targets[{i}] weight must be a number, not {value!r}")
    if value < 0:
        raise ctx.fail(f"targets[{i}] has a negative weight ({value})",
                       hint="weights are relative shares: use 0 to disable a deployment")
    return float(value)


def deployments(ctx: RouteContext) -> list[Deployment]:
    """The route's targets with weights and limits; bad entries are ConfigErrors."""
    weights = ctx.option("weights")
    if weights is not None and (not isinstance(weights, list)
                                or len(weights) != len(ctx.route.targets)):
        raise ctx.fail("weights must be a list with one number per target")
    out = []
    for i, target in enumerate(ctx.route.targets):
        spec: dict[str, Any] = {"model": target} if isinstance(target, str) else target
        if not isinstance(spec, dict) or not isinstance(spec.get("model"), str):
            raise ctx.fail(f"targets[{i}] must be a name or a mapping with 'model'")
        unknown = set(spec) - TARGET_KEYS
        if unknown:
            raise ctx.fail(f"targets[{i}]: unknown key(s) {', '.join(sorted(unknown))}")
        weight = _weight(ctx, i, weights[i] if weights is not None else spec.get("weight", 1))
        try:
            model = ctx.resolve(spec["model"])
        except ModelNotFoundError as exc:
            raise ctx.fail(f"targets[{i}]: {exc.message}", hint=exc.hint) from None
        out.append(Deployment(spec["model"], model, weight, _limit(ctx, i, "rpm", spec.get("rpm")),
                              _limit(ctx, i, "tpm", spec.get("tpm"))))
    if not out:
        raise ctx.fail("needs at least one target")
    if not any(d.weight > 0 for d in out):
        raise ctx.fail("every weight is zero: no deployment can serve")
    return out


def build(ctx: RouteContext) -> Model:
    """The load balancer for a `strategy: loadbalance` route."""
    unknown = set(ctx.route.options()) - OPTIONS
    if unknown:
        raise ctx.fail(f"unknown option(s) {', '.join(sorted(unknown))}",
                       hint="known: " + ", ".join(sorted(OPTIONS)))
    policy = ctx.option("policy", "weighted")
    if policy not in POLICIES:
        raise ctx.fail(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    targets = deployments(ctx)
    retries = ctx.option("retries", len(targets) - 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ctx.fail(f"retries must be a whole number >= 0, not {retries!r}")
    max_wait = ctx.option("max_wait", 30.0)
    if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or max_wait < 0:
        raise ctx.fail(f"max_wait must be a number of seconds >= 0, not {max_wait!r}")
    try:
        breaker = BreakerPolicy.from_option(ctx.option("breaker"))
    except (TypeError, ValueError) as exc:
        raise ctx.fail(str(exc)) from None
    return LoadBalance(ctx.name, targets, policy, retries, breaker, float(max_wait),
                       resilience_of(ctx.services))


@dataclass(slots=True)
class _Call:
    """One request through the balancer: its bookkeeping, the deployments tried, its time
    budget (the request's `timeout`) and its token estimates for TPM budgets."""

    tally: Tally
    deadline: Deadline
    input_tokens: int
    tokens: int
    tried: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Slot:
    """What one attempt holds until it ends: the deployment's in-flight count, its breaker
    ticket and its RPM/TPM reservation."""

    d: Deployment
    ticket: Ticket | None
    reservation: Any


class LoadBalance(Model):
    """Chooses a deployment per request by policy; retries on another after a failure."""

    def __init__(self, name: str, targets: Sequence[Deployment], policy: Policy, retries: int,
                 breaker: BreakerPolicy | None, max_wait: float, state: Resilience) -> None:
        self.name = name
        self.targets = list(targets)
        self.policy = policy
        self.retries = retries
        self.breaker = breaker
        self.max_wait = max_wait
        self.state = state
        self._counts_tokens = any(d.tpm is not None for d in self.targets)

    def describe(self) -> dict[str, Any]:
        """The route, its policy and deployments."""
        return {"name": self.name, "kind": "loadbalance", "policy": self.policy,
                "targets": [{"name": d.name, "weight": d.weight} for d in self.targets]}

    async def _open(self, d: Deployment) -> bool:
        return self.breaker is not None and await self.state.store.state(
            d.name, self.breaker) == "open"

    def _call(self, request: Request) -> _Call:
        tally = Tally("loadbalance", self.name, [d.name for d in self.targets])
        deadline = Deadline.for_call(self.state.clock, request)
        if not self._counts_tokens:
            return _Call(tally, deadline, 0, 0)
        inp = input_tokens(request)
        return _Call(tally, deadline, inp, inp + (request.settings.max_tokens
                                                  or DEFAULT_OUTPUT_TOKENS))

    async def choose(self, call: _Call) -> _Slot:
        """The deployment for the next attempt, admitted by its limits and its breaker
        (waits for a rate-limit slot when every deployment is over budget)."""
        waited = 0.0
        while True:
            candidates = [d for d in self.targets if d.name not in call.tried and d.weight > 0
                          and not await self._open(d)]
            if not candidates:
                raise NoRouteError(f"route {self.name}: no deployment available "
                                   "(circuits open or all tried)")
            soonest: float | None = None
            while candidates:
                pick = self._pick(candidates)
                candidates.remove(pick)
                admission = await self._admit(pick, call.tokens)
                if admission is not None and not admission.admitted:
                    soonest = admission.retry_after if soonest is None else min(
                        soonest, admission.retry_after)
                    continue
                slot = await self._allow(pick, admission)
                if slot is not None:
                    self.state.inflight[pick.name] = self.state.inflight.get(pick.name, 0) + 1
                    return slot
            if soonest is None:
                raise NoRouteError(f"route {self.name}: no deployment available "
                                   "(circuits open or all tried)")
            wait = max(soonest, 0.01)
            if waited + wait > self.max_wait or not call.deadline.allows(wait):
                raise RateLimitedError(
                    f"route {self.name}: every deployment is over its RPM/TPM budget; the "
                    f"next slot frees in {wait:.3g}s", retry_after=wait,
                    hint="raise rpm/tpm, max_wait or the call's timeout, or add deployments")
            await self.state.clock.sleep(wait)
            waited += wait
            call.tally.waited += wait

    async def _admit(self, d: Deployment, tokens: int) -> Admission | None:
        """The limit store's answer for a deployment with limits (`None`: it has none)."""
        if d.rpm is None and d.tpm is None:
            return None
        return await self.state.limit_store.acquire(d.name, d.rpm, d.tpm,
                                                    tokens if d.tpm is not None else 0)

    async def _allow(self, d: Deployment, admission: Admission | None) -> _Slot | None:
        """The breaker's ticket for an admitted deployment; `None` (its reservation given
        back) when the circuit refuses."""
        reservation = admission.reservation if admission is not None else None
        if self.breaker is None:
            return _Slot(d, None, reservation)
        try:
            ticket = await self.state.store.allow(d.name, self.breaker)
        except BaseException:
            if reservation is not None:
                await self.state.limit_store.release(reservation)
            raise
        if ticket is None:
            if reservation is not None:
                await self.state.limit_store.release(reservation)
            return None
        return _Slot(d, ticket, reservation)

    def _pick(self, ready: list[Deployment]) -> Deployment:
        if self.policy == "least_inflight":
            return min(ready, key=lambda d: (self.state.inflight.get(d.name, 0), -d.weight))
        if self.policy == "latency":
            return min(ready, key=lambda d: self.state.latency_ms.get(d.name, 0.0))
        total = sum(d.weight for d in ready)
        point = self.state.rng() * total
        for d in ready:
            point -= d.weight
            if point < 0:
                return d
        return ready[-1]

    async def _finish(self, slot: _Slot, call: _Call, error: BaseException | None, *,
                      usage: Usage | None = None, output_chars: int = 0, sent: bool = True,
                      latency_ms: float | None = None) -> None:
        """Give back everything an attempt held, however it ended: the in-flight count, the
        reservation (settled at the tokens used, or released when nothing was sent) and the
        breaker ticket."""
        key = slot.d.name
        self.state.inflight[key] = max(0, self.state.inflight.get(key, 1) - 1)
        if error is None and latency_ms is not None:
            self.state.observe_latency(key, latency_ms)
        try:  # a store that fails (or a cancellation) while one is given back skips no other
            if slot.reservation is not None:
                if not sent:
                    await self.state.limit_store.release(slot.reservation)
                elif slot.d.tpm is not None:
                    if usage is None and isinstance(error, LLMSwitchError):
                        usage = error.usage
                    await self.state.limit_store.settle(slot.reservation, used_tokens(
                        usage, call.input_tokens + (output_chars + 3) // 4))
        finally:
            if slot.ticket is not None and self.breaker is not None:
                if sent:
                    await give_back(self.state.store, key, slot.ticket, self.breaker, error)
                else:
                    await self.state.store.release(key, slot.ticket, self.breaker)

    async def _next(self, call: _Call, request: Request) -> tuple[_Slot, Request]:
        """The next attempt's slot and request (its timeout clipped to what is left)."""
        slot: _Slot | None = None
        try:
            if call.deadline.expired():
                raise call.deadline.spent(self.name)
            slot = await self.choose(call)
            attempt = call.deadline.clip(request)
            if attempt is None:
                raise call.deadline.spent(self.name)
        except LLMSwitchError as exc:
            if slot is not None:
                await self._finish(slot, call, exc, sent=False)
            call.tally.decide(None, "no deployment answered",
                              **{"llmswitch.policy": self.policy})
            if not call.tally.attempts and isinstance(exc, (RateLimitedError, NoRouteError)):
                # Nothing was tried: the refusal itself (`rate_limited` with `retry_after`, or
                # `no_route`), so an outer route waits for the slot or moves on.
                raise call.tally.raise_as_is(exc) from None
            call.tally.note(exc)
            raise call.tally.all_failed(f"route {self.name}: no deployment answered") from None
        call.tried.add(slot.d.name)
        return slot, attempt

    def _final(self, tally: Tally, d: Deployment, exc: LLMSwitchError) -> LLMSwitchError:
        tally.decide(None, f"{d.name} failed: {exc.type}", **{"llmswitch.policy": self.policy})
        if len(tally.errors) == 1 and not is_retryable(exc):
            return tally.raise_as_is(exc)
        return tally.all_failed(f"route {self.name}: no deployment answered")

    def _served(self, tally: Tally, d: Deployment, completion: Completion) -> Completion:
        tally.served(d.name, completion)
        tally.decide(d.name, f"{self.policy} choice", **{"llmswitch.policy": self.policy})
        return tally.completion(completion)

    async def complete(self, request: Request) -> Completion:
        """Answer on a chosen deployment, trying others after retryable failures."""
        call = self._call(request)
        while True:
            slot, attempt = await self._next(call, request)
            try:
                completion = await AttemptTimer(attempt, slot.d.name).run(
                    slot.d.model.complete(attempt))
            except BaseException as exc:  # every way out gives back what the attempt held
                await self._finish(slot, call, exc)
                if not isinstance(exc, LLMSwitchError):
                    raise
                call.tally.failed(slot.d.name, exc)
                if is_retryable(exc) and len(call.tried) <= self.retries:
                    continue
                raise self._final(call.tally, slot.d, exc) from None
            await self._finish(slot, call, None, usage=completion.usage,
                               latency_ms=completion.latency_ms)
            return self._served(call.tally, slot.d, completion)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream from a chosen deployment; fail over only before the first token."""
        call = self._call(request)
        while True:
            slot, attempt = await self._next(call, request)
            chars = 0
            final: Completion | None = None
            try:  # every way out (the caller leaving included) gives back what it held
                # `aclosing`: a caller who leaves closes the attempt's stream now.
                async with closing(_events(slot.d.name, slot.d.model, attempt)) as events:
                    async for event in events:
                        if isinstance(event, StreamEnd):
                            final = event.completion
                            continue
                        if isinstance(event, TextDelta):
                            chars += len(event.text) or 1
                        elif isinstance(event, ToolCallDelta):
                            chars += 1
                        yield event
            except BaseException as exc:
                await self._finish(slot, call, exc, output_chars=chars)
                if not isinstance(exc, LLMSwitchError):
                    raise
                call.tally.failed(slot.d.name, exc)
                if not chars and is_retryable(exc) and len(call.tried) <= self.retries:
                    continue
                raise self._final(call.tally, slot.d, exc) from None
            assert final is not None
            await self._finish(slot, call, None, usage=final.usage,
                               latency_ms=final.latency_ms)
            yield StreamEnd(self._served(call.tally, slot.d, final))
            return

    async def aclose(self) -> None:
        """Targets are owned by the Switch's resolver."""


async def _events(name: str, model: Model, request: Request) -> AsyncIterator[StreamEvent]:
    """A model's stream, each event awaited within the attempt's time, always closed, and an
    error when it ends without a final result."""
    stream = model.stream(request)
    timer = AttemptTimer(request, name)
    ended = False
    try:
        while True:
            try:
                event = await timer.next(stream)
            except StopAsyncIteration:
                break
            ended = ended or isinstance(event, StreamEnd)
            yield event
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
    if not ended:
        raise ResponseError("the stream ended without a final result")
