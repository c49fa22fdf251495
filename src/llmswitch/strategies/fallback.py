"""`strategy: fallback`: try targets in order, retrying each on retryable errors.

```yaml
routes:
  answer:
    strategy: fallback
    targets: [openai/gpt-4o-mini, anthropic/claude-haiku-4-5, local/smollm2-135m]
    retries: 2                      # per target, on retryable error types only
    backoff: {base: 0.5, cap: 20}   # full-jitter exponential; retry_after is honoured
    fallback_on: [rate_limited, overloaded, timeout, connection, bad_response,
                  context_too_long, quota_exceeded]   # the default
    deadline: 60                    # seconds for the whole call, waits included (the
                                    # call's `timeout` setting, when smaller, wins)
    on_stream_error: continue       # or `error`, once the answer has begun streaming
    breaker: {failures: 5, cooldown: 30}   # or false
```

An error the route does not fall back on (e.g. `bad_request`, `authentication`) on the first
attempt is raised as is, carrying the route's trace; otherwise, when the route gives up,
`AllAttemptsFailedError` carries each attempt's cause. Usage and cost always sum every attempt.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llmswitch.errors import (
    ERROR_TYPES,
    AllAttemptsFailedError,
    LLMSwitchError,
    ModelNotFoundError,
    NoRouteError,
    ResponseError,
)
from llmswitch.messages import Message
from llmswitch.models import Model, closing
from llmswitch.request import Request
from llmswitch.resilience.attempt import AttemptTimer
from llmswitch.resilience.breaker import BreakerPolicy, Ticket, give_back
from llmswitch.resilience.retry import Deadline, RetryPolicy, is_retryable
from llmswitch.resilience.services import Resilience, resilience_of
from llmswitch.resilience.tally import Tally
from llmswitch.results import (
    Completion,
    StreamEnd,
    StreamEvent,
    StreamNotice,
    TextDelta,
    ToolCallDelta,
    UsageUpdate,
)
from llmswitch.strategies.registry import RouteContext

DEFAULT_FALLBACK_ON = ("rate_limited", "overloaded", "timeout", "connection", "bad_response",
                       "context_too_long", "quota_exceeded")
CONTINUE_PROMPT = ("Your previous answer was cut off. Continue it exactly where it stopped: "
                   "do not repeat anything already written and add no preamble.")
OPTIONS = frozenset({"retries", "backoff", "fallback_on", "deadline", "on_stream_error",
                     "breaker", "continue_prompt"})


@dataclass(frozen=True)
class FallbackOptions:
    """A fallback route's options, validated."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    fallback_on: tuple[type[LLMSwitchError], ...] = tuple(
        ERROR_TYPES[t] for t in DEFAULT_FALLBACK_ON)
    deadline: float | None = None
    on_stream_error: Literal["continue", "error"] = "continue"
    breaker: BreakerPolicy | None = field(default_factory=BreakerPolicy)
    continue_prompt: str = CONTINUE_PROMPT


def parse_options(ctx: RouteContext) -> FallbackOptions:
    """Validate the route's options; a bad value is a ConfigError naming the route."""
    opts = ctx.route.options()
    unknown = set(opts) - OPTIONS
    if unknown:
        raise ctx.fail(f"unknown option(s) {', '.join(sorted(unknown))}",
                       hint="known: " + ", ".join(sorted(OPTIONS)))
    try:
        retry = RetryPolicy.from_options(opts.get("retries", 2), opts.get("backoff"))
        breaker = BreakerPolicy.from_option(opts.get("breaker"))
    except (TypeError, ValueError) as exc:
        raise ctx.fail(str(exc)) from None
    return FallbackOptions(
        retry=retry,
        fallback_on=error_types(ctx, opts.get("fallback_on", list(DEFAULT_FALLBACK_ON))),
        deadline=_deadline(ctx, opts.get("deadline")),
        on_stream_error=_stream_mode(ctx, opts.get("on_stream_error", "continue")),
        breaker=breaker,
        continue_prompt=str(opts.get("continue_prompt", CONTINUE_PROMPT)),
    )


