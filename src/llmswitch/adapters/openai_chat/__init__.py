"""The OpenAI Chat Completions protocol: OpenAI, Azure, DeepSeek, OpenRouter, Ollama's /v1,
vLLM, llama.cpp's server, and the embedded local models."""

from __future__ import annotations

from collections.abc import Mapping

from llmswitch.adapters.base import Adapter, HttpCall, Reply, Target
from llmswitch.adapters.framing import FrameDecoder, SSEDecoder
from llmswitch.adapters.openai_chat.errors import map_error
from llmswitch.adapters.openai_chat.request import build_body
from llmswitch.adapters.openai_chat.response import parse_response
from llmswitch.adapters.openai_chat.shapes import AnyOpenAIStreamParser, parse_any
from llmswitch.errors import LLMSwitchError
from llmswitch.providers.specs import AZURE_DEFAULT_API_VERSION
from llmswitch.request import Request

__all__ = ["ChatCompletionsAdapter", "build_body", "map_error", "parse_response"]


class ChatCompletionsAdapter(Adapter):
    """Chat Completions over SSE. Azure's classic deployment paths are a flavour of it."""

    def build(self, request: Request, target: Target, stream: bool) -> HttpCall:
        """`POST {base}/chat/completions` (Azure: `/openai/deployments/{d}/…?api-version=`)."""
        if _azure_classic(target):
            version = str(target.options.get("api_version") or AZURE_DEFAULT_API_VERSION)
            return HttpCall(
                f"/openai/deployments/{target.model}/chat/completions",
                build_body(request, None, target.provider, stream),
                query={"api-version": version},
            )
        prefix = "/v1" if target.provider == "ollama" and not target.base_url.endswith(
            "/v1") else ""
        return HttpCall(
            f"{prefix}/chat/completions",
            build_body(request, target.model, target.provider, stream),
        )

    def parse(self, body: bytes, target: Target) -> Reply:
        """A 200 body (an error object inside it is raised). A server that streamed although
        asked not to, or answered in the Responses API's shape, is understood too."""
        return parse_any(body)

    def stream_parser(self, request: Request, target: Target) -> AnyOpenAIStreamParser:
        """A parser that raises errors delivered inside the stream (and reads a Responses API
        event stream if that is what the server sent)."""
        return AnyOpenAIStreamParser()

    def decoder(self, content_type: str) -> FrameDecoder:
        """Server-sent events."""
        return SSEDecoder()

    def error(
        self, status: int, headers: Mapping[str, str], body: bytes, target: Target
    ) -> LLMSwitchError:
        """The typed error for a non-2xx response."""
        return map_error(status, headers, body)


def _azure_classic(target: Target) -> bool:
    return target.provider == "azure" and "/openai/v1" not in target.base_url
