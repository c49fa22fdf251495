"""The Chat Completions adapter reads an answer in whatever OpenAI shape came back: a Responses
object or typed `response.*` event stream (a proxy or replay at the URL), or a stream sent to a
non-streaming request."""

from __future__ import annotations

import json

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.framing import SSEDecoder
from llmswitch.adapters.openai_chat import ChatCompletionsAdapter
from llmswitch.adapters.openai_chat.shapes import (
    AnyOpenAIStreamParser,
    is_responses_object,
    looks_like_sse,
)
from llmswitch.errors import AuthenticationError, ResponseError
from llmswitch.messages import Message
from llmswitch.request import Request
from llmswitch.results import TextDelta
from tests.support.fixtures import body_bytes, load

ADAPTER = ChatCompletionsAdapter()
TARGET = Target("openai", "gpt-4o")


def test_responses_object_is_read() -> None:
    reply = ADAPTER.parse(body_bytes(load("openai/responses_tools_parallel")), TARGET)
    assert reply.finish_reason == "tool_calls"
    assert [c.name for c in reply.tool_calls] == ["secret_retrieval_tool"] * 2
    assert json.loads(reply.tool_calls[0].arguments) == {"password": "mellon"}
    assert reply.usage.input_tokens > 0


def test_responses_event_stream_is_read_whole_and_streamed() -> None:
    body = body_bytes(load("openai/responses_stream"))
    whole = ADAPTER.parse(body, TARGET)
    parser = ADAPTER.stream_parser(Request((Message.user("x"),)), TARGET)
    decoder = SSEDecoder()
    events = [e for i in range(0, len(body), 7) for f in decoder.feed(body[i : i + 7])
              for e in parser.feed(f)]
    for frame in decoder.close():
        events += parser.feed(frame)
    streamed = parser.finish()
    assert whole.text and streamed.text == whole.text
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.text
    assert streamed.usage == whole.usage and parser.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason == "stop"


def test_chat_completions_stream_still_read_by_the_same_parser() -> None:
    body = body_bytes(load("openai/chat_stream_gpt35"))
    reply = ADAPTER.parse(body, TARGET)
    assert reply.text and reply.finish_reason == "stop" and reply.usage.output_tokens > 0


def test_empty_stream_is_a_cut_stream() -> None:
    with pytest.raises(ResponseError):
        AnyOpenAIStreamParser().finish()


def test_error_object_in_a_200_body_is_raised() -> None:
    body = b'{"error": {"code": 401, "message": "No auth credentials found"}}'
    with pytest.raises(AuthenticationError):
        ADAPTER.parse(body, TARGET)


@pytest.mark.parametrize(("data", "want"), [
    ({"object": "response", "output": []}, True),
    ({"output": [], "status": "completed"}, True),
    ({"object": "chat.completion", "choices": []}, False),
    ([1, 2], False),
])
def test_is_responses_object(data: object, want: bool) -> None:
    assert is_responses_object(data) is want


@pytest.mark.parametrize(("body", "want"), [
    (b"data: {}\n\n", True), (b"\r\nevent: x\r\ndata: 1\r\n\r\n", True),
    (b": OPENROUTER PROCESSING\n\n", True), (b'  {"choices": []}', False),
])
def test_looks_like_sse(body: bytes, want: bool) -> None:
    assert looks_like_sse(body) is want