def error_types(ctx: RouteContext, names: Any) -> tuple[type[LLMSwitchError], ...]:
    """Error classes from a list of `type` names (`fallback_on`)."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        raise ctx.fail("fallback_on must be a list of error types")
    bad = [n for n in names if n not in ERROR_TYPES]
    if bad:
        raise ctx.fail(f"fallback_on: unknown error type(s) {', '.join(map(str, bad))}",
                       hint="known: " + ", ".join(sorted(ERROR_TYPES)))
    return tuple(ERROR_TYPES[n] for n in names)


def _deadline(ctx: RouteContext, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ctx.fail(f"deadline must be a positive number of seconds, not {value!r}")
    return float(value)


def _stream_mode(ctx: RouteContext, value: Any) -> Literal["continue", "error"]:
    if value == "continue":
        return "continue"
    if value == "error":
        return "error"
    raise ctx.fail(f"on_stream_error must be 'continue' or 'error', not {value!r}")


def resolve_targets(ctx: RouteContext) -> list[tuple[str, Model]]:
    """The route's targets as (name, model); an unknown name is a ConfigError naming the route."""
    if not ctx.route.targets:
        raise ctx.fail("needs at least one target")
    out = []
    for i, target in enumerate(ctx.route.targets):
        if not isinstance(target, str):
            raise ctx.fail(f"targets[{i}] must be a model or route name")
        try:
            out.append((target, ctx.resolve(target)))
        except ModelNotFoundError as exc:
            raise ctx.fail(f"targets[{i}]: {exc.message}", hint=exc.hint) from None
    return out


def build(ctx: RouteContext) -> Model:
    """The fallback model for a `strategy: fallback` route."""
    options = parse_options(ctx)
    return Fallback(ctx.name, resolve_targets(ctx), options, resilience_of(ctx.services))


def matches(error: BaseException, kinds: tuple[type[LLMSwitchError], ...]) -> bool:
    """Whether an error is one to fall back on; a nested route's failure matches when any of
    its causes does. A target that could not be tried at all (`NoRouteError`: its circuits
    are open, no deployment is available) is always moved past."""
    if isinstance(error, AllAttemptsFailedError) and AllAttemptsFailedError not in kinds:
        # A nested route notes a NoRouteError for every target it skipped: those say nothing
        # of why it failed, so only its real causes decide (none at all: nothing was tried).
        real = [e for e in error.errors if not isinstance(e, NoRouteError)]
        return any(matches(e, kinds) for e in real) if real else True
    return isinstance(error, (*kinds, NoRouteError))


@dataclass(slots=True)
class _Step:
    """One attempt: its target, the wait taken before it, its breaker ticket (to give back
    however the attempt ends) and its request (the timeout clipped to what is left)."""

    name: str
    model: Model
    wait: float
    ticket: Ticket | None
    request: Request


