"""SYNTHETIC Responses API cases with no recording, built from the official API reference
(streaming events: response.incomplete / response.failed / error; incomplete_details;
refusal content parts). Kept apart from the recorded fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import StreamParser, Target
from llmswitch.adapters.openai_responses import ResponsesAdapter
from llmswitch.errors import (
    ContextTooLongError,
    OverloadedError,
    RateLimitedError,
    ResponseError,
)
from llmswitch.messages import Message
from llmswitch.request import Request
from llmswitch.results import TextDelta
from tests.support.fixtures import body_bytes, load

ADAPTER = ResponsesAdapter()
USAGE = {"input_tokens": 12, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 4},
         "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 17}


def sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def response(status: str, output: list[Any], **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "model": "gpt-5-pro",
            "output": output, "usage": USAGE, **extra}


def message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def new_parser() -> StreamParser:
    return ADAPTER.stream_parser(Request((Message.user("x"),)), Target("openai", "m"))


def run(body: bytes, parser: StreamParser | None = None) -> tuple[Any, list[Any]]:
    decoder = ADAPTER.decoder("text/event-stream")
    parser = parser or new_parser()
    events: list[Any] = []
    for frame in [*decoder.feed(body), *decoder.close()]:
        events.extend(parser.feed(frame))
    return parser.finish(), events


def test_incomplete_at_max_output_tokens_is_length() -> None:
    body = json.dumps(response("incomplete", [message("Once upon")],
                               incomplete_details={"reason": "max_output_tokens"})).encode()
    reply = ADAPTER.parse(body, Target("openai", "m"))
    assert (reply.text, reply.finish_reason, reply.raw_finish_reason) == (
        "Once upon", "length", "max_output_tokens")
    assert reply.usage.cached_input_tokens == 4 and reply.usage.reasoning_tokens == 2


def test_streamed_incomplete_event_is_terminal_and_length() -> None:
    final = response("incomplete", [message("Once")],
                     incomplete_details={"reason": "max_output_tokens"})
    reply, events = run(sse(
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Once"},
        {"type": "response.incomplete", "response": final},
    ))
    assert reply.finish_reason == "length"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once"]


def test_refusal_part_is_content_filter() -> None:
    item = {"type": "message", "role": "assistant",
            "content": [{"type": "refusal", "refusal": "I can't help with that."}]}
    reply = ADAPTER.parse(json.dumps(response("completed", [item])).encode(), Target("o", "m"))
    assert reply.refusal == "I can't help with that." and reply.finish_reason == "content_filter"


def test_content_filter_incomplete() -> None:
    body = json.dumps(response("incomplete", [],
                               incomplete_details={"reason": "content_filter"})).encode()
    assert ADAPTER.parse(body, Target("o", "m")).finish_reason == "content_filter"


@pytest.mark.parametrize(("code", "kind"), [
    ("server_error", OverloadedError),
    ("rate_limit_exceeded", RateLimitedError),
    ("context_length_exceeded", ContextTooLongError),
])
def test_failed_response_raises_by_code(code: str, kind: type[Exception]) -> None:
    failed = response("failed", [], error={"code": code, "message": "boom"})
    parser = new_parser()
    with pytest.raises(kind, match="boom"):
        run(sse({"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"},
                {"type": "response.failed", "response": failed}), parser)
    assert parser.usage.input_tokens == 12  # billed even though it failed
    with pytest.raises(kind):
        ADAPTER.parse(json.dumps(failed).encode(), Target("o", "m"))


def test_error_event_mid_stream_raises() -> None:
    with pytest.raises(RateLimitedError, match="slow down"):
        run(sse({"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"},
                {"type": "error", "code": "rate_limit_exceeded", "message": "slow down",
                 "param": None, "sequence_number": 3}))


@pytest.mark.parametrize("name", ["openai/responses_stream", "openai/responses_tools_stream",
                                  "deepseek/responses_stream"])
def test_stream_without_terminal_event_is_an_error(name: str) -> None:
    body = body_bytes(load(name))
    cut = body[: body.index(b"event: response.completed")]
    with pytest.raises(ResponseError, match="before the response completed"):
        run(cut)


def test_no_done_sentinel_needed_but_tolerated() -> None:
    final = response("completed", [message("ok")])
    reply, _ = run(sse({"type": "response.completed", "response": final}) + b"data: [DONE]\n\n")
    assert reply.text == "ok" and reply.finish_reason == "stop"


def test_terminal_response_without_output_falls_back_to_deltas() -> None:
    final = response("completed", [])
    reply, _ = run(sse(
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "1}"},
        {"type": "response.completed", "response": final},
    ))
    assert reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("call_9", "f", '{"a":1}')]


def test_malformed_event_is_a_response_error() -> None:
    with pytest.raises(ResponseError):
        run(b"event: response.output_text.delta\ndata: {not json\n\n")
