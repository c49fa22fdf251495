"""The OpenAI Responses API (`POST /responses`): OpenAI (the models served only there, e.g.
`openai/gpt-5-pro`, `openai/o3-pro`, and any provider configured with `api: responses`),
Azure OpenAI's v1 API, DeepSeek and other servers that speak it."""

from __future__ import annotations

from collections.abc import Mapping

from llmswitch.adapters.base import Adapter, HttpCall, Reply, Target
from llmswitch.adapters.framing import FrameDecoder, SSEDecoder
from llmswitch.adapters.openai_responses.errors import map_error
from llmswitch.adapters.openai_responses.request import build_body
from llmswitch.adapters.openai_responses.response import parse_response
from llmswitch.adapters.openai_responses.stream import ResponsesStreamParser
from llmswitch.errors import LLMSwitchError
from llmswitch.request import Request

__all__ = ["ResponsesAdapter", "build_body", "map_error", "parse_response", "responses_path"]


class ResponsesAdapter(Adapter):
    """Responses API over SSE typed events."""

    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """`POST {base}/responses` (the base URL carries `/v1` or `/openai/v1`)."""
        return HttpCall(responses_path(target), build_body(request, target.model, stream))

    def parse(self, body: bytes, target: Target) -> Reply:
        """A 200 body (a failed response or an error object inside it is raised)."""
        return parse_response(body)

    def stream_parser(self, request: Request, target: Target) -> ResponsesStreamParser:
        """A parser that raises errors delivered inside the stream."""
        return ResponsesStreamParser()

    def decoder(self, content_type: str) -> FrameDecoder:
        """Server-sent events (a plain JSON answer is handled by `HttpModel` as a whole reply)."""
        return SSEDecoder()

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""
        return map_error(status, headers, body)


def responses_path(target: Target) -> str:
    """The path under the provider's base URL.

    OpenAI's base URL ends in `/v1`, Azure's v1 base in `/openai/v1`, DeepSeek's has no
    version. An Azure resource endpoint without `/openai/v1`, or an Ollama server root, gets
    the version prefix added.
    """
    base = target.base_url.rstrip("/")
    if target.provider == "azure" and not base.endswith("/openai/v1"):
        return "/openai/v1/responses"
    if target.provider == "ollama" and not base.endswith("/v1"):
        return "/v1/responses"
    return "/responses"
