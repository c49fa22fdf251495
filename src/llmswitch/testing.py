"""Fake models for testing strategies and applications without any provider.

`FakeModel` answers from a script: each entry is a text answer, a `Completion`, an exception
to raise, or a callable of the request. It records the requests it saw, can stream, can wait
before answering, and prices its usage like a real model so cost sums can be checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from llmswitch.errors import LLMSwitchError
from llmswitch.models import Model
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import (
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)

Answer: TypeAlias = str | Completion | BaseException | Callable[[Request], "str | Completion"]


@dataclass
class FakeModel(Model):
    """A scripted model. When the script runs out, the last entry repeats.

    `cost_per_call` is charged on every answered call; `delay` seconds pass before answering;
    `stream_cut_after` makes streams fail after that many text pieces (with `stream_error`).
    """

    name: str = "fake"
    script: Sequence[Answer] = ("ok",)
    provider: str = "fake"
    cost_per_call: float | None = 0.0
    delay: float = 0.0
    stream_cut_after: int | None = None
    stream_error: LLMSwitchError | None = None
    calls: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.script:
            raise ValueError("FakeModel needs at least one scripted answer")

    @property
    def call_count(self) -> int:
        """How many requests this model received."""
        return len(self.calls)

    async def complete(self, request: Request) -> Completion:
        """Answer from the script."""
        started = time.perf_counter()
        answer = self._next(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(answer, BaseException):
            raise self._with_trace(answer, started)
        return self._completion(answer, request, started)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream the scripted answer word by word (or fail mid-way if configured)."""
        started = time.perf_counter()
        answer = self._next(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(answer, BaseException):
            raise self._with_trace(answer, started)
        completion = self._completion(answer, request, started)
        pieces = _pieces(completion.text)
        for i, piece in enumerate(pieces):
            if self.stream_cut_after is not None and i >= self.stream_cut_after:
                error = self.stream_error or LLMSwitchError("stream cut")
                raise self._with_trace(error, started)
            yield TextDelta(piece)
            await asyncio.sleep(0)
        yield UsageUpdate(completion.usage)
        yield StreamEnd(completion)

    def _next(self, request: Request) -> Answer:
        index = min(len(self.calls), len(self.script) - 1)
        self.calls.append(request)
        return self.script[index]

    def _completion(self, answer: Answer, request: Request, started: float) -> Completion:
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(request)
        if isinstance(answer, Completion):
            return answer
        assert isinstance(answer, str)
        usage = Usage(input_tokens=max(1, len(request.prompt_text) // 4),
                      output_tokens=max(1, len(answer) // 4))
        span = Span(f"chat {self.name}", "attempt", {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.name,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "llmswitch.cost_usd": self.cost_per_call,
        }).finish(started)
        latency = (time.perf_counter() - started) * 1000
        return Completion(answer, "stop", usage, self.cost_per_call, self.provider, self.name,
                          latency_ms=latency, ttft_ms=latency, trace=span)

    def _with_trace(self, error: BaseException, started: float) -> BaseException:
        if isinstance(error, LLMSwitchError):
            error.provider = error.provider or self.provider
            error.model = error.model or self.name
            span = Span(f"chat {self.name}", "attempt", {
                "gen_ai.provider.name": self.provider, "gen_ai.request.model": self.name,
                "error.type": error.type,
            })
            error.trace = span.fail(error).finish(started)
        return error


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] if text else []


def fake_models(names: Iterable[str], **kw: Any) -> dict[str, FakeModel]:
    """Several fake models by name, sharing keyword options."""
    return {n: FakeModel(name=n, **kw) for n in names}
