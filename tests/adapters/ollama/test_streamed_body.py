"""A `stream: false` request answered with a stream anyway (a server or replay that ignores the
flag): the whole NDJSON or SSE body is read as the stream it is."""

from __future__ import annotations

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.ollama import OllamaAdapter
from llmswitch.errors import LLMSwitchError
from tests.support.fixtures import body_bytes, load

ADAPTER = OllamaAdapter()
TARGET = Target("ollama", "gemma3:1b")


def test_ndjson_body_to_a_non_stream_request() -> None:
    body = body_bytes(load("ollama/api_chat_default_stream"))
    reply = ADAPTER.parse(body, TARGET)
    assert reply.text.startswith("Hello there!")
    assert reply.finish_reason == "length"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0


def test_ndjson_tool_call_body() -> None:
    reply = ADAPTER.parse(body_bytes(load("ollama/doc_api_chat_tools_stream")), TARGET)
    assert reply.finish_reason == "tool_calls"
    assert [c.name for c in reply.tool_calls] == ["get_weather"]


def test_ndjson_error_line_is_raised() -> None:
    with pytest.raises(LLMSwitchError, match="error was encountered"):
        ADAPTER.parse(body_bytes(load("ollama/doc_api_generate_error_midstream")), TARGET)


def test_openai_sse_body_to_a_non_stream_request() -> None:
    reply = ADAPTER.parse(body_bytes(load("openai/chat_stream_gpt35")), TARGET)
    assert reply.text and reply.finish_reason == "stop"


def test_pretty_printed_single_object_is_not_mistaken_for_ndjson() -> None:
    reply = ADAPTER.parse(body_bytes(load("ollama/doc_api_chat_structured_output")), TARGET)
    assert reply.text.startswith('{"age": 22')
