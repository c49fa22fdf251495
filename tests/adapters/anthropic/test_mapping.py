"""Pure-function tests of the Anthropic request, response and usage mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.anthropic import JSON_TOOL, AnthropicAdapter
from llmswitch.adapters.anthropic.request import JSON_VALUE_TOOL, build_body
from llmswitch.adapters.anthropic.response import finish_reason, parse_message, usage_from
from llmswitch.adapters.base import Target
from llmswitch.catalog.card import ModelCard
from llmswitch.catalog.pricing import cost_usd
from llmswitch.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings
from llmswitch.results import Usage

ADAPTER = AnthropicAdapter()
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}


def card(max_out: int = 64000, caps: tuple[str, ...] = ("tools",)) -> ModelCard:
    return ModelCard(id="anthropic/test-model", context_window=200000, max_output_tokens=max_out,
                     input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3,
                     cache_write_per_mtok=3.75, capabilities=caps)  # type: ignore[arg-type]


def body(request: Request, target: Target | None = None, stream: bool = False) -> dict[str, Any]:
    return build_body(request, target or Target("anthropic", "test-model"), stream)


def test_system_messages_are_lifted_and_joined() -> None:
    request = Request((Message.system("Be brief."), Message.user("Hi"),
                       Message.system("Answer in French.")))
    out = body(request)
    assert out["system"] == "Be brief.\n\nAnswer in French."
    assert out["messages"] == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(("limit", "card_max", "expected"), [
    (None, None, 4096), (None, 64000, 4096), (None, 1024, 1024), (50, 64000, 50),
])
def test_max_tokens_is_always_sent(limit: int | None, card_max: int | None, expected: int) -> None:
    request = Request((Message.user("Hi"),), Settings(max_tokens=limit))
    target = Target("anthropic", "m", card(card_max) if card_max else None)
    assert body(request, target)["max_tokens"] == expected


def test_tool_round_trip_merges_tool_results_into_one_user_turn() -> None:
    calls = (ToolCall("toolu_1", "lookup", '{"q": "a"}'), ToolCall("toolu_2", "lookup", "{}"))
    request = Request((
        Message.user("Look up a and b"),
        Message.assistant("Looking.", calls),
        Message.tool("toolu_1", "A!"),
        Message.tool("toolu_2", "B!"),
        Message.user("Thanks, now summarise"),
    ))
    messages = body(request)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "a"}},
        {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "A!"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "B!"},
        {"type": "text", "text": "Thanks, now summarise"},
    ]


def test_images_use_base64_or_url_sources() -> None:
    request = Request((Message.user([
        TextPart("What is this?"),
        ImagePart(data=b"\x89PNG", media_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg"),
        ImagePart(url="data:image/jpeg;base64,/9j/"),
    ]),))
    content = body(request)["messages"][0]["content"]
    assert content[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": "iVBORw=="}}
    assert content[2] == {"type": "image", "source": {"type": "url",
                                                      "url": "https://example.com/cat.jpg"}}
    assert content[3]["source"] == {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ("lookup", {"type": "tool", "name": "lookup"}),
])
def test_tools_and_tool_choice(choice: str, wire: dict[str, str]) -> None:
    tool = ToolSpec("lookup", "Look something up", {"type": "object", "properties": {}})
    request = Request((Message.user("x"),), Settings(tools=(tool,), tool_choice=choice,
                                                     stop=("END",), temperature=0.2, top_p=0.9))
    out = body(request)
    assert out["tools"] == [{"name": "lookup", "description": "Look something up",
                             "input_schema": {"type": "object", "properties": {}}}]
    assert out["tool_choice"] == wire
    assert out["stop_sequences"] == ["END"]
    assert (out["temperature"], out["top_p"]) == (0.2, 0.9)


def test_json_schema_uses_native_output_when_the_card_has_it() -> None:
    request = Request((Message.user("x"),), Settings(response_format=ResponseFormat.json_schema(
        SCHEMA)))
    out = body(request, Target("anthropic", "m", card(caps=("tools", "json_schema"))))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in out and "tool_choice" not in out


def test_json_schema_is_emulated_with_a_forced_tool_otherwise() -> None:
    request = Request((Message.user("x"),), Settings(response_format=ResponseFormat.json_schema(
        SCHEMA, "City")))
    out = body(request, Target("anthropic", "m", card(caps=("tools",))))
    assert "output_config" not in out
    assert out["tools"] == [{"name": JSON_TOOL, "description": out["tools"][0]["description"],
                             "input_schema": SCHEMA}]
    assert out["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


def test_json_mode_and_non_object_schemas_are_emulated() -> None:
    json_mode = body(Request((Message.user("x"),),
                             Settings(response_format=ResponseFormat("json"))))
    assert json_mode["tools"][0]["input_schema"]["type"] == "object"
    array = ResponseFormat.json_schema({"type": "array", "items": {"type": "integer"}})
    wrapped = body(Request((Message.user("x"),), Settings(response_format=array)))
    assert wrapped["tool_choice"] == {"type": "tool", "name": JSON_VALUE_TOOL}
    assert wrapped["tools"][0]["input_schema"]["properties"]["value"] == array.schema


def test_emulated_answer_becomes_text_with_finish_stop() -> None:
    data = {"type": "message", "model": "m", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": JSON_TOOL,
                         "input": {"city": "Paris"}}],
            "usage": {"input_tokens": 10, "output_tokens": 5}}
    reply = parse_message(data)
    assert json.loads(reply.text) == {"city": "Paris"}
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == ()
    assert reply.raw_finish_reason == f"tool_use:{JSON_TOOL}"
    wrapped = parse_message({**data, "content": [{"type": "tool_use", "id": "t",
                                                  "name": JSON_VALUE_TOOL,
                                                  "input": {"value": [1, 2]}}]})
    assert json.loads(wrapped.text) == [1, 2]


@pytest.mark.parametrize(("raw", "tools", "expected"), [
    ("end_turn", False, "stop"), ("stop_sequence", False, "stop"), ("max_tokens", False, "length"),
    ("tool_use", True, "tool_calls"), ("refusal", False, "content_filter"),
    ("pause_turn", False, "stop"), ("model_context_window_exceeded", False, "length"),
    (None, False, "stop"), ("something_new", False, "stop"),
])
def test_finish_reasons(raw: str | None, tools: bool, expected: str) -> None:
    assert finish_reason(raw, tools) == expected


def test_refusal_and_pause_turn_are_reported() -> None:
    refused = parse_message({"content": [], "stop_reason": "refusal",
                             "stop_details": {"type": "refusal", "explanation": "unsafe"},
                             "usage": {"input_tokens": 3, "output_tokens": 0}})
    assert refused.finish_reason == "content_filter"
    assert refused.refusal == "unsafe"
    paused = parse_message({"content": [{"type": "text", "text": "Searching"}],
                            "stop_reason": "pause_turn", "usage": {}})
    assert (paused.finish_reason, paused.raw_finish_reason) == ("stop", "pause_turn")


def test_cache_usage_includes_reads_and_writes_and_prices_each_kind() -> None:
    usage = usage_from({"input_tokens": 100, "cache_read_input_tokens": 1000,
                        "cache_creation_input_tokens": 500, "output_tokens": 20})
    assert usage == Usage(input_tokens=1600, output_tokens=20, cached_input_tokens=1000,
                          cache_write_tokens=500)
    expected = (100 * 3.0 + 1000 * 0.3 + 500 * 3.75 + 20 * 15.0) / 1e6
    assert cost_usd(card(), usage) == pytest.approx(expected)


def test_stream_usage_is_updated_not_summed() -> None:
    start = usage_from({"input_tokens": 50, "cache_read_input_tokens": 10,
                        "cache_creation_input_tokens": 5, "output_tokens": 1})
    final = usage_from({"output_tokens": 42}, start)
    assert final == Usage(input_tokens=65, output_tokens=42, cached_input_tokens=10,
                          cache_write_tokens=5)
    again = usage_from({"input_tokens": 50, "cache_read_input_tokens": 10,
                        "cache_creation_input_tokens": 5, "output_tokens": 42}, final)
    assert again == final


def test_building_never_mutates_the_request() -> None:
    request = Request((Message.system("s"), Message.user("u")),
                      Settings(response_format=ResponseFormat.json_schema(SCHEMA),
                               extra={"metadata": {"user_id": "u1"}}))
    before = repr(request)
    call = ADAPTER.build(request, Target("anthropic", "m"), True)
    assert repr(request) == before
    assert call.body is not None and call.body["stream"] is True
    assert call.body["metadata"] == {"user_id": "u1"}
    assert call.headers["accept"] == "text/event-stream"


def test_extra_objects_are_merged_with_ours() -> None:
    request = Request((Message.user("x"),), Settings(
        response_format=ResponseFormat.json_schema(SCHEMA),
        extra={"output_config": {"effort": "low"}, "thinking": {"type": "disabled"}}))
    out = body(request, Target("anthropic", "m", card(caps=("json_schema",))))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA},
                                    "effort": "low"}
    assert out["thinking"] == {"type": "disabled"}
