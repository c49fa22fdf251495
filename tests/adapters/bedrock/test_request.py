"""Pure request-mapping tests for Converse: roles, tool turns, images, tool choice, JSON output."""

from __future__ import annotations

import base64
import json

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.bedrock import BedrockAdapter
from llmswitch.adapters.bedrock.request import STRUCTURED_TOOL, build_body, model_path
from llmswitch.adapters.bedrock.response import parse_response
from llmswitch.catalog.card import ModelCard
from llmswitch.errors import UnsupportedError
from llmswitch.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
from llmswitch.request import JSON, Request, ResponseFormat, Settings

WEATHER = ToolSpec("get_weather", "Weather in a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}})
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def req(*messages: Message, **settings: object) -> Request:
    return Request(tuple(messages), Settings(**settings))  # type: ignore[arg-type]


def test_model_ids_and_arns_are_url_encoded() -> None:
    assert model_path("us.amazon.nova-micro-v1:0", False) == (
        "/model/us.amazon.nova-micro-v1%3A0/converse")
    arn = "arn:aws:bedrock:us-east-1:123:inference-profile/us.x-v1:0"
    assert model_path(arn, True) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x-v1%3A0"
        "/converse-stream")


def test_system_lifted_and_settings_mapped() -> None:
    body = build_body(req(Message.system("Be brief."), Message.system("Be kind."),
                          Message.user("Hi"), max_tokens=20, temperature=0.2, top_p=0.9,
                          stop=("END",), seed=3))
    assert body["system"] == [{"text": "Be brief."}, {"text": "Be kind."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]
    assert body["inferenceConfig"] == {"maxTokens": 20, "temperature": 0.2, "topP": 0.9,
                                       "stopSequences": ["END"]}
    assert "toolConfig" not in body and "seed" not in json.dumps(body)


def test_tool_turns_merge_into_alternating_roles() -> None:
    calls = (ToolCall("t1", "get_weather", '{"city": "Paris"}'),
             ToolCall("t2", "get_weather", '{"city": "Rome"}'))
    body = build_body(req(
        Message.user("Weather?"), Message.assistant("", calls),
        Message.tool("t1", "sunny"), Message.tool("t2", "rainy"), Message.user("Thanks"),
        tools=(WEATHER,)))
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant, results = body["messages"][1]["content"], body["messages"][2]["content"]
    assert assistant == [
        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {"city": "Rome"}}}]
    assert results == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "rainy"}]}},
        {"text": "Thanks"}]


def test_blank_text_blocks_are_dropped() -> None:
    body = build_body(req(Message.user("Hi"), Message("assistant", (TextPart("  "),)),
                          Message.user("again")))
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hi"}, {"text": "again"}]}]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"auto": {}}), ("required", {"any": {}}),
    ("get_weather", {"tool": {"name": "get_weather"}}), (None, None)])
def test_tool_choice(choice: str | None, expected: object) -> None:
    body = build_body(req(Message.user("x"), tools=(WEATHER,), tool_choice=choice))
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == dict(
        WEATHER.parameters)
    assert body["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_drops_tools_unless_history_needs_them() -> None:
    assert "toolConfig" not in build_body(req(Message.user("x"), tools=(WEATHER,),
                                              tool_choice="none"))
    history = req(Message.user("x"), Message.assistant("", [ToolCall("t", "get_weather")]),
                  Message.tool("t", "ok"), tools=(WEATHER,), tool_choice="none")
    config = build_body(history)["toolConfig"]
    assert "toolChoice" not in config and len(config["tools"]) == 1


def test_images_inline_data_url_and_s3() -> None:
    png = b"\x89PNG fake"
    body = build_body(req(Message.user([
        TextPart("what is this?"), ImagePart(data=png, media_type="image/png"),
        ImagePart(url="data:image/jpeg;base64," + base64.b64encode(png).decode()),
        ImagePart(url="s3://bucket/cat.webp")])))
    blocks = body["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png",
                                   "source": {"bytes": base64.b64encode(png).decode()}}}
    assert blocks[2]["image"]["format"] == "jpeg"
    assert blocks[3] == {"image": {"format": "webp",
                                   "source": {"s3Location": {"uri": "s3://bucket/cat.webp"}}}}


def test_web_image_urls_are_refused_before_the_call() -> None:
    with pytest.raises(UnsupportedError, match="s3://"):
        build_body(req(Message.user([ImagePart(url="https://example.com/cat.png")])))


def test_json_schema_native_when_the_card_says_so() -> None:
    card = ModelCard(id="bedrock/x", context_window=1000, max_output_tokens=100,
                     capabilities=("json_schema",))
    body = build_body(req(Message.user("x"), response_format=ResponseFormat.json_schema(
        SCHEMA, "City")), card)
    spec = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert spec["name"] == "City" and json.loads(spec["schema"]) == SCHEMA
    assert "toolConfig" not in body


def test_json_schema_emulated_with_a_forced_tool() -> None:
    body = build_body(req(Message.user("x"), response_format=ResponseFormat.json_schema(SCHEMA)))
    assert "outputConfig" not in body
    tools = body["toolConfig"]["tools"]
    assert tools[0]["toolSpec"]["name"] == STRUCTURED_TOOL
    assert tools[0]["toolSpec"]["inputSchema"]["json"] == SCHEMA
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": STRUCTURED_TOOL}}


def test_json_mode_with_user_tools_requires_some_tool() -> None:
    body = build_body(req(Message.user("x"), tools=(WEATHER,), response_format=JSON))
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == [
        "get_weather", STRUCTURED_TOOL]
    assert body["toolConfig"]["toolChoice"] == {"any": {}}


def test_forced_tool_answer_comes_back_as_text() -> None:
    body = json.dumps({
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t", "name": STRUCTURED_TOOL, "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 5, "outputTokens": 3}}).encode()
    reply = parse_response(body)
    assert json.loads(reply.text) == {"city": "Paris"}
    assert reply.finish_reason == "stop" and reply.tool_calls == ()


def test_caller_request_is_not_mutated() -> None:
    request = req(Message.user("x"), tools=(WEATHER,), response_format=JSON,
                  extra={"additionalModelRequestFields": {"top_k": 5}})
    before = repr(request)
    call = BedrockAdapter().build(request, Target("bedrock", "m"), stream=True)
    assert repr(request) == before
    assert call.body is not None and call.body["additionalModelRequestFields"] == {"top_k": 5}
    assert call.headers["accept"] == "application/vnd.amazon.eventstream"
