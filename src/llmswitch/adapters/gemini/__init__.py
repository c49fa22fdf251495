"""The Google Gemini API: `generateContent` and `streamGenerateContent` (`alt=sse`, or the
JSON-array form when a server sends it)."""

from __future__ import annotations

from collections.abc import Mapping

from llmswitch.adapters.base import Adapter, HttpCall, Reply, Target
from llmswitch.adapters.framing import FrameDecoder
from llmswitch.adapters.gemini.errors import error_from_object, map_error
from llmswitch.adapters.gemini.framing import JSONArrayDecoder, StreamDecoder
from llmswitch.adapters.gemini.request import build_body, model_path, openapi_schema
from llmswitch.adapters.gemini.response import parse_response, usage_from
from llmswitch.adapters.gemini.stream import GenerateStreamParser
from llmswitch.adapters.http_errors import body_json, body_snippet
from llmswitch.errors import LLMSwitchError, ResponseError
from llmswitch.request import Request

__all__ = ["GeminiAdapter", "JSONArrayDecoder", "build_body", "map_error", "openapi_schema",
           "parse_response", "usage_from"]


class GeminiAdapter(Adapter):
    """Gemini's REST API (v1beta), authenticated by `x-goog-api-key`."""

    plain_json_stream = False
    """A JSON body to a stream request is the JSON-array stream form, decoded incrementally."""

    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """`POST {base}/v1beta/models/{model}:generateContent` (stream: `…?alt=sse`)."""
        query = {"alt": "sse"} if stream else {}
        return HttpCall(model_path(target.model, stream, target.base_url), build_body(request),
                        query=query)

    def parse(self, body: bytes, target: Target) -> Reply:
        """A 200 body (an error object inside it is raised)."""
        data = body_json(body)
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if isinstance(data, list) or (data is None and body.lstrip()[:5] == b"data:"):
            return self._parse_stream_body(body)  # a stream body to a plain request
        if not isinstance(data, dict):
            raise ResponseError(f"the response is not a JSON object: {body_snippet(body)!r}")
        if isinstance(data.get("error"), dict):
            raise error_from_object(data["error"], None, None, data)
        return parse_response(data)

    def _parse_stream_body(self, body: bytes) -> Reply:
        decoder = StreamDecoder()
        parser = GenerateStreamParser(lambda err: error_from_object(err, None))
        for frame in [*decoder.feed(body), *decoder.close()]:
            parser.feed(frame)
        return parser.finish()

    def stream_parser(self, request: Request, target: Target) -> GenerateStreamParser:
        """A parser that raises error chunks with their mapped type."""
        return GenerateStreamParser(lambda err: error_from_object(err, None))

    def decoder(self, content_type: str) -> FrameDecoder:
        """SSE, a JSON array or one JSON object, recognised from the body itself."""
        return StreamDecoder()

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""
        return map_error(status, headers, body)
