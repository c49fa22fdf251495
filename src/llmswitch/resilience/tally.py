"""Bookkeeping shared by strategies that make several attempts: the strategy span, every
attempt's span, summed usage and cost (failed attempts included: they were billed), the
errors, and the final completion or error."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llmswitch.errors import AllAttemptsFailedError, LLMSwitchError
from llmswitch.observe.trace import Span
from llmswitch.results import Completion, Usage


class Tally:
    """One request through a strategy: opens its span and accounts for each attempt."""

    def __init__(self, strategy: str, route: str, candidates: Sequence[str]) -> None:
        self.started = time.perf_counter()
        self.span = Span(f"{strategy} {route}", "strategy", {
            "llmswitch.strategy": strategy,
            "llmswitch.route": route,
            "llmswitch.candidates": list(candidates),
        })
        self.errors: list[BaseException] = []
        self.usage = Usage()
        self.cost: float | None = None
        self.waited = 0.0
        self.attempts = 0

    def _bill(self, usage: Usage | None, cost: float | None) -> None:
        if usage is not None:
            self.usage = self.usage + usage
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def _attach(self, span: Span | None, target: str, wait: float, fallback: Span) -> Span:
        self.attempts += 1
        node = span if span is not None else fallback
        node.attributes["llmswitch.target"] = target
        node.attributes["llmswitch.attempt"] = self.attempts
        if wait:
            node.attributes["llmswitch.retry_wait_s"] = round(wait, 6)
        self.span.children.append(node)
        return node

    def failed(self, target: str, error: BaseException, wait: float = 0.0) -> None:
        """Record a failed attempt (its span comes from `error.trace` when it has one)."""
        trace = getattr(error, "trace", None)
        stub = Span(f"chat {target}", "attempt", {"error.type": getattr(error, "type", "error")})
        node = self._attach(trace if isinstance(trace, Span) else None, target, wait,
                            stub.fail(error))
        self.errors.append(error)
        if isinstance(error, LLMSwitchError):
            self._bill(error.usage, error.cost_usd)
            if error.usage is not None and node.kind == "attempt":
                _fill_billing(node, error.usage, error.cost_usd)

    def served(self, target: str, completion: Completion, wait: float = 0.0) -> None:
        """Record the attempt that answered."""
        stub = Span(f"chat {target}", "attempt", {
            "gen_ai.provider.name": completion.provider,
            "gen_ai.request.model": completion.model,
            "llmswitch.cost_usd": completion.cost_usd,
        })
        node = self._attach(completion.trace, target, wait, stub)
        self._bill(completion.usage, completion.cost_usd)
        if node.kind == "attempt":
            _fill_billing(node, completion.usage, completion.cost_usd)

    def note(self, error: BaseException) -> None:
        """Record a cause that is not an attempt (an open circuit, a spent deadline)."""
        self.errors.append(error)

    def decide(self, chosen: str | None, reason: str, **extra: Any) -> None:
        """Put the decision on the strategy span."""
        attrs = self.span.attributes
        if chosen is not None:
            attrs["llmswitch.chosen"] = chosen
        attrs["llmswitch.reason"] = reason
        attrs["llmswitch.attempts"] = self.attempts
        attrs["llmswitch.retry_wait_s"] = round(self.waited, 6)
        attrs["llmswitch.cost_usd"] = self.cost
        attrs.update(extra)

    def completion(self, served: Completion, *, text: str | None = None,
                   ttft_ms: float | None = None) -> Completion:
        """The answer with every attempt's usage and cost, and the strategy span as trace."""
        self.span.finish(self.started)
        latency = round((time.perf_counter() - self.started) * 1000, 3)
        return served.replace(
            text=served.text if text is None else text,
            usage=self.usage,
            cost_usd=self.cost,
            trace=self.span,
            latency_ms=latency,
            ttft_ms=ttft_ms if ttft_ms is not None else (
                latency if served.ttft_ms is None else latency - served.latency_ms
                + served.ttft_ms),
        )

    def raise_as_is(self, error: LLMSwitchError) -> LLMSwitchError:
        """An error not worth another attempt, carrying the strategy span and summed spend."""
        self.span.fail(error).finish(self.started)
        error.trace = self.span
        error.usage, error.cost_usd = (self.usage if self.usage.total_tokens else None), self.cost
        return error

    def all_failed(self, message: str, hint: str | None = None) -> AllAttemptsFailedError:
        """The one error that carries every attempt's cause, the span and the summed spend."""
        error = AllAttemptsFailedError(
            message, self.errors, hint=hint,
            usage=self.usage if self.usage.total_tokens else None, cost_usd=self.cost,
        )
        self.span.fail(error).finish(self.started)
        error.trace = self.span
        return error


def _fill_billing(span: Span, usage: Usage, cost: float | None) -> None:
    """Make sure an attempt span says what it was billed (the ledger reads spans)."""
    attrs = span.attributes
    for key, value in (("gen_ai.usage.input_tokens", usage.input_tokens),
                       ("gen_ai.usage.output_tokens", usage.output_tokens),
                       ("gen_ai.usage.cached_input_tokens", usage.cached_input_tokens),
                       ("gen_ai.usage.cache_write_tokens", usage.cache_write_tokens),
                       ("gen_ai.usage.reasoning_tokens", usage.reasoning_tokens),
                       ("llmswitch.cost_usd", cost)):
        attrs.setdefault(key, value)
