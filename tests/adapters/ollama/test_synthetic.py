"""SYNTHETIC Ollama cases with no recording, built from the official docs (docs/api.md,
docs/api/errors.mdx, docs/api/streaming.mdx): error lines mid-stream on /api/chat, error
statuses, thinking, several tool calls, a server that ignores `stream`. Kept apart from the
recorded fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.ollama.response import parse_response
from llmswitch.errors import (
    BadRequestError,
    ContextTooLongError,
    LLMSwitchError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitedError,
    ResponseError,
)
from llmswitch.results import TextDelta, ToolCallDelta
from tests.adapters.ollama.helpers import ADAPTER, run_stream


def ndjson(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


def chunk(content: str = "", **message: Any) -> dict[str, Any]:
    return {"model": "m", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content, **message}, "done": False}


DONE = {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
        "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 7,
        "total_duration": 1_000_000}


@pytest.mark.parametrize("step", [1, 5, 10_000])
def test_error_line_mid_chat_stream(step: int) -> None:
    body = ndjson(chunk("Hel"), chunk("lo"), {"error": "an error was encountered while running "
                                                       "the model: out of memory"})
    events: list[Any] = []
    decoder = ADAPTER.decoder("application/x-ndjson")
    parser = ADAPTER.stream_parser(None, Target("ollama", "m"))  # type: ignore[arg-type]
    with pytest.raises(OverloadedError, match="out of memory"):
        for i in range(0, len(body), step):
            for frame in decoder.feed(body[i : i + step]):
                events.extend(parser.feed(frame))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"


def test_context_error_line_mid_stream() -> None:
    body = ndjson(chunk("a"), {"error": "input length exceeds the context length"})
    with pytest.raises(ContextTooLongError):
        run_stream(body, 7)


@pytest.mark.parametrize(("status", "message", "expected"), [
    (404, 'model "llama9" not found, try pulling it first', ModelNotFoundError),
    (400, "invalid options: num_predict", BadRequestError),
    (429, "too many requests", RateLimitedError),
    (500, "llama runner process has terminated", OverloadedError),
    (502, "cloud model unreachable", OverloadedError),
    (400, "the input length exceeds the context length", ContextTooLongError),
])
def test_error_statuses(status: int, message: str, expected: type[LLMSwitchError]) -> None:
    error = ADAPTER.error(status, {}, json.dumps({"error": message}).encode(),
                          Target("ollama", "llama9"))
    assert type(error) is expected and message in str(error) and error.status == status


def test_error_status_with_a_plain_text_body() -> None:
    error = ADAPTER.error(502, {}, b"Bad Gateway", Target("ollama", "m"))
    assert isinstance(error, OverloadedError) and "Bad Gateway" in str(error)


def test_thinking_is_kept_apart_and_usage_only_on_done() -> None:
    body = ndjson(chunk("", thinking="Let me see."), chunk("", thinking=" 2+2=4."),
                  chunk("4"), DONE)
    reply, _ = run_stream(body, 6)
    assert reply.reasoning == "Let me see. 2+2=4." and reply.text == "4"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (11, 7)
    assert reply.raw_finish_reason == "stop" and reply.finish_reason == "stop"


def test_several_tool_calls_are_numbered_across_lines() -> None:
    call = {"function": {"name": "f", "arguments": {"x": 1}}}
    body = ndjson(chunk("", tool_calls=[call, call]), chunk("", tool_calls=[call]), DONE)
    reply, events = run_stream(body, 11)
    assert [c.id for c in reply.tool_calls] == ["call_0", "call_1", "call_2"]
    assert [e.index for e in events if isinstance(e, ToolCallDelta)] == [0, 1, 2]
    assert reply.finish_reason == "tool_calls"


def test_length_wins_over_tool_calls() -> None:
    call = {"function": {"name": "f", "arguments": {}}}
    body = ndjson(chunk("", tool_calls=[call]), {**DONE, "done_reason": "length"})
    assert run_stream(body, 100)[0].finish_reason == "length"


def test_last_line_without_newline_still_counts() -> None:
    body = ndjson(chunk("hi")) + json.dumps(DONE).encode()
    assert run_stream(body, 3)[0].text == "hi"


def test_server_that_ignores_stream_true() -> None:
    whole = {**DONE, "message": {"role": "assistant", "content": "all at once"}}
    reply, events = run_stream(json.dumps(whole, indent=2).encode(), 9, "application/json")
    assert reply.text == "all at once" and [e.text for e in events if isinstance(e, TextDelta)]


def test_malformed_line_is_a_response_error() -> None:
    with pytest.raises(ResponseError):
        run_stream(b'{"model": "m", "message": {"content": "x"\n', 4)


def test_error_in_a_200_non_streamed_body() -> None:
    with pytest.raises(OverloadedError, match="boom"):
        parse_response(b'{"error": "boom"}')


def test_openai_shaped_answers_at_the_native_url_are_read() -> None:
    """A /v1 server or proxy behind the native base URL: its answers still parse."""
    from tests.support.fixtures import body_bytes, load

    reply = ADAPTER.parse(body_bytes(load("ollama/v1_chat_plain")), Target("ollama", "m"))
    assert reply.text == "4200 + 42 = 4242\n" and reply.usage.input_tokens == 21
    sse = (b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
           b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
           b'"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n')
    reply, _ = run_stream(sse, 7, "text/event-stream")
    assert reply.text == "Hi" and reply.usage.output_tokens == 1
