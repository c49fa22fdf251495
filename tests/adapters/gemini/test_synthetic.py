"""SYNTHETIC Gemini cases: protocol situations with no recording, built from the official docs
(https://ai.google.dev/gemini-api/docs/troubleshooting, the google.rpc error model with its
`RetryInfo`/`ErrorInfo` details, and the `streamGenerateContent` reference). Kept apart from
the recorded fixtures; every body here was written by hand to the documented shape."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from llmswitch.adapters.base import Target
from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    ModelNotFoundError,
    OverloadedError,
    QuotaExceededError,
    RateLimitedError,
    ResponseError,
    TimeoutError,
)
from llmswitch.models import collect
from llmswitch.results import TextDelta
from tests.adapters.gemini.replay import ADAPTER, run_stream
from tests.support.fixtures import body_bytes, load

TARGET = Target("gemini", "gemini-2.5-flash")


def rpc_error(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    """The documented google.rpc envelope."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}, indent=2).encode()


RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}
QUOTA_FAILURE = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"}]}


def test_synthetic_429_with_retry_info() -> None:
    body = rpc_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.",
                     QUOTA_FAILURE, RETRY_INFO)
    error = ADAPTER.error(429, {"content-type": "application/json"}, body, TARGET)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == pytest.approx(34.4)
    assert error.status == 429 and error.retryable


def test_synthetic_429_retry_after_header_when_no_retry_info() -> None:
    body = rpc_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted.")
    error = ADAPTER.error(429, {"Retry-After": "12"}, body, TARGET)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 12.0
    no_hint = ADAPTER.error(429, {}, body, TARGET)
    assert isinstance(no_hint, RateLimitedError) and no_hint.retry_after is None


@pytest.mark.parametrize(("code", "status", "message", "expected"), [
    (500, "INTERNAL", "An internal error has occurred.", OverloadedError),
    (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", OverloadedError),
    (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.",
     TimeoutError),
    (400, "INVALID_ARGUMENT",
     "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
     ContextTooLongError),
    (400, "FAILED_PRECONDITION",
     "Gemini API free tier is not available in your country. Please enable billing.",
     QuotaExceededError),
    (400, "INVALID_ARGUMENT", "Invalid JSON payload received.", BadRequestError),
    (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.",
     AuthenticationError),
    (403, "PERMISSION_DENIED", "The caller does not have permission", AuthenticationError),
    (404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta", ModelNotFoundError),
])
def test_synthetic_error_statuses(code: int, status: str, message: str,
                                  expected: type[Exception]) -> None:
    error = ADAPTER.error(code, {}, rpc_error(code, status, message), TARGET)
    assert type(error) is expected
    assert error.status == code
    assert message in str(error)


def test_synthetic_expired_key_is_authentication_by_reason() -> None:
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_EXPIRED",
            "domain": "googleapis.com"}
    body = rpc_error(400, "INVALID_ARGUMENT", "API key expired. Please renew the API key.", info)
    assert isinstance(ADAPTER.error(400, {}, body, TARGET), AuthenticationError)


def test_synthetic_error_as_a_json_array_and_as_html() -> None:
    array = b"[" + rpc_error(503, "UNAVAILABLE", "overloaded") + b"]"
    assert isinstance(ADAPTER.error(503, {}, array, TARGET), OverloadedError)
    html = ADAPTER.error(502, {"content-type": "text/html"}, b"<html>502</html>", TARGET)
    assert isinstance(html, OverloadedError)


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


FIRST = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]}}],
         "usageMetadata": {"promptTokenCount": 40, "cachedContentTokenCount": 32,
                           "candidatesTokenCount": 1, "totalTokenCount": 41}}


def test_synthetic_error_chunk_mid_stream_raises_and_keeps_usage() -> None:
    body = sse(FIRST, {"error": {"code": 503, "status": "UNAVAILABLE",
                                 "message": "The model is overloaded."}})
    decoder = ADAPTER.decoder("text/event-stream")
    parser = ADAPTER.stream_parser(None, TARGET)  # type: ignore[arg-type]
    events = []
    with pytest.raises(OverloadedError) as caught:
        for frame in decoder.feed(body):
            events.extend(parser.feed(frame))
    assert caught.value.status is None
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello"]
    assert (parser.usage.input_tokens, parser.usage.cached_input_tokens) == (40, 32)


@pytest.mark.parametrize("name", ["gemini/stream_sse", "gemini/stream_json_array"])
@pytest.mark.parametrize("cut", [0.3, 0.7, 0.99])
def test_synthetic_stream_cut_before_finish_reason_is_an_error(name: str, cut: float) -> None:
    body = body_bytes(load(name))
    end = body.index(b'"finishReason"')
    with pytest.raises(ResponseError) as caught:
        run_stream(body[: int(end * cut)], 7)
    assert "finishReason" in str(caught.value) or "cut" in str(caught.value)


def test_synthetic_stream_that_ends_cleanly_without_finish_reason_is_an_error() -> None:
    with pytest.raises(ResponseError) as caught:
        run_stream(sse(FIRST), 5)
    assert caught.value.usage is not None and caught.value.usage.input_tokens == 40


def test_synthetic_blocked_prompt_in_stream() -> None:
    body = sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}})
    reply, _ = run_stream(body, 4)
    assert reply.finish_reason == "content_filter"
    assert reply.refusal and "PROHIBITED_CONTENT" in reply.refusal


async def test_synthetic_429_then_midstream_error_through_switch() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, headers={"content-type": "text/event-stream"},
                                  content=rpc_error(429, "RESOURCE_EXHAUSTED", "quota",
                                                    RETRY_INFO))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(
            FIRST, {"error": {"code": 500, "status": "INTERNAL", "message": "internal"}}))

    switch = Switch({}, transports={"gemini": lambda: httpx.MockTransport(handler)},
                    env={"GOOGLE_API_KEY": "k"})
    async with switch:
        with pytest.raises(RateLimitedError) as first:
            await collect(switch.stream("gemini/gemini-2.5-flash", "hi"))
        with pytest.raises(OverloadedError) as second:
            await collect(switch.stream("gemini/gemini-2.5-flash", "hi"))
    assert first.value.retry_after == pytest.approx(34.4)
    assert second.value.usage is not None and second.value.usage.input_tokens == 40
    assert second.value.cost_usd is not None and second.value.cost_usd > 0
