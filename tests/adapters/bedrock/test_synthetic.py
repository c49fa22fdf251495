"""SYNTHETIC Bedrock cases with no recording, built from the official documentation: the
ConverseStream event and exception members (API_runtime_ConverseStreamOutput), the error types
(troubleshooting-api-error-codes) and the event-stream framing. Frames are made with
`llmswitch.adapters.bedrock.eventstream.encode_message`. Kept apart from the recorded fixtures."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from llmswitch.adapters.base import Target
from llmswitch.adapters.bedrock.errors import error_type_name
from llmswitch.adapters.bedrock.eventstream import (
    EventStreamDecoder,
    encode_message,
    event_frame,
    exception_frame,
)
from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    LLMSwitchError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitedError,
    ResponseError,
    TimeoutError,
)
from llmswitch.results import TextDelta
from tests.adapters.bedrock.helpers import ADAPTER, run_stream

EVENTSTREAM = "application/vnd.amazon.eventstream"
CREDS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


def ev(kind: str, payload: dict[str, Any]) -> bytes:
    return event_frame(kind, json.dumps(payload).encode())


def stream_body(*texts: str, stop: str | None = "end_turn",
                usage: dict[str, int] | None = None) -> bytes:
    frames = [ev("messageStart", {"role": "assistant"})]
    frames += [ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})
               for t in texts]
    frames.append(ev("contentBlockStop", {"contentBlockIndex": 0}))
    if stop is not None:
        frames.append(ev("messageStop", {"stopReason": stop}))
    if usage is not None:
        frames.append(ev("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
    return b"".join(frames)


USAGE = {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14}


# -- error responses -------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind", "message", "expected"), [
    (429, "ThrottlingException", "Too many requests, please wait.", RateLimitedError),
    (429, "ServiceQuotaExceededException", "quota", RateLimitedError),
    (503, "ServiceUnavailableException", "Service unavailable", OverloadedError),
    (429, "ModelNotReadyException", "Model is not ready", OverloadedError),
    (500, "InternalServerException", "internal", OverloadedError),
    (424, "ModelErrorException", "model error", OverloadedError),
    (408, "ModelTimeoutException", "timed out", TimeoutError),
    (400, "ValidationException", "Input is too long for requested model.", ContextTooLongError),
    (400, "ValidationException", "prompt is too long: 210000 tokens > 200000 maximum",
     ContextTooLongError),
    (400, "ValidationException", "The provided model identifier is invalid.",
     ModelNotFoundError),
    (400, "ValidationException", "temperature: must be <= 1", BadRequestError),
    (404, "ResourceNotFoundException", "Model not found", ModelNotFoundError),
    (403, "AccessDeniedException", "no access", AuthenticationError),
    (403, "UnrecognizedClientException", "The security token included is invalid.",
     AuthenticationError),
    (403, "ExpiredTokenException", "The security token included in the request is expired",
     AuthenticationError),
    (400, "IncompleteSignatureException", "bad signature", AuthenticationError),
])
def test_error_type_header(status: int, kind: str, message: str,
                           expected: type[LLMSwitchError]) -> None:
    headers = {"x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    error = ADAPTER.error(status, headers, json.dumps({"message": message}).encode(),
                          Target("bedrock", "m"))
    assert type(error) is expected
    assert error.status == status and message in str(error)


def test_error_type_from_body_when_the_header_is_missing() -> None:
    body = json.dumps({"__type": "com.amazon.coral.service#ThrottlingException",
                       "message": "slow down"}).encode()
    error = ADAPTER.error(429, {"retry-after": "3"}, body, Target("bedrock", "m"))
    assert isinstance(error, RateLimitedError) and error.retry_after == 3.0


def test_non_json_error_body() -> None:
    error = ADAPTER.error(502, {}, b"<html>Bad Gateway</html>", Target("bedrock", "m"))
    assert isinstance(error, OverloadedError) and "Bad Gateway" in str(error)


def test_type_names_normalise() -> None:
    assert error_type_name("throttlingException") == "ThrottlingException"
    assert error_type_name("AccessDeniedException:http://x/") == "AccessDeniedException"
    assert error_type_name("com.amazon.coral.validate#ValidationException") == (
        "ValidationException")


async def test_throttling_429_through_switch() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"x-amzn-errortype": "ThrottlingException:http://x/",
                                            "content-type": "application/json"},
                              json={"message": "Too many requests, please wait."})

    switch = Switch({}, transports={"bedrock": lambda: httpx.MockTransport(handler)}, env=CREDS)
    with pytest.raises(RateLimitedError) as caught:
        await switch.complete("bedrock/amazon.nova-micro-v1:0", "hi")
    await switch.aclose()
    assert caught.value.retryable and caught.value.provider == "bedrock"
    assert caught.value.trace is not None and caught.value.trace.status == "error"


# -- exception frames inside a 200 stream ----------------------------------------------------

@pytest.mark.parametrize(("member", "message", "expected"), [
    ("modelStreamErrorException", "The model stopped", OverloadedError),
    ("throttlingException", "Too many tokens per minute", RateLimitedError),
    ("internalServerException", "oops", OverloadedError),
    ("serviceUnavailableException", "unavailable", OverloadedError),
    ("validationException", "Input is too long for requested model.", ContextTooLongError),
])
def test_exception_frame_mid_stream(member: str, message: str,
                                    expected: type[LLMSwitchError]) -> None:
    body = stream_body("Hello", " there", stop=None)
    body += exception_frame(member, json.dumps({"message": message}).encode())
    events: list[Any] = []
    decoder = ADAPTER.decoder(EVENTSTREAM)
    parser = ADAPTER.stream_parser(None, Target("bedrock", "m"))  # type: ignore[arg-type]
    with pytest.raises(expected) as caught:
        for frame in decoder.feed(body):
            events.extend(parser.feed(frame))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there"
    assert message in str(caught.value)


def test_error_message_type_frame() -> None:
    body = stream_body("Hi", stop=None) + encode_message(
        {":message-type": "error", ":error-code": "InternalFailure",
         ":error-message": "internal failure"}, b"")
    with pytest.raises(OverloadedError, match="internal failure"):
        run_stream(body, 9)


async def test_exception_frame_through_switch_keeps_the_text_streamed_so_far() -> None:
    body = stream_body("Partial", stop=None) + exception_frame(
        "modelStreamErrorException", b'{"message": "The model stopped"}')

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": EVENTSTREAM}, content=body)

    switch = Switch({}, transports={"bedrock": lambda: httpx.MockTransport(handler)}, env=CREDS)
    seen: list[str] = []
    with pytest.raises(OverloadedError):
        async for event in switch.stream("bedrock/amazon.nova-micro-v1:0", "hi"):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    await switch.aclose()
    assert seen == ["Partial"]


# -- framing faults --------------------------------------------------------------------------

@pytest.mark.parametrize("keep", [5, 12, 40, -1])
def test_stream_cut_mid_frame(keep: int) -> None:
    body = stream_body("Hello", usage=USAGE)
    last = len(body) - len(ev("metadata", {"usage": USAGE, "metrics": {"latencyMs": 5}}))
    with pytest.raises(ResponseError, match="incomplete frame"):
        run_stream(body[: last + keep] if keep > 0 else body[:-1], 3)


def test_stream_without_message_stop_is_an_error() -> None:
    with pytest.raises(ResponseError, match="messageStop") as caught:
        run_stream(stream_body("Hello", stop=None), 4)
    assert caught.value.retryable


def test_bad_message_crc() -> None:
    frame = bytearray(ev("messageStart", {"role": "assistant"}))
    frame[-6] ^= 0xFF  # a payload byte
    with pytest.raises(ResponseError, match="message checksum"):
        EventStreamDecoder().feed(bytes(frame))


def test_bad_prelude_crc() -> None:
    frame = bytearray(ev("messageStart", {"role": "assistant"}))
    frame[8] ^= 0x01
    with pytest.raises(ResponseError, match="prelude checksum"):
        EventStreamDecoder().feed(bytes(frame))


def test_impossible_length_is_refused_not_awaited() -> None:
    prelude = struct.pack(">II", 8, 0)
    with pytest.raises(ResponseError, match="impossible lengths"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_header_value_types_round_trip() -> None:
    frame = encode_message({":event-type": "x", "flag": True, "off": False, "n": -7,
                            "raw": b"\x00\x01"}, b"{}")
    (message,) = EventStreamDecoder().feed(frame)
    assert dict(message.headers) == {":event-type": "x", "flag": True, "off": False, "n": -7,
                                     "raw": b"\x00\x01"}


# -- stop reasons and usage ------------------------------------------------------------------

@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("guardrail_intervened", "content_filter"),
    ("content_filtered", "content_filter")])
def test_stop_reasons(stop: str, finish: str) -> None:
    reply, _ = run_stream(stream_body("x", stop=stop, usage=USAGE), 17)
    assert reply.finish_reason == finish and reply.raw_finish_reason == stop


def test_malformed_tool_use_is_a_retryable_error_with_usage() -> None:
    with pytest.raises(ResponseError, match="malformed_tool_use") as caught:
        run_stream(stream_body("x", stop="malformed_tool_use", usage=USAGE), 17)
    assert caught.value.usage is not None and caught.value.usage.input_tokens == 10


def test_metadata_is_optional_after_message_stop() -> None:
    reply, _ = run_stream(stream_body("Hi", stop="end_turn"), 8)
    assert reply.text == "Hi" and reply.usage.total_tokens == 0


def test_cache_tokens_count_as_input_and_are_priced_apart() -> None:
    usage = {"inputTokens": 100, "outputTokens": 20, "cacheReadInputTokens": 1000,
             "cacheWriteInputTokens": 50, "totalTokens": 1170}
    reply, _ = run_stream(stream_body("Hi", usage=usage), 64)
    assert reply.usage.input_tokens == 1150
    assert reply.usage.cached_input_tokens == 1000 and reply.usage.cache_write_tokens == 50


async def test_cache_pricing_through_switch() -> None:
    body = json.dumps({
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1_000_000, "outputTokens": 0, "cacheReadInputTokens": 1_000_000,
                  "cacheWriteInputTokens": 1_000_000}}).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

    switch = Switch({}, transports={"bedrock": lambda: httpx.MockTransport(handler)}, env=CREDS)
    completion = await switch.complete(
        "bedrock/global.anthropic.claude-haiku-4-5-20251001-v1:0", "hi")
    await switch.aclose()
    # catalog: input 1.0, cached 0.1, cache write 1.25 USD per million tokens
    assert completion.cost_usd == pytest.approx(1.0 + 0.1 + 1.25)


def test_plain_json_body_on_a_stream_request() -> None:
    body = json.dumps({"output": {"message": {"role": "assistant", "content": [
        {"text": "whole"}]}}, "stopReason": "end_turn", "usage": USAGE}).encode()
    reply, events = run_stream(body, 5, "application/json")
    assert reply.text == "whole" and reply.usage.output_tokens == 4
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["whole"]


def test_event_stream_without_its_content_type_is_sniffed() -> None:
    reply, _ = run_stream(stream_body("sniffed", usage=USAGE), 10, "")
    assert reply.text == "sniffed"


def test_streamed_tool_input_in_fragments_and_forced_answer_tool() -> None:
    from llmswitch.adapters.bedrock.request import STRUCTURED_TOOL

    body = b"".join([
        ev("messageStart", {"role": "assistant"}),
        ev("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {
            "toolUseId": "tooluse_a", "name": "lookup"}}}),
        ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"q"'}}}),
        ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ': 1}'}}}),
        ev("contentBlockStop", {"contentBlockIndex": 0}),
        ev("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {
            "toolUseId": "tooluse_b", "name": STRUCTURED_TOOL}}}),
        ev("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {
            "input": '{"answer": 2}'}}}),
        ev("messageStop", {"stopReason": "tool_use"}),
        ev("metadata", {"usage": USAGE}),
    ])
    reply, _ = run_stream(body, 13)
    assert [(c.id, c.name, c.args()) for c in reply.tool_calls] == [
        ("tooluse_a", "lookup", {"q": 1})]
    assert json.loads(reply.text) == {"answer": 2}
    assert reply.finish_reason == "tool_calls"