class _Plan:
    """Which target to try next, with retries, waits, breakers and the call's time budget
    (the request's `timeout` or the route's `deadline`, whichever is smaller)."""

    def __init__(self, route: Fallback, tally: Tally, request: Request) -> None:
        self.route = route
        self.tally = tally
        self.index = 0
        self.retry = 0
        self.wait = 0.0
        self.deadline = Deadline.for_call(route.state.clock, request, route.options.deadline)
        self.skipped: list[str] = []

    async def next(self, request: Request) -> _Step | None:
        """The next attempt, after its wait; `None` when no target or no time is left."""
        opts, state = self.route.options, self.route.state
        while self.index < len(self.route.targets):
            name, model = self.route.targets[self.index]
            if self.deadline.expired():
                self.tally.note(self.deadline.spent(self.route.name))
                return None
            ticket = None
            if opts.breaker is not None:
                ticket = await state.store.allow(name, opts.breaker)
                if ticket is None:
                    self.skipped.append(name)
                    self.tally.note(NoRouteError(f"{name}: circuit open, skipped",
                                                 hint="it is probed again after the cooldown"))
                    self._advance()
                    continue
            step = _Step(name, model, self.wait, ticket, request)
            self.wait = 0.0
            try:
                if step.wait > 0:
                    await state.clock.sleep(step.wait)
                    self.tally.waited += step.wait
                clipped = self.deadline.clip(request)
            except BaseException:
                await self.settle(step, None, sent=False)
                raise
            if clipped is None:
                await self.settle(step, None, sent=False)
                self.tally.note(self.deadline.spent(self.route.name))
                return None
            step.request = clipped
            return step
        return None

    def _advance(self) -> None:
        self.index += 1
        self.retry = 0
        self.wait = 0.0

    async def settle(self, step: _Step, error: BaseException | None, *,
                     sent: bool = True) -> None:
        """Give the attempt's breaker ticket back, however the attempt ended (released
        without a verdict when it was never sent)."""
        breaker, store = self.route.options.breaker, self.route.state.store
        if step.ticket is None or breaker is None:
            return
        if sent:
            await give_back(store, step.name, step.ticket, breaker, error)
        else:
            await store.release(step.name, step.ticket, breaker)

    def again(self, error: LLMSwitchError) -> bool:
        """Whether another attempt follows a failed one (a retry after a wait that fits in
        the time left, or the next target)."""
        opts = self.route.options
        cut: float | None = None
        if is_retryable(error) and self.retry < opts.retry.retries:
            wait = opts.retry.wait(self.retry, error, self.route.state.rng)
            if self.deadline.allows(wait):
                self.retry += 1
                self.wait = wait
                return True
            cut = wait
        if matches(error, opts.fallback_on):
            self._advance()
            if self.index < len(self.route.targets):
                return True
        if cut is not None:
            self.tally.note(self.deadline.no_room(self.route.name, cut))
        return False


