"""The Anthropic Messages protocol (`POST /v1/messages`), streamed as named SSE events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.anthropic.errors import error_from_object, map_error
from llmswitch.adapters.anthropic.request import API_VERSION, JSON_TOOL, build_body
from llmswitch.adapters.anthropic.response import parse_message, usage_from
from llmswitch.adapters.anthropic.stream import MessagesStreamParser
from llmswitch.adapters.base import Adapter, HttpCall, Reply, Target
from llmswitch.adapters.framing import FrameDecoder, SSEDecoder
from llmswitch.adapters.http_errors import body_json, body_snippet
from llmswitch.errors import LLMSwitchError, ResponseError
from llmswitch.request import Request

__all__ = ["API_VERSION", "JSON_TOOL", "AnthropicAdapter", "build_body", "map_error",
           "parse_message", "usage_from"]


class AnthropicAdapter(Adapter):
    """Messages API: system lifted out, `max_tokens` always set, tools, JSON output, caching."""

    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """`POST {base}/v1/messages` with `anthropic-version` (`/messages` when the base URL
        already ends in `/v1`)."""
        headers = {"anthropic-version": API_VERSION}
        if stream:
            headers["accept"] = "text/event-stream"
        path = "/messages" if target.base_url.rstrip("/").endswith("/v1") else "/v1/messages"
        return HttpCall(path, build_body(request, target, stream), headers=headers)

    def parse(self, body: bytes, target: Target) -> Reply:
        """A 200 body (an error object inside it is raised)."""
        data = body_json(body)
        if data is None and body.lstrip()[:6] in (b"event:", b"data: "):
            return self._parse_event_stream(body, target)  # an SSE body to a plain request
        if not isinstance(data, dict):
            raise ResponseError(f"the response is not a JSON object: {body_snippet(body)!r}")
        if data.get("type") == "error" or isinstance(data.get("error"), dict):
            raise error_from_object(data.get("error") or {}, None, None, data)
        if not isinstance(data.get("content"), list):
            raise ResponseError("the response has no content", body=data)
        return parse_message(data)

    def _parse_event_stream(self, body: bytes, target: Target) -> Reply:
        decoder = SSEDecoder()
        parser = MessagesStreamParser(lambda err: error_from_object(err, None))
        for frame in [*decoder.feed(body), *decoder.close()]:
            parser.feed(frame)
        return parser.finish()

    def stream_parser(self, request: Request, target: Target) -> MessagesStreamParser:
        """A parser that raises `error` events with their mapped type."""
        return MessagesStreamParser(lambda err: error_from_object(err, None))

    def decoder(self, content_type: str) -> FrameDecoder:
        """Server-sent events; a plain JSON body (a server that did not stream) is one frame."""
        if "json" in content_type.lower() and "event-stream" not in content_type.lower():
            return WholeJSONDecoder()
        return SSEDecoder()

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""
        return map_error(status, headers, body)


class WholeJSONDecoder(FrameDecoder):
    """Buffers a whole JSON body and yields it as one frame at the end."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Nothing until the body is complete."""
        self._buffer += data
        return []

    def close(self) -> list[Any]:
        """The parsed body (a malformed one is a `ResponseError`)."""
        data = body_json(bytes(self._buffer))
        if not isinstance(data, dict):
            raise ResponseError(
                f"the response is not a JSON object: {body_snippet(bytes(self._buffer))!r}")
        return [data]
