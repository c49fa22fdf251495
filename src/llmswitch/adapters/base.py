"""What every wire-protocol adapter provides: pure mapping, no I/O.

An adapter turns a `Request` into an `HttpCall`, a response body into a `Reply`, stream frames
into events (through a `StreamParser`), and an error response into the error tree. The I/O lives
in `llmswitch.providers.http_model.HttpModel`, which is the same for every protocol.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.adapters.framing import FrameDecoder
from llmswitch.catalog.card import ModelCard
from llmswitch.errors import LLMSwitchError
from llmswitch.messages import ToolCall
from llmswitch.request import Request, Settings
from llmswitch.results import FinishReason, StreamEvent, Usage


@dataclass(frozen=True, slots=True)
class Target:
    """Where a call goes: provider name, wire model name, its card and provider options."""

    provider: str
    model: str
    card: ModelCard | None = None
    base_url: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Provider options an adapter may need (e.g. Azure's `api_version`)."""


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One HTTP request to make, relative to the provider's base URL."""

    path: str
    body: Mapping[str, Any] | None
    method: str = "POST"
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    """An absolute URL that replaces base URL + path (rarely needed)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider's answer, normalised: what `HttpModel` turns into a `Completion`."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    reasoning: str = ""
    raw_finish_reason: str | None = None
    response_model: str | None = None
    raw: Any = None


class StreamParser(ABC):
    """Turns a stream's frames into events; `finish` returns the whole reply or raises.

    `feed` raises a `ProviderError` for an error delivered inside the stream. `finish` raises
    `ResponseError` when the stream ended without its terminal event (a truncated answer).
    """

    usage: Usage = Usage()
    """Usage seen so far (kept up to date, so a failed stream can still be billed)."""

    @abstractmethod
    def feed(self, frame: Any) -> list[StreamEvent]:
        """Events produced by one frame."""

    @abstractmethod
    def finish(self) -> Reply:
        """The assembled reply once the transport has ended."""


class Adapter(ABC):
    """The pure parts of one wire protocol (a provider may pick a flavour via `Target`)."""

    plain_json_stream: bool = True
    """Whether a 200 `application/json` answer to a stream request is a whole reply (servers
    that ignore `stream: true`). Protocols whose streams are JSON (Gemini arrays) set False."""

    @abstractmethod
    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """The HTTP request for `request`."""

    @abstractmethod
    def parse(self, body: bytes, target: Target) -> Reply:
        """A successful (2xx) non-streaming response body as a reply (may raise)."""

    @abstractmethod
    def stream_parser(self, request: Request, target: Target) -> StreamParser:
        """A fresh parser for one streamed response."""

    @abstractmethod
    def decoder(self, content_type: str) -> FrameDecoder:
        """The framing decoder for a streamed body of this content type."""

    @abstractmethod
    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""


def arguments_object(text: str) -> Any:
    """A tool call's JSON argument text as a value for protocols that send objects (Anthropic
    `input`, Gemini `args`); empty text is `{}`, invalid JSON is kept under `arguments`."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"arguments": text}


def sampling_fields(settings: Settings, **names: str) -> dict[str, Any]:
    """The settings that are set, under one protocol's field names, e.g.
    `sampling_fields(s, max_tokens="maxTokens", stop="stopSequences")`. Unset (`None`) and
    empty values are left out; tuples (stop sequences) become lists."""
    out: dict[str, Any] = {}
    for attr, key in names.items():
        value = getattr(settings, attr)
        if value is None or value == ():
            continue
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
