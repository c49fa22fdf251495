"""Replay every recorded Gemini interaction: the request we would build for the same call is
compared with what the real client sent, and the recorded response (SSE, JSON array, or
plain JSON) is normalised through the adapter's pure functions, streams cut every 7 bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.gemini.request import split_call_id
from llmswitch.providers.provider import Provider
from llmswitch.results import TextDelta, ToolCallDelta, UsageUpdate
from tests.adapters.gemini.replay import (
    ADAPTER,
    all_names,
    model_of,
    normalise,
    request_from_body,
    run_stream,
)
from tests.support.fixtures import body_bytes, load

ALL = all_names()
ERROR_TYPES = {"auth": "authentication", "bad_request": "bad_request",
               "model_not_found": "model_not_found", "rate_limited": "rate_limited"}

# Hand-checked against the recordings: finish reason, raw finishReason, tool names, text start.
EXPECTED: dict[str, tuple[str, str, list[str], str]] = {
    "gemini/generate_plain_instructions": ("stop", "STOP", [], "The capital of France is Paris."),
    "gemini/json_schema": ("stop", "STOP", [], '{"title":"THE NAME OF THE WIND"'),
    "gemini/json_schema_native": ("stop", "STOP", [], '{\n  "city": "Mexico City"'),
    "gemini/json_schema_stream": ("stop", "STOP", [], '{"title":"THE NAME OF THE WIND"'),
    "gemini/max_tokens": ("length", "MAX_TOKENS", [], "Here is a list of all 50 U"),
    "gemini/safety_blocked": ("content_filter", "SAFETY", [], ""),
    "gemini/stream_json_array": ("stop", "STOP", [], "Scoop"),
    "gemini/stream_sse": ("stop", "STOP", [], "To find the sum of 4200 + 42"),
    "gemini/tools_forced_any": ("tool_calls", "STOP", ["get_user_country"], ""),
    "gemini/tools_parallel": ("tool_calls", "STOP", ["secret_retrieval_tool"] * 2, ""),
    "gemini/tools_result_turn": ("stop", "STOP", [], "The secrets have been retrieved."),
    "gemini/tools_stream": ("tool_calls", "STOP", ["secret_retrieval_tool"] * 2, ""),
}


def test_every_fixture_is_covered() -> None:
    assert len(ALL) >= 16
    successes = [n for n in ALL if load(n)["response"]["status"] < 400]
    assert sorted(EXPECTED) == successes


def recorded_chunks(fixture: dict[str, Any]) -> list[dict[str, Any]]:
    """The response objects as recorded, read independently of the adapter."""
    body = body_bytes(fixture).decode()
    if body.lstrip().startswith("data:"):
        return [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]
    data = json.loads(body)
    return data if isinstance(data, list) else [data]


def recorded_usage(fixture: dict[str, Any]) -> dict[str, int]:
    """The last `usageMetadata` (cumulative in streams)."""
    usage: dict[str, int] = {}
    for chunk in recorded_chunks(fixture):
        usage = chunk.get("usageMetadata") or usage
    return usage


def recorded_text(fixture: dict[str, Any]) -> str:
    return "".join(p["text"] for c in recorded_chunks(fixture) for cand in c["candidates"]
                   for p in cand["content"].get("parts", ())
                   if "text" in p and not p.get("thought"))


@pytest.mark.parametrize("name", ALL)
def test_response_normalises(name: str) -> None:
    fixture = load(name)
    response = fixture["response"]
    body = body_bytes(fixture)
    target = Target("gemini", model_of(fixture["request"]["path"]))
    if response["status"] >= 400:
        error = ADAPTER.error(response["status"], response["headers"], body, target)
        assert error.type == ERROR_TYPES[fixture["error_kind"]]
        assert error.status == response["status"]
        assert json.loads(body)["error"]["message"] in str(error)
        return
    if fixture["stream"]:
        reply, events = run_stream(body, 7)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == reply.text
        assert any(isinstance(e, UsageUpdate) for e in events)
        assert [e.name for e in events if isinstance(e, ToolCallDelta)] == [
            c.name for c in reply.tool_calls]
    else:
        reply = ADAPTER.parse(body, target)
    finish, raw, tools, text = EXPECTED[name]
    assert reply.finish_reason == finish
    assert reply.raw_finish_reason == raw
    assert [c.name for c in reply.tool_calls] == tools
    assert reply.text.startswith(text)
    assert reply.text == recorded_text(fixture)
    for call in reply.tool_calls:
        assert isinstance(call.args(), dict)
    usage = recorded_usage(fixture)
    thoughts = usage.get("thoughtsTokenCount", 0)
    assert reply.usage.input_tokens == usage["promptTokenCount"] + usage.get(
        "toolUsePromptTokenCount", 0)
    assert reply.usage.output_tokens == usage.get("candidatesTokenCount", 0) + thoughts
    assert reply.usage.reasoning_tokens == thoughts
    assert reply.usage.cached_input_tokens == usage.get("cachedContentTokenCount", 0)
    assert reply.usage.total_tokens <= usage["totalTokenCount"]


@pytest.mark.parametrize("name", ALL)
def test_request_matches_what_the_real_client_sent(name: str) -> None:
    fixture = load(name)
    recorded = fixture["request"]
    stream = ":streamGenerateContent" in recorded["path"]
    call = ADAPTER.build(request_from_body(recorded["body_json"]),
                         Target("gemini", model_of(recorded["path"])), stream)
    assert call.method == recorded["method"] == "POST"
    assert call.path == recorded["path"]
    assert call.query == ({"alt": "sse"} if stream else {})
    if "alt" in recorded["query"]:
        assert recorded["query"] == call.query
    assert call.body is not None
    assert normalise(dict(call.body)) == normalise(recorded["body_json"])


def test_auth_header_is_the_one_real_clients_send() -> None:
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        provider = Provider("gemini", env={var: "AIza-test"})
        assert provider.auth_headers() == {"x-goog-api-key": "AIza-test"}
    recorded = [load(n)["request"]["headers"] for n in ALL]
    assert any("x-goog-api-key" in h for h in recorded)


def test_thought_signature_is_echoed_on_the_next_turn() -> None:
    """The signature Gemini put on the first call comes back on that call's part."""
    reply = ADAPTER.parse(body_bytes(load("gemini/tools_parallel")), Target("gemini", "m"))
    first, second = reply.tool_calls
    assert split_call_id(first.id)[1] is not None and split_call_id(second.id)[1] is None
    turn = load("gemini/tools_result_turn")["request"]["body_json"]
    request = request_from_body(turn)
    sent = ADAPTER.build(request, Target("gemini", "gemini-2.5-flash"), False).body
    assert sent is not None
    assert sent["contents"][1] == turn["contents"][1]
    assert sent["contents"][2] == turn["contents"][2]


def test_reasoning_is_kept_from_thought_parts() -> None:
    reply, events = run_stream(body_bytes(load("gemini/stream_json_array")), 7)
    assert reply.reasoning.startswith("**Considering the Constraint**")
    assert reply.text == "Scoop"
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Scoop"]


@pytest.mark.parametrize("name", [n for n in ALL if load(n)["stream"]])
def test_a_streamed_body_to_a_plain_request_still_parses(name: str) -> None:
    """A server (or a replay) that streams although `generateContent` was called."""
    body = body_bytes(load(name))
    streamed, _ = run_stream(body, 7)
    plain = ADAPTER.parse(body, Target("gemini", "m"))
    assert (plain.text, plain.finish_reason, plain.usage, plain.tool_calls) == (
        streamed.text, streamed.finish_reason, streamed.usage, streamed.tool_calls)
