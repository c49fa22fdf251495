"""Replay every recorded Anthropic Messages interaction: the request we would build for the same
call is compared with what the real client sent, and the recorded response is normalised
through the adapter's pure functions (streams cut every 7 bytes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import Target
from llmswitch.catalog.catalog import Catalog
from llmswitch.providers.provider import Provider
from llmswitch.results import TextDelta, ToolCallDelta, UsageUpdate
from tests.adapters.anthropic.replay import (
    ADAPTER,
    all_names,
    normalise,
    request_from_body,
    run_stream,
)
from tests.support.fixtures import body_bytes, load

ALL = all_names()
ERROR_TYPES = {"auth": "authentication", "bad_request": "bad_request",
               "model_not_found": "model_not_found", "rate_limited": "rate_limited"}

# Hand-checked against the recordings: finish reason, raw stop_reason, tool names, text start.
EXPECTED: dict[str, tuple[str, str, list[str], str]] = {
    "anthropic/messages_json_forced_tool": (
        "tool_calls", "tool_use", ["__mirascope_formatted_output_tool__"], ""),
    "anthropic/messages_max_tokens": ("length", "max_tokens", [], "Here are all 50 U.S. states"),
    "anthropic/messages_max_tokens_stream": (
        "length", "max_tokens", [], "Here are all 50 U.S. states"),
    "anthropic/messages_plain_raw": ("stop", "end_turn", [], "Hello! As an AI language model"),
    "anthropic/messages_stop_sequence_stream": (
        "stop", "stop_sequence", [], "\ndef pelican():"),
    "anthropic/messages_stream": ("stop", "end_turn", [], "4200 + 42 = 4242"),
    "anthropic/messages_stream_haiku45": ("stop", "end_turn", [], "Hello"),
    "anthropic/messages_stream_raw": ("stop", "end_turn", [], "1\n2\n3\n4\n5"),
    "anthropic/messages_thinking_stream": ("stop", "end_turn", [], "1. **Pouch**"),
    "anthropic/messages_tools_parallel": (
        "tool_calls", "tool_use", ["secret_retrieval_tool"] * 2, "I'll retrieve the secrets"),
    "anthropic/messages_tools_result_turn": (
        "stop", "end_turn", [], "Here are the secrets retrieved"),
    "anthropic/messages_tools_stream_haiku45": (
        "tool_calls", "tool_use", ["pelican_name_generator"], ""),
}


def test_every_fixture_is_covered() -> None:
    assert len(ALL) >= 15
    successes = [n for n in ALL if load(n)["response"]["status"] < 400]
    assert sorted(EXPECTED) == successes


def recorded_usage(fixture: dict[str, Any]) -> dict[str, int]:
    """The final usage as recorded, read independently of the adapter: message_start's usage
    updated by the last message_delta's (cumulative) values."""
    body = body_bytes(fixture).decode()
    if not fixture["stream"]:
        usage: dict[str, int] = json.loads(body)["usage"]
        return usage
    usage = {}
    for line in body.splitlines():
        if not line.startswith("data:"):
            continue
        event = json.loads(line[5:])
        if event["type"] == "message_start":
            usage.update(event["message"]["usage"])
        elif event["type"] == "message_delta":
            usage.update(event["usage"])
    return usage


def recorded_text(fixture: dict[str, Any]) -> str:
    body = body_bytes(fixture).decode()
    if not fixture["stream"]:
        return "".join(b.get("text", "") for b in json.loads(body)["content"]
                       if b["type"] == "text")
    pieces = []
    for line in body.splitlines():
        if line.startswith("data:"):
            delta = json.loads(line[5:]).get("delta") or {}
            if delta.get("type") == "text_delta":
                pieces.append(delta["text"])
    return "".join(pieces)


