"""What a call returns: usage, the completion, and the events of a stream."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from llmswitch.messages import Message, ToolCall
from llmswitch.observe.trace import Span

FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one or more calls.

    `input_tokens` includes cached and cache-write tokens; `output_tokens` includes reasoning
    tokens. The sub-counts let the catalog price each kind separately.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        """The public JSON shape (the CLI's `usage` field)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of a call: the answer, how it ended, what it used and cost, and its trace.

    For strategies, `usage` and `cost_usd` sum every attempt (failed ones too: they were billed),
    while `provider` and `model` name the call that produced the answer.
    `cost_usd` is `None` when a model's price is unknown.
    """

    text: str
    finish_reason: FinishReason
    usage: Usage
    cost_usd: float | None
    provider: str
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    trace: Span | None = None
    refusal: str | None = None
    trace_id: str = ""
    """The id of the top-level call that produced this answer (its ledger rows and stored
    trace); set by `Switch`, empty for a model called directly."""
    raw: Any = field(default=None, repr=False, compare=False)
    """The provider's last response body (parsed), for debugging."""
    parsed: Any = None
    """With a schema `response_format`: the validated answer (a pydantic model instance for a
    model class, else the JSON value); `None` otherwise (and for a refusal or a tool-call turn)."""

    def message(self) -> Message:
        """The answer as an assistant message, to continue the conversation."""
        return Message.assistant(self.text, self.tool_calls)

    def replace(self, **changes: Any) -> Completion:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call; `index` names the call, `id`/`name` come with the first piece."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Token counts reported during a stream (cumulative for this call so far)."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of every successful stream: the assembled completion."""

    completion: Completion


@dataclass(frozen=True, slots=True)
class StreamNotice:
    """Something a strategy did mid-stream that a reader should know (e.g. a failover)."""

    kind: str
    detail: str


StreamEvent: TypeAlias = TextDelta | ToolCallDelta | UsageUpdate | StreamNotice | StreamEnd
