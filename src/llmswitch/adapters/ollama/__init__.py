"""Ollama's native chat API (`/api/chat`, NDJSON streaming).

Ollama's OpenAI-compatible `/v1` is spoken by the Chat Completions adapter instead (chosen when
the base URL ends in `/v1` or `providers.ollama.api: openai`).
"""

from __future__ import annotations

from collections.abc import Mapping

from llmswitch.adapters.base import Adapter, HttpCall, Reply, Target
from llmswitch.adapters.framing import FrameDecoder, JSONBodyDecoder, NDJSONDecoder, SSEDecoder
from llmswitch.adapters.http_errors import body_json
from llmswitch.adapters.ollama.errors import map_error
from llmswitch.adapters.ollama.request import build_body, chat_path
from llmswitch.adapters.ollama.response import parse_response
from llmswitch.adapters.ollama.stream import OllamaStreamParser, parse_stream_body
from llmswitch.errors import LLMSwitchError
from llmswitch.request import Request

__all__ = ["OllamaAdapter", "build_body", "map_error", "parse_response"]


class OllamaAdapter(Adapter):
    """`POST {base}/api/chat` with `stream` set explicitly (Ollama streams by default)."""

    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """The chat call."""
        headers = {"accept": "application/x-ndjson"} if stream else {}
        return HttpCall(chat_path(target.base_url), build_body(request, target.model, stream),
                        headers=headers)

    def parse(self, body: bytes, target: Target) -> Reply:
        """A `stream: false` 200 body; a server that streamed anyway (NDJSON lines, or SSE from
        an OpenAI-shaped server) is read as the stream it is."""
        if not isinstance(body_json(body), dict):
            return parse_stream_body(body)
        return parse_response(body)

    def stream_parser(self, request: Request, target: Target) -> OllamaStreamParser:
        """A parser for one NDJSON stream."""
        return OllamaStreamParser()

    def decoder(self, content_type: str) -> FrameDecoder:
        """NDJSON lines; a plain `application/json` body is read whole; server-sent events
        (an OpenAI-shaped server at this URL) are read as Chat Completions chunks."""
        kind = content_type.lower()
        if "text/event-stream" in kind:
            return SSEDecoder()
        if "application/json" in kind and "ndjson" not in kind:
            return JSONBodyDecoder(ndjson_fallback=True)
        return NDJSONDecoder()

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""
        return map_error(status, headers, body, target.model)
