"""Pure-function tests of the Gemini request, response, usage and framing code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.framing import SSEEvent
from llmswitch.adapters.gemini import GeminiAdapter
from llmswitch.adapters.gemini.framing import JSONArrayDecoder, StreamDecoder
from llmswitch.adapters.gemini.request import (
    SIGNATURE_MARK,
    build_body,
    model_path,
    openapi_schema,
)
from llmswitch.adapters.gemini.response import finish_reason, parse_response, usage_from
from llmswitch.errors import ResponseError
from llmswitch.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings
from llmswitch.results import Usage

ADAPTER = GeminiAdapter()


def test_paths_and_stream_query() -> None:
    plain = ADAPTER.build(Request((Message.user("x"),)), Target("gemini", "gemini-2.5-flash"),
                          False)
    assert (plain.path, dict(plain.query)) == (
        "/v1beta/models/gemini-2.5-flash:generateContent", {})
    streamed = ADAPTER.build(Request((Message.user("x"),)),
                             Target("gemini", "models/gemini-2.5-pro"), True)
    assert streamed.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert dict(streamed.query) == {"alt": "sse"}
    assert model_path("gemini-flash-latest", False).endswith("/gemini-flash-latest:generateContent")


def test_roles_system_and_settings() -> None:
    request = Request(
        (Message.system("Be brief."), Message.user("Hi"), Message.assistant("Hello!"),
         Message.user("Again")),
        Settings(max_tokens=64, temperature=0.1, top_p=0.5, seed=7, stop=("END",)),
    )
    body = build_body(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.1, "topP": 0.5,
                                        "seed": 7, "stopSequences": ["END"]}
    assert "generationConfig" not in build_body(Request((Message.user("x"),)))


def test_tool_results_are_function_responses_named_after_their_call() -> None:
    calls = (ToolCall("call_0" + SIGNATURE_MARK + "c2ln", "lookup", '{"q": "a"}'),
             ToolCall("call_1", "weather", "{}"))
    request = Request((
        Message.user("go"),
        Message.assistant("", calls),
        Message.tool("call_1", '{"temp": 21}'),
        Message.tool("call_0" + SIGNATURE_MARK + "c2ln", "plain text"),
    ))
    contents = build_body(request)["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "lookup", "args": {"q": "a"}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "weather", "args": {}}},
    ]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "lookup", "response": {"output": "plain text"}}},
    ]}


def test_images_inline_data_url_and_file_uri() -> None:
    request = Request((Message.user([
        TextPart("What is it?"),
        ImagePart(data=b"\x89PNG", media_type="image/png"),
        ImagePart(url="data:image/jpeg;base64,/9j/"),
        ImagePart(url="gs://bucket/cat.jpg", media_type="image/jpeg"),
    ]),))
    parts = build_body(request)["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}}
    assert parts[2] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}
    assert parts[3] == {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpg"}}


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ("lookup", {"mode": "ANY", "allowedFunctionNames": ["lookup"]}),
])
def test_tool_choice(choice: str, wire: dict[str, Any]) -> None:
    tool = ToolSpec("lookup", "Look up", {"type": "object", "properties": {"q": {"type": "string"}},
                                          "additionalProperties": False})
    body = build_body(Request((Message.user("x"),), Settings(tools=(tool,), tool_choice=choice)))
    assert body["toolConfig"] == {"functionCallingConfig": wire}
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "lookup", "description": "Look up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}]


def test_json_output_settings() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = build_body(Request((Message.user("x"),),
                              Settings(response_format=ResponseFormat.json_schema(schema))))
    assert body["generationConfig"] == {"responseMimeType": "application/json",
                                        "responseJsonSchema": schema}
    json_mode = build_body(Request((Message.user("x"),),
                                   Settings(response_format=ResponseFormat("json"))))
    assert json_mode["generationConfig"] == {"responseMimeType": "application/json"}


def test_openapi_schema_conversion() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "$defs": {"Author": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "properties": {
            "author": {"$ref": "#/$defs/Author"},
            "nickname": {"type": ["string", "null"]},
            "rating": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "kind": {"const": "book"},
            "tags": {"type": "array", "items": {"type": "string", "examples": ["x"]}},
            "shape": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
    }
    assert openapi_schema(schema) == {
        "type": "object",
        "properties": {
            "author": {"type": "object", "properties": {"name": {"type": "string"}}},
            "nickname": {"type": "string", "nullable": True},
            "rating": {"type": "integer", "nullable": True},
            "kind": {"enum": ["book"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "shape": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
    }


def test_recursive_refs_stop_expanding() -> None:
    node = {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
            "$ref": "#/$defs/N"}
    converted = json.dumps(openapi_schema(node))
    assert converted.count('"next"') <= 10


@pytest.mark.parametrize(("raw", "calls", "expected"), [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), (None, True, "tool_calls"),
    ("MAX_TOKENS", False, "length"), ("SAFETY", False, "content_filter"),
    ("RECITATION", False, "content_filter"), ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"), ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"), ("OTHER", False, "stop"),
    ("FINISH_REASON_UNSPECIFIED", False, "stop"),
])
def test_finish_reasons(raw: str | None, calls: bool, expected: str) -> None:
    assert finish_reason(raw, calls) == expected


def test_usage_counts_thoughts_as_output_and_tool_prompts_as_input() -> None:
    usage = usage_from({"promptTokenCount": 1000, "cachedContentTokenCount": 800,
                        "toolUsePromptTokenCount": 20, "candidatesTokenCount": 30,
                        "thoughtsTokenCount": 70, "totalTokenCount": 1120})
    assert usage == Usage(input_tokens=1020, output_tokens=100, cached_input_tokens=800,
                          reasoning_tokens=70)


def test_blocked_prompt_is_content_filter() -> None:
    reply = parse_response({"promptFeedback": {"blockReason": "SAFETY"},
                            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}})
    assert reply.finish_reason == "content_filter"
    assert reply.refusal and "SAFETY" in reply.refusal
    assert reply.usage.input_tokens == 9


def test_malformed_function_call_is_a_retryable_response_error() -> None:
    with pytest.raises(ResponseError) as caught:
        parse_response({"candidates": [{"content": {}, "finishReason": "MALFORMED_FUNCTION_CALL"}],
                        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}})
    assert caught.value.retryable
    assert caught.value.usage is not None and caught.value.usage.input_tokens == 5


def test_no_candidates_and_no_feedback_is_a_response_error() -> None:
    with pytest.raises(ResponseError):
        ADAPTER.parse(b'{"usageMetadata": {}}', Target("gemini", "m"))
    with pytest.raises(ResponseError):
        ADAPTER.parse(b"<html>oops</html>", Target("gemini", "m"))


FIRST = json.dumps(
    {"candidates": [{"content": {"parts": [{"text": 'has ] and } and \\" and [{'}]}}]},
    indent=1).encode()
SECOND = json.dumps(
    {"candidates": [{"content": {"parts": [{"text": "é ü 漢字"}]}, "finishReason": "STOP"}]},
    ensure_ascii=False).encode()
ARRAY = b"[" + FIRST + b"\n,\r\n" + SECOND + b"\n]\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, len(ARRAY)])
def test_json_array_decoder_at_any_split(step: int) -> None:
    decoder = JSONArrayDecoder()
    items: list[Any] = []
    for i in range(0, len(ARRAY), step):
        items.extend(decoder.feed(ARRAY[i : i + step]))
    items.extend(decoder.close())
    assert items == json.loads(ARRAY)


def test_json_array_decoder_yields_each_element_as_soon_as_it_is_complete() -> None:
    decoder = JSONArrayDecoder()
    first_end = len(FIRST) + 1
    assert decoder.feed(ARRAY[: first_end - 1]) == []
    assert decoder.feed(ARRAY[first_end - 1 : first_end]) == [json.loads(FIRST)]
    assert decoder.feed(ARRAY[first_end:]) == [json.loads(ARRAY)[1]]


def test_json_array_decoder_rejects_a_cut_or_garbled_stream() -> None:
    decoder = JSONArrayDecoder()
    decoder.feed(ARRAY[: len(ARRAY) // 2])
    with pytest.raises(ResponseError):
        decoder.close()
    with pytest.raises(ResponseError):
        JSONArrayDecoder().feed(b"[{}, garbage")


@pytest.mark.parametrize(("body", "kind"), [
    (b'data: {"a": 1}\n\n', SSEEvent), (b"\n [ {\"a\": 1} ]", dict), (b'{"a": 1}', dict),
])
def test_stream_decoder_recognises_the_framing(body: bytes, kind: type) -> None:
    decoder = StreamDecoder()
    frames = [f for b in body for f in decoder.feed(bytes([b]))] + decoder.close()
    assert len(frames) == 1 and isinstance(frames[0], kind)


def test_building_never_mutates_the_request() -> None:
    request = Request((Message.system("s"), Message.user("u")),
                      Settings(extra={"safetySettings": [{"category": "X"}]}))
    before = repr(request)
    body = build_body(request)
    assert repr(request) == before
    assert body["safetySettings"] == [{"category": "X"}]


def test_extra_generation_config_is_merged_not_replaced() -> None:
    request = Request((Message.user("x"),), Settings(
        max_tokens=100, extra={"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}))
    assert build_body(request)["generationConfig"] == {
        "maxOutputTokens": 100, "thinkingConfig": {"thinkingBudget": 0}}
