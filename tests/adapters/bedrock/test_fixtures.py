"""Replay every recorded Bedrock interaction: the request we build against what the real client
sent, and the response (or stream, split at arbitrary byte offsets) normalised."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from llmswitch.adapters.base import Reply, Target
from llmswitch.adapters.bedrock.eventstream import EventStreamDecoder
from llmswitch.catalog.card import ModelCard
from llmswitch.results import TextDelta, ToolCallDelta, UsageUpdate
from tests.adapters.bedrock.helpers import ADAPTER, normalised, request_from_converse, run_stream
from tests.support.fixtures import body_bytes, load, names

ALL = names("bedrock.converse", "bedrock.converse_stream", "bedrock.invoke_model")
CONVERSE = names("bedrock.converse", "bedrock.converse_stream")
ERROR_TYPES = {"model_not_found": "model_not_found", "permission_denied": "authentication"}

# Hand-checked against the recordings: finish reason, tool names, start of the text.
EXPECTED: dict[str, tuple[str, list[str], str]] = {
    "bedrock/converse_guardrail": ("stop", [], "The capital of France is Paris."),
    "bedrock/converse_json_output": ("stop", [], '{"city":"Paris"'),
    "bedrock/converse_max_tokens": ("length", [], "The capital of France is"),
    "bedrock/converse_plain_claude": ("stop", [], "Hello! 👋"),
    "bedrock/converse_plain_nova": ("stop", [], "Hello! How can I assist you today?"),
    "bedrock/converse_stream_json_output": ("stop", [], '{"city":"Paris"'),
    "bedrock/converse_stream_reasoning": ("stop", [], "Hello! It's nice to meet you."),
    "bedrock/converse_stream_tool_result_turn": ("stop", [], "The current temperature in Paris"),
    "bedrock/converse_stream_tool_use": ("tool_calls", ["get_temperature"], "<thinking>"),
    "bedrock/converse_tools_parallel": (
        "tool_calls",
        ["parallel_local_search_one", "parallel_local_search_two", "parallel_local_search_three"],
        "I'll execute all 3"),
    "bedrock/converse_tools_result_turn": ("stop", [], "The weather in Paris is currently sunny"),
}


def test_every_fixture_is_covered() -> None:
    successes = [n for n in ALL if load(n)["response"]["status"] < 400]
    assert sorted(EXPECTED) == successes
    assert len(ALL) == 13


def card_for(body: dict[str, Any]) -> ModelCard | None:
    """Native structured output was used by the recording client: a card that says so."""
    if "outputConfig" not in body:
        return None
    return ModelCard(id="bedrock/claude", context_window=200_000, max_output_tokens=64_000,
                     capabilities=("json_schema", "streaming"))


@pytest.mark.parametrize("name", CONVERSE)
def test_request_matches_recording(name: str) -> None:
    fixture = load(name)
    recorded = fixture["request"]
    model = unquote(recorded["path"].split("/")[2])
    stream = recorded["path"].endswith("/converse-stream")
    request = request_from_converse(recorded["body_json"])
    call = ADAPTER.build(request, Target("bedrock", model, card_for(recorded["body_json"])),
                         stream)
    assert call.method == "POST"
    assert unquote(call.path) == recorded["path"]
    assert ":" not in call.path  # the model id is URL-encoded
    assert call.body is not None
    assert normalised(dict(call.body)) == normalised(recorded["body_json"])


def recorded_usage(fixture: dict[str, Any]) -> dict[str, int]:
    """The usage as recorded, read without the adapter (stream: the metadata event)."""
    response = fixture["response"]
    if response.get("eventstream_decoded"):
        metadata = [f["payload"] for f in response["eventstream_decoded"]
                    if f["headers"][":event-type"] == "metadata"]
        return dict(metadata[-1]["usage"])
    return dict(json.loads(body_bytes(fixture))["usage"])


def replay(name: str, step: int) -> tuple[Reply, list[Any]]:
    fixture = load(name)
    body = body_bytes(fixture)
    if fixture["stream"]:
        return run_stream(body, step, fixture["response"]["headers"]["content-type"])
    return ADAPTER.parse(body, Target("bedrock", "m")), []


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("step", [1, 7, 1000, 1_000_000])
def test_fixture_normalises(name: str, step: int) -> None:
    fixture = load(name)
    response = fixture["response"]
    if response["status"] >= 400:
        error = ADAPTER.error(response["status"], response["headers"], body_bytes(fixture),
                              Target("bedrock", "m"))
        assert error.type == ERROR_TYPES[fixture["error_kind"]]
        assert error.status == response["status"]
        assert json.loads(body_bytes(fixture))["message"] in str(error)
        return
    reply, events = replay(name, step)
    finish, tools, text = EXPECTED[name]
    assert reply.finish_reason == finish
    assert [c.name for c in reply.tool_calls] == tools
    assert reply.text.startswith(text)
    for call in reply.tool_calls:
        assert call.id.startswith("tooluse_")
        assert isinstance(call.args(), dict) and call.args()
    usage = recorded_usage(fixture)
    cache = usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)
    assert reply.usage.input_tokens == usage["inputTokens"] + cache
    assert reply.usage.output_tokens == usage["outputTokens"]
    if fixture["stream"]:
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == reply.text
        assert [e for e in events if isinstance(e, UsageUpdate)][-1].usage == reply.usage
        if reply.tool_calls:
            deltas = [e for e in events if isinstance(e, ToolCallDelta)]
            assert deltas[0].id == reply.tool_calls[0].id
            assert "".join(d.arguments for d in deltas) == reply.tool_calls[0].arguments


def test_stream_decodes_every_recorded_frame() -> None:
    for name in names("bedrock.converse_stream"):
        fixture = load(name)
        if fixture["response"]["status"] >= 400:
            continue
        decoder = EventStreamDecoder()
        frames = decoder.feed(body_bytes(fixture))
        assert decoder.close() == []
        decoded = fixture["response"]["eventstream_decoded"]
        assert [dict(f.headers) for f in frames] == [d["headers"] for d in decoded]
        assert [json.loads(f.payload) for f in frames] == [d["payload"] for d in decoded]


def test_reasoning_stream_keeps_thinking_apart() -> None:
    reply, _ = replay("bedrock/converse_stream_reasoning", 13)
    assert reply.reasoning.startswith("The user has greeted me")
    assert "greeted" not in reply.text


def test_parallel_tool_calls_keep_their_arguments() -> None:
    reply, _ = replay("bedrock/converse_tools_parallel", 0)
    assert [c.args()["query"] for c in reply.tool_calls] == [
        "latest OpenAI model release notes", "latest Anthropic model release notes",
        "latest Gemini model release notes"]


def test_json_output_is_the_schema_object() -> None:
    for name in ("bedrock/converse_json_output", "bedrock/converse_stream_json_output"):
        reply, _ = replay(name, 5)
        assert json.loads(reply.text) == {"city": "Paris", "country": "France",
                                          "population": 2161000}


@pytest.mark.parametrize("name", [n for n in names("bedrock.converse_stream")
                                  if load(n)["response"]["status"] == 200])
def test_truncated_recorded_stream_is_an_error(name: str) -> None:
    body = body_bytes(load(name))
    end = body.index(b"messageStop")
    for cut in (end // 3, end - 40, end):
        with pytest.raises(Exception) as caught:
            run_stream(body[:cut], 11)
        assert getattr(caught.value, "type", None) == "bad_response"
