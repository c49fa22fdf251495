"""Read whatever OpenAI-family answer came back: Chat Completions or Responses, whole or streamed.

Servers at an OpenAI-compatible URL do not always answer in the shape we asked for: a proxy or a
replay may send a Responses object (`"object": "response"`) or typed `response.*` events to a
Chat Completions request, or stream although asked not to. The answer is unambiguous from its
shape, so read it rather than fail with "no choices".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch._json import loads
from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.framing import SSEDecoder, SSEEvent
from llmswitch.adapters.http_errors import body_json
from llmswitch.adapters.openai_chat.errors import error_from_object
from llmswitch.adapters.openai_chat.response import parse_response
from llmswitch.adapters.openai_chat.stream import ChatStreamParser
from llmswitch.results import StreamEvent, Usage


def is_responses_object(data: Any) -> bool:
    """Whether a parsed body is a Responses API `response` object."""
    if not isinstance(data, Mapping) or "choices" in data:
        return False
    return data.get("object") == "response" or isinstance(data.get("output"), list)


def is_responses_event(frame: SSEEvent) -> bool:
    """Whether an SSE event is a Responses API typed event (`response.*`)."""
    if (frame.event or "").startswith("response."):
        return True
    try:
        data = loads(frame.data)
    except ValueError:
        return False
    return isinstance(data, Mapping) and str(data.get("type") or "").startswith("response.")


def looks_like_sse(body: bytes) -> bool:
    """Whether a body is a server-sent event stream (comments, `data:` or `event:` lines)."""
    head = body.lstrip()[:6]
    return head.startswith((b"data:", b"event:", b":"))


class AnyOpenAIStreamParser(StreamParser):
    """A Chat Completions stream parser that hands over to the Responses parser when the first
    event is a typed `response.*` event."""

    def __init__(self) -> None:
        self._inner: StreamParser | None = None

    @property
    def usage(self) -> Usage:  # type: ignore[override]
        """Usage seen so far by whichever parser reads this stream."""
        return self._inner.usage if self._inner is not None else Usage()

    def feed(self, frame: SSEEvent) -> list[StreamEvent]:
        """Events from one SSE event (the first one with data picks the protocol)."""
        if self._inner is None:
            if not frame.data.strip():
                return []
            self._inner = _responses_parser() if is_responses_event(frame) else ChatStreamParser(
                lambda err: error_from_object(err, None))
        return self._inner.feed(frame)

    def finish(self) -> Reply:
        """The assembled reply (an empty stream is reported as cut short)."""
        if self._inner is None:
            self._inner = ChatStreamParser(lambda err: error_from_object(err, None))
        return self._inner.finish()


def parse_any(body: bytes) -> Reply:
    """A 200 body of either protocol, whole or streamed; an error object inside it is raised."""
    if looks_like_sse(body):
        parser = AnyOpenAIStreamParser()
        decoder = SSEDecoder()
        for frame in [*decoder.feed(body), *decoder.close()]:
            parser.feed(frame)
        return parser.finish()
    data = body_json(body)
    if is_responses_object(data):
        from llmswitch.adapters.openai_responses.response import (
            parse_response as parse_responses,
        )

        return parse_responses(body)
    reply, error = parse_response(body, data)
    if error is not None:
        raise error_from_object(error, None)
    return reply


def _responses_parser() -> StreamParser:
    from llmswitch.adapters.openai_responses.stream import ResponsesStreamParser

    return ResponsesStreamParser()