@pytest.mark.parametrize("name", ALL)
def test_response_normalises(name: str) -> None:
    fixture = load(name)
    response = fixture["response"]
    body = body_bytes(fixture)
    target = Target("anthropic", fixture["request"]["body_json"]["model"])
    if response["status"] >= 400:
        error = ADAPTER.error(response["status"], response["headers"], body, target)
        assert error.type == ERROR_TYPES[fixture["error_kind"]]
        assert error.status == response["status"]
        assert json.loads(body)["error"]["message"] in str(error)
        return
    if fixture["stream"]:
        reply, events = run_stream(body, 7, response["headers"]["content-type"])
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == reply.text
        assert any(isinstance(e, UsageUpdate) for e in events)
        if reply.tool_calls:
            starts = [e for e in events if isinstance(e, ToolCallDelta) and e.name]
            assert [e.name for e in starts] == [c.name for c in reply.tool_calls]
    else:
        reply = ADAPTER.parse(body, target)
    finish, raw, tools, text = EXPECTED[name]
    assert reply.finish_reason == finish
    assert reply.raw_finish_reason == raw
    assert [c.name for c in reply.tool_calls] == tools
    assert reply.text.startswith(text)
    assert reply.text == recorded_text(fixture)
    for call in reply.tool_calls:
        assert call.id.startswith("toolu_")
        assert isinstance(call.args(), dict)
    usage = recorded_usage(fixture)
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_write = usage.get("cache_creation_input_tokens") or 0
    assert reply.usage.input_tokens == usage["input_tokens"] + cache_read + cache_write
    assert reply.usage.output_tokens == usage["output_tokens"]
    assert reply.usage.cached_input_tokens == cache_read
    assert reply.usage.cache_write_tokens == cache_write


@pytest.mark.parametrize("name", ALL)
def test_request_matches_what_the_real_client_sent(name: str) -> None:
    fixture = load(name)
    recorded = fixture["request"]
    sent = recorded["body_json"]
    request = request_from_body(sent)
    stream = bool(sent.get("stream"))
    call = ADAPTER.build(request, Target("anthropic", sent["model"]), stream)
    assert call.method == recorded["method"] == "POST"
    assert call.path == recorded["path"] == "/v1/messages"
    assert call.headers["anthropic-version"] == "2023-06-01"
    if "anthropic-version" in recorded["headers"]:
        assert recorded["headers"]["anthropic-version"] == call.headers["anthropic-version"]
    assert call.body is not None
    assert normalise(dict(call.body)) == normalise(sent)


def test_auth_header_is_the_one_real_clients_send() -> None:
    provider = Provider("anthropic", env={"ANTHROPIC_API_KEY": "sk-test"})
    assert provider.auth_headers() == {"x-api-key": "sk-test"}
    recorded = [load(n)["request"]["headers"] for n in ALL]
    assert any("x-api-key" in h for h in recorded)
    assert not any("authorization" in h for h in recorded)


def test_reasoning_is_kept_from_thinking_stream() -> None:
    reply, events = run_stream(body_bytes(load("anthropic/messages_thinking_stream")), 7)
    assert reply.reasoning.startswith("The user wants two names")
    assert "Pouch" in reply.text
    assert not any(isinstance(e, TextDelta) and "The user wants" in e.text for e in events)


def test_forced_tool_fixture_shape_is_what_json_emulation_sends() -> None:
    """Without native structured output, a JSON Schema request becomes a forced tool of the
    same shape the recorded client used (tool with the schema, tool_choice type=tool)."""
    sent = load("anthropic/messages_json_forced_tool")["request"]["body_json"]
    schema = sent["tools"][0]["input_schema"]
    card = Catalog.shipped().get("anthropic/claude-3-5-haiku-20241022")
    assert card is not None and not card.has("json_schema")
    request = request_from_body({**sent, "tools": [], "tool_choice": None}).with_settings(
        response_format={"schema": schema, "name": "Book"})
    body = ADAPTER.build(request, Target("anthropic", card.wire_name, card), False).body
    assert body is not None
    assert body["tool_choice"] == {"type": "tool", "name": body["tools"][0]["name"]}
    assert body["tools"][0]["input_schema"] == schema
    assert set(body["tools"][0]) == {"name", "description", "input_schema"}


@pytest.mark.parametrize("name", [n for n in ALL if load(n)["stream"]])
def test_a_streamed_body_to_a_plain_request_still_parses(name: str) -> None:
    """A server (or a replay) that streams although `stream` was not asked gives the same."""
    fixture = load(name)
    body = body_bytes(fixture)
    streamed, _ = run_stream(body, 7)
    plain = ADAPTER.parse(body, Target("anthropic", "m"))
    assert (plain.text, plain.finish_reason, plain.usage) == (
        streamed.text, streamed.finish_reason, streamed.usage)