class Fallback(Model):
    """Tries targets in order; retries each on retryable errors; fails over mid-stream."""

    def __init__(self, name: str, targets: Sequence[tuple[str, Model]],
                 options: FallbackOptions, state: Resilience) -> None:
        self.name = name
        self.targets = list(targets)
        self.options = options
        self.state = state

    def describe(self) -> dict[str, Any]:
        """The route and its targets."""
        return {"name": self.name, "kind": "fallback",
                "targets": [m.describe() for _, m in self.targets]}

    async def complete(self, request: Request) -> Completion:
        """Answer with the first target that succeeds."""
        tally = Tally("fallback", self.name, [n for n, _ in self.targets])
        plan = _Plan(self, tally, request)
        while (step := await plan.next(request)) is not None:
            try:
                completion = await AttemptTimer(step.request, step.name).run(
                    step.model.complete(step.request))
            except BaseException as exc:  # every way out gives the breaker ticket back
                await plan.settle(step, exc)
                if not isinstance(exc, LLMSwitchError):
                    raise
                tally.failed(step.name, exc, step.wait)
                if not plan.again(exc):
                    raise self._final_error(tally, plan, exc) from None
                continue
            await plan.settle(step, None)
            tally.served(step.name, completion, step.wait)
            tally.decide(step.name, _reason(step.name, tally, plan), **_skipped(plan))
            return tally.completion(completion)
        raise self._final_error(tally, plan, None)

    def _final_error(self, tally: Tally, plan: _Plan, last: LLMSwitchError | None
                     ) -> LLMSwitchError:
        tally.decide(None, "no target answered", **_skipped(plan))
        if last is not None and len(tally.errors) == 1 and \
                not matches(last, self.options.fallback_on) and not is_retryable(last):
            return tally.raise_as_is(last)  # e.g. a bad request: the caller's to fix
        return tally.all_failed(f"route {self.name}: every target failed",
                                hint="see each cause; the trace shows every attempt")

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream from the first target that works. Before the first token a failure switches
        targets invisibly; after it, `on_stream_error` decides: `continue` passes the partial
        answer to the next attempt (with a `StreamNotice`), `error` raises."""
        tally = Tally("fallback", self.name, [n for n, _ in self.targets])
        plan = _Plan(self, tally, request)
        partial: list[str] = []
        ttft: list[float] = []
        failovers = 0
        tools_began = False
        while (step := await plan.next(request)) is not None:
            name, prefix = step.name, "".join(partial)
            final: Completion | None = None
            try:  # every way out (the caller leaving included) gives the breaker ticket back
                attempt = step.request
                if prefix:
                    attempt = continuation(attempt, prefix, self.options.continue_prompt)
                    failovers += 1
                    yield StreamNotice("failover", f"continuing on {name} after "
                                                   f"{len(prefix)} characters")
                # `aclosing`: a caller who leaves closes the attempt's stream now.
                async with closing(_attempt_events(name, step.model, attempt, tally)) as events:
                    async for event in events:
                        if isinstance(event, StreamEnd):
                            final = event.completion
                            continue
                        if isinstance(event, TextDelta | ToolCallDelta):
                            _first_token(ttft, tally)
                            if isinstance(event, TextDelta):
                                partial.append(event.text)
                            else:
                                tools_began = True
                        yield event
            except BaseException as exc:
                await plan.settle(step, exc)
                if not isinstance(exc, LLMSwitchError):
                    raise
                tally.failed(name, exc, step.wait)
                began = tools_began or any(partial)
                retry = plan.again(exc)
                if began and (self.options.on_stream_error == "error" or tools_began
                              or not retry):
                    tally.span.attributes["llmswitch.stream_failed_after_chars"] = len(
                        "".join(partial))
                    raise self._final_error(tally, plan, exc) from None
                if not retry:
                    raise self._final_error(tally, plan, exc) from None
                continue
            assert final is not None
            await plan.settle(step, None)
            tally.served(name, final, step.wait)
            extra: dict[str, Any] = _skipped(plan)
            if failovers:
                extra["llmswitch.stream_failover"] = failovers
            tally.decide(name, _reason(name, tally, plan), **extra)
            yield StreamEnd(tally.completion(
                final, text=prefix + final.text, ttft_ms=ttft[0] if ttft else None))
            return
        raise self._final_error(tally, plan, None)

    async def aclose(self) -> None:
        """Targets are owned by the Switch's resolver, which closes them."""


async def _attempt_events(name: str, model: Model, request: Request, tally: Tally
                          ) -> AsyncIterator[StreamEvent]:
    """One attempt's events, each awaited within the attempt's time: usage made cumulative
    over the route; a stream without a final result is an error; the inner stream is always
    closed."""
    stream = model.stream(request)
    timer = AttemptTimer(request, name)
    ended = False
    try:
        while True:
            try:
                event = await timer.next(stream)
            except StopAsyncIteration:
                break
            if isinstance(event, UsageUpdate):
                yield UsageUpdate(tally.usage + event.usage)
                continue
            ended = ended or isinstance(event, StreamEnd)
            yield event
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
    if not ended:
        raise ResponseError("the stream ended without a final result")


def _first_token(ttft: list[float], tally: Tally) -> None:
    if not ttft:
        ttft.append(round((time.perf_counter() - tally.started) * 1000, 3))


def continuation(request: Request, partial: str, prompt: str) -> Request:
    """The request extended so another model continues a cut-off answer."""
    return request.with_messages(
        [*request.messages, Message.assistant(partial), Message.user(prompt)])


def _reason(name: str, tally: Tally, plan: _Plan) -> str:
    if tally.attempts == 1:
        return "first target answered"
    kinds = ", ".join(getattr(e, "type", type(e).__name__) for e in tally.errors)
    return f"{name} answered after {tally.attempts - 1} failed attempt(s): {kinds}"


def _skipped(plan: _Plan) -> dict[str, Any]:
    return {"llmswitch.skipped": list(plan.skipped)} if plan.skipped else {}
