"""`Tally`: the bookkeeping every strategy shares.

A strategy makes several calls; its completion must sum their usage and cost (failed calls
too: they were billed) and carry one `strategy` span whose children are each call's trace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

from llmswitch.errors import AllAttemptsFailedError, LLMSwitchError
from llmswitch.models import closing
from llmswitch.observe.trace import Span
from llmswitch.results import Completion, StreamEnd, StreamEvent, Usage

if TYPE_CHECKING:
    from llmswitch.models import Model
    from llmswitch.request import Request

E = TypeVar("E", bound=LLMSwitchError)


class Tally:
    """Collects the calls of one strategy run: usage, cost, errors and their traces."""

    def __init__(self, name: str, strategy: str, **attributes: Any) -> None:
        self.started = time.perf_counter()
        self.span = Span(name, "strategy", {"llmswitch.strategy": strategy, **attributes})
        self.usage = Usage()
        self.cost: float | None = 0.0
        self.errors: list[BaseException] = []

    def add(self, completion: Completion, parent: Span | None = None) -> Completion:
        """Count a successful call (its trace goes under `parent`, default the strategy span)."""
        self.usage = self.usage + completion.usage
        self._cost(completion.cost_usd)
        (parent or self.span).child(completion.trace)
        return completion

    def failed(self, error: BaseException, parent: Span | None = None) -> BaseException:
        """Count a failed call: what it was billed (if anything) and its trace."""
        self.errors.append(error)
        usage = getattr(error, "usage", None)
        if usage is not None:
            self.usage = self.usage + usage
            self._cost(getattr(error, "cost_usd", None))
        trace = getattr(error, "trace", None)
        if trace is None:
            trace = Span(f"call {getattr(error, 'model', None) or 'model'}", "attempt").fail(error)
        (parent or self.span).child(trace)
        return error

    def _cost(self, value: float | None) -> None:
        self.cost = None if value is None or self.cost is None else self.cost + value

    def decide(self, chosen: str, reason: str, **extra: Any) -> None:
        """Record the decision attributes (`llmswitch.chosen`, `.reason`, `.scores`, …)."""
        self.span.attributes["llmswitch.chosen"] = chosen
        self.span.attributes["llmswitch.reason"] = reason
        for key, value in extra.items():
            self.span.attributes[f"llmswitch.{key}"] = value

    def result(self, completion: Completion) -> Completion:
        """`completion` (the answer) with the summed usage/cost and the strategy span."""
        self.span.finish(self.started)
        if self.cost is not None:
            self.cost = round(self.cost, 10)
        return completion.replace(
            usage=self.usage, cost_usd=self.cost, trace=self.span,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
        )

    def fail(self, error: E) -> E:
        """`error` with the strategy span (marked failed) as its trace, ready to raise."""
        self.span.finish(self.started).fail(error)
        if self.usage != Usage() or self.cost:  # every call so far (this one was `failed()`)
            error.usage = self.usage
            error.cost_usd = self.cost
        error.trace = self.span
        return error

    def all_failed(self, message: str) -> AllAttemptsFailedError:
        """An `AllAttemptsFailedError` carrying every collected error, with the trace set."""
        error = AllAttemptsFailedError(message, errors=self.errors)
        return self.fail(error)


async def stream_through(
    tally: Tally, model: Model, request: Request
) -> AsyncIterator[StreamEvent]:
    """Relay one chosen model's stream; the final `StreamEnd` carries the strategy's tally and
    trace, and a failure is counted and re-raised with the strategy's trace."""
    try:
        # `aclosing`: a caller who leaves this stream closes the model's stream now (its
        # provider call stops and is recorded as abandoned), not at garbage collection.
        async with closing(model.stream(request)) as events:
            async for event in events:
                if isinstance(event, StreamEnd):
                    yield StreamEnd(tally.result(tally.add(event.completion)))
                    return
                yield event
    except LLMSwitchError as exc:
        if exc not in tally.errors:
            tally.failed(exc)
        raise tally.fail(exc) from None
