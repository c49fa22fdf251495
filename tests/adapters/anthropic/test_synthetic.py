"""SYNTHETIC Anthropic cases: protocol situations with no recording, built from the official
docs (https://platform.claude.com/docs/api/errors and .../build-with-claude/streaming).
Kept apart from the recorded fixtures; every body here was written by hand to the documented
shape."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
import pytest

from llmswitch import Switch
from llmswitch.adapters.base import Target
from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    LLMSwitchError,
    ModelNotFoundError,
    OverloadedError,
    QuotaExceededError,
    RateLimitedError,
    ResponseError,
)
from llmswitch.models import collect
from llmswitch.results import TextDelta
from tests.adapters.anthropic.replay import ADAPTER, run_stream
from tests.support.fixtures import body_bytes, load

TARGET = Target("anthropic", "claude-haiku-4-5")


def error_body(kind: str, message: str) -> bytes:
    """The documented error envelope."""
    return json.dumps({"type": "error", "error": {"type": kind, "message": message},
                       "request_id": "req_synthetic"}).encode()


def sse(*events: Mapping[str, object]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


START = {"type": "message_start", "message": {
    "id": "msg_synthetic", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [], "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 120, "cache_read_input_tokens": 2000,
              "cache_creation_input_tokens": 300, "output_tokens": 1}}}
TEXT_START = {"type": "content_block_start", "index": 0,
              "content_block": {"type": "text", "text": ""}}
HELLO = {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "Hello"}}


@pytest.mark.parametrize(("status", "kind", "message", "headers", "expected"), [
    (529, "overloaded_error", "Overloaded", {}, OverloadedError),
    (500, "api_error", "Internal server error", {}, OverloadedError),
    (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
     {"retry-after": "17"}, RateLimitedError),
    (413, "request_too_large", "Request exceeds the maximum allowed number of bytes", {},
     ContextTooLongError),
    (400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum", {},
     ContextTooLongError),
    (400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.",
     {}, QuotaExceededError),
    (402, "billing_error", "Payment required", {}, QuotaExceededError),
    (403, "permission_error", "Your API key does not have permission", {}, AuthenticationError),
    (404, "not_found_error", "model: claude-nope", {}, ModelNotFoundError),
    (400, "invalid_request_error", "messages: field required", {}, BadRequestError),
])
def test_synthetic_error_statuses(status: int, kind: str, message: str,
                                  headers: dict[str, str], expected: type[Exception]) -> None:
    error = ADAPTER.error(status, headers, error_body(kind, message), TARGET)
    assert type(error) is expected
    assert error.status == status
    assert message in str(error)


def test_synthetic_429_retry_after_and_529_are_retryable() -> None:
    limited = ADAPTER.error(429, {"retry-after": "17"},
                            error_body("rate_limit_error", "slow down"), TARGET)
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 17.0 and limited.retryable
    overloaded = ADAPTER.error(529, {}, error_body("overloaded_error", "Overloaded"), TARGET)
    assert overloaded.retryable


def test_synthetic_non_json_error_body() -> None:
    error = ADAPTER.error(502, {"content-type": "text/html"}, b"<html>Bad gateway</html>", TARGET)
    assert isinstance(error, OverloadedError)
    assert "Bad gateway" in str(error)


def test_synthetic_error_event_mid_stream_raises_and_keeps_usage() -> None:
    body = sse(START, TEXT_START, HELLO,
               {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    decoder = ADAPTER.decoder("text/event-stream")
    parser = ADAPTER.stream_parser(None, TARGET)  # type: ignore[arg-type]
    events = []
    with pytest.raises(OverloadedError) as caught:
        for frame in decoder.feed(body):
            events.extend(parser.feed(frame))
    assert caught.value.status is None  # no HTTP status: the stream itself said so
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello"]
    assert parser.usage.input_tokens == 2420  # billed even though the stream failed
    assert parser.usage.cached_input_tokens == 2000


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.8, 0.97])
def test_synthetic_stream_cut_before_message_stop_is_an_error(cut: float) -> None:
    body = body_bytes(load("anthropic/messages_stream"))
    end = body.index(b"event: message_stop")
    with pytest.raises(ResponseError) as caught:
        run_stream(body[: int(end * cut)], 9)
    assert "message_stop" in str(caught.value) or "cut" in str(caught.value)
    if cut > 0.5:  # message_start was seen: the input tokens were billed
        assert caught.value.usage is not None and caught.value.usage.input_tokens == 17


def test_synthetic_cached_stream_usage_and_cost() -> None:
    body = sse(START, TEXT_START, HELLO, {"type": "content_block_stop", "index": 0},
               {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 12}},
               {"type": "message_stop"})
    reply, _ = run_stream(body, 5)
    assert reply.text == "Hello"
    usage = reply.usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens,
            usage.output_tokens) == (2420, 2000, 300, 12)


def test_synthetic_server_that_does_not_stream_returns_one_json_message() -> None:
    message = {"type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "Hi there"}],
               "usage": {"input_tokens": 4, "output_tokens": 3}}
    reply, events = run_stream(json.dumps(message).encode(), 6, "application/json")
    assert reply.text == "Hi there" and reply.finish_reason == "stop"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hi there"]


def test_synthetic_refusal_in_stream() -> None:
    body = sse(START, TEXT_START, HELLO, {"type": "content_block_stop", "index": 0},
               {"type": "message_delta", "delta": {"stop_reason": "refusal"},
                "usage": {"output_tokens": 2}}, {"type": "message_stop"})
    reply, _ = run_stream(body, 13)
    assert reply.finish_reason == "content_filter"
    assert reply.refusal


async def test_synthetic_529_and_midstream_error_through_switch() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(529, json={"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(
            START, TEXT_START, HELLO,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}))

    switch = Switch({}, transports={"anthropic": lambda: httpx.MockTransport(handler)},
                    env={"ANTHROPIC_API_KEY": "k"})
    async with switch:
        with pytest.raises(OverloadedError) as first:
            await switch.complete("anthropic/claude-haiku-4-5", "hi")
        with pytest.raises(RateLimitedError) as second:
            await collect(switch.stream("anthropic/claude-haiku-4-5", "hi"))
    assert first.value.status == 529
    error: LLMSwitchError = second.value
    assert error.usage is not None and error.usage.input_tokens == 2420
    assert error.cost_usd is not None and error.cost_usd > 0


async def test_synthetic_json_schema_via_forced_tool_through_switch() -> None:
    """claude-3-5-haiku has no native structured output: the schema becomes a forced tool,
    the tool input becomes the answer text, and the trace says so."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={
            "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "llmswitch_json_output",
                         "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 9}})

    switch = Switch({}, transports={"anthropic": lambda: httpx.MockTransport(handler)},
                    env={"ANTHROPIC_API_KEY": "k"})
    async with switch:
        done = await switch.complete("anthropic/claude-3-5-haiku-20241022", "Capital of France?",
                                     response_format={"schema": schema, "name": "City"})
    assert sent[0]["tool_choice"] == {"type": "tool", "name": "llmswitch_json_output"}
    assert json.loads(done.text) == {"city": "Paris"}
    assert done.finish_reason == "stop" and done.tool_calls == ()
    assert done.trace is not None
    assert done.trace.attributes["llmswitch.emulated"] == ["json_schema via a forced tool call"]
