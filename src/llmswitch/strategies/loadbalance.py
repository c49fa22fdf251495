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
are over budget the request waits for the earliest slot (an open circuit is not waited for).
A stream fails over before its first token; after it, it ends with an error (wrap the route in
a `fallback` to continue on another model).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llmswitch.errors import LLMSwitchError, ModelNotFoundError, NoRouteError, ResponseError
from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.resilience.breaker import BreakerPolicy, counts_against
from llmswitch.resilience.retry import is_retryable
from llmswitch.resilience.services import Resilience, resilience_of
from llmswitch.resilience.tally import Tally
from llmswitch.results import Completion, StreamEnd, StreamEvent, TextDelta, ToolCallDelta
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


def estimate_tokens(request: Request) -> int:
    """A rough token count for TPM budgeting: prompt characters / 4 plus the output limit."""
    return len(request.prompt_text) // 4 + (request.settings.max_tokens or 0)


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

    def describe(self) -> dict[str, Any]:
        """The route, its policy and deployments."""
        return {"name": self.name, "kind": "loadbalance", "policy": self.policy,
                "targets": [{"name": d.name, "weight": d.weight} for d in self.targets]}

    def _key(self, d: Deployment) -> str:
        return d.name

    async def _open(self, d: Deployment) -> bool:
        return self.breaker is not None and await self.state.store.state(
            self._key(d), self.breaker) == "open"

    async def choose(self, request: Request, tried: set[str], tally: Tally) -> Deployment:
        """The deployment for the next attempt (waits for a rate-limit slot if need be)."""
        tokens = estimate_tokens(request)
        waited = 0.0
        while True:
            healthy = [d for d in self.targets if d.name not in tried and d.weight > 0
                       and not await self._open(d)]
            if not healthy:
                raise NoRouteError(f"route {self.name}: no deployment available "
                                   "(circuits open or all tried)")
            ready = [d for d in healthy if self._limiter(d).has_room(tokens)]
            while ready:
                pick = self._pick(ready)
                if self.breaker is None or await self.state.store.allow(self._key(pick),
                                                                         self.breaker):
                    self._limiter(pick).acquire(tokens)
                    return pick
                ready.remove(pick)
            wait = min(self._limiter(d).free_in() for d in healthy) or 0.01
            if waited + wait > self.max_wait:
                raise NoRouteError(f"route {self.name}: every deployment is over its RPM/TPM "
                                   f"budget for more than {self.max_wait:g}s",
                                   hint="raise rpm/tpm or max_wait, or add deployments")
            await self.state.clock.sleep(wait)
            waited += wait
            tally.waited += wait

    def _limiter(self, d: Deployment) -> Any:
        return self.state.limiter(self._key(d), d.rpm, d.tpm)

    def _pick(self, ready: list[Deployment]) -> Deployment:
        if self.policy == "least_inflight":
            return min(ready, key=lambda d: (self.state.inflight.get(self._key(d), 0),
                                             -d.weight))
        if self.policy == "latency":
            return min(ready, key=lambda d: self.state.latency_ms.get(self._key(d), 0.0))
        total = sum(d.weight for d in ready)
        point = self.state.rng() * total
        for d in ready:
            point -= d.weight
            if point < 0:
                return d
        return ready[-1]

    async def _record(self, d: Deployment, error: BaseException | None,
                      latency_ms: float | None = None) -> None:
        key = self._key(d)
        self.state.inflight[key] = max(0, self.state.inflight.get(key, 1) - 1)
        if self.breaker is not None and (error is None or counts_against(error)):
            await self.state.store.record(key, error is None, self.breaker)
        if error is None and latency_ms is not None:
            self.state.observe_latency(key, latency_ms)

    def _start(self, d: Deployment) -> None:
        key = self._key(d)
        self.state.inflight[key] = self.state.inflight.get(key, 0) + 1

    async def _next(self, request: Request, tried: set[str], tally: Tally) -> Deployment:
        try:
            d = await self.choose(request, tried, tally)
        except NoRouteError as exc:
            tally.note(exc)
            tally.decide(None, "no deployment answered", **{"llmswitch.policy": self.policy})
            raise tally.all_failed(f"route {self.name}: no deployment answered") from None
        tried.add(d.name)
        self._start(d)
        return d

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
        tally = Tally("loadbalance", self.name, [d.name for d in self.targets])
        tried: set[str] = set()
        while True:
            d = await self._next(request, tried, tally)
            try:
                completion = await d.model.complete(request)
            except LLMSwitchError as exc:
                await self._record(d, exc)
                tally.failed(d.name, exc)
                if is_retryable(exc) and len(tried) <= self.retries:
                    continue
                raise self._final(tally, d, exc) from None
            await self._record(d, None, completion.latency_ms)
            return self._served(tally, d, completion)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream from a chosen deployment; fail over only before the first token."""
        tally = Tally("loadbalance", self.name, [d.name for d in self.targets])
        tried: set[str] = set()
        while True:
            d = await self._next(request, tried, tally)
            began = False
            final: Completion | None = None
            try:
                async for event in _events(d.model, request):
                    if isinstance(event, StreamEnd):
                        final = event.completion
                        continue
                    began = began or isinstance(event, TextDelta | ToolCallDelta)
                    yield event
            except LLMSwitchError as exc:
                await self._record(d, exc)
                tally.failed(d.name, exc)
                if not began and is_retryable(exc) and len(tried) <= self.retries:
                    continue
                raise self._final(tally, d, exc) from None
            assert final is not None
            await self._record(d, None, final.latency_ms)
            yield StreamEnd(self._served(tally, d, final))
            return

    async def aclose(self) -> None:
        """Targets are owned by the Switch's resolver."""


async def _events(model: Model, request: Request) -> AsyncIterator[StreamEvent]:
    """A model's stream, always closed, and an error when it ends without a final result."""
    stream = model.stream(request)
    ended = False
    try:
        async for event in stream:
            ended = ended or isinstance(event, StreamEnd)
            yield event
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
    if not ended:
        raise ResponseError("the stream ended without a final result")
