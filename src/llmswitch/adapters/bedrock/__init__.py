"""The AWS Bedrock Runtime Converse and ConverseStream protocol (binary event streams).

Signing (SigV4 or a Bedrock API key) belongs to `llmswitch.providers.bedrock.BedrockProvider`;
this adapter only translates.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmswitch.adapters.base import Adapter, HttpCall, Reply, Target
from llmswitch.adapters.bedrock.errors import map_error
from llmswitch.adapters.bedrock.eventstream import EventStreamDecoder
from llmswitch.adapters.bedrock.request import build_body, model_path
from llmswitch.adapters.bedrock.response import parse_response
from llmswitch.adapters.bedrock.stream import (
    ConverseStreamParser,
    SniffingDecoder,
    parse_stream_body,
)
from llmswitch.adapters.framing import FrameDecoder
from llmswitch.errors import LLMSwitchError
from llmswitch.request import Request

__all__ = ["BedrockAdapter", "build_body", "map_error", "parse_response"]

EVENTSTREAM = "application/vnd.amazon.eventstream"


class BedrockAdapter(Adapter):
    """Converse (`/model/{id}/converse`) and ConverseStream (`…/converse-stream`)."""

    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """`POST {base}/model/{url-encoded id}/converse[-stream]`."""
        headers = {"accept": EVENTSTREAM} if stream else {}
        return HttpCall(model_path(target.model, stream), build_body(request, target.card),
                        headers=headers)

    def parse(self, body: bytes, target: Target) -> Reply:
        """A 200 Converse body; an event stream sent although not asked for is read whole."""
        if body.lstrip()[:1] in (b"{", b""):
            return parse_response(body)
        return parse_stream_body(body)

    def stream_parser(self, request: Request, target: Target) -> ConverseStreamParser:
        """A parser for one ConverseStream response."""
        return ConverseStreamParser()

    def decoder(self, content_type: str) -> FrameDecoder:
        """Event-stream frames; for another content type, JSON or frames by the first byte."""
        if EVENTSTREAM in content_type.lower():
            return EventStreamDecoder()
        return SniffingDecoder()

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""
        return map_error(status, headers, body)
