"""Pure request-mapping tests for Ollama's `/api/chat`."""

from __future__ import annotations

import base64

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.ollama import OllamaAdapter
from llmswitch.adapters.ollama.request import build_body
from llmswitch.errors import UnsupportedError
from llmswitch.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
from llmswitch.request import JSON, Request, ResponseFormat, Settings

WEATHER = ToolSpec("get_weather", "Weather in a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}})


def req(*messages: Message, **settings: object) -> Request:
    return Request(tuple(messages), Settings(**settings))  # type: ignore[arg-type]


def test_stream_is_always_explicit() -> None:
    assert build_body(req(Message.user("hi")), "llama3.2", False)["stream"] is False
    assert build_body(req(Message.user("hi")), "llama3.2", True)["stream"] is True


def test_options_and_format() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}}
    body = build_body(req(Message.user("hi"), temperature=0.1, top_p=0.5, max_tokens=9,
                          stop=("\n",), seed=42, response_format=ResponseFormat.json_schema(
                              schema)), "m", False)
    assert body["options"] == {"temperature": 0.1, "top_p": 0.5, "num_predict": 9,
                               "stop": ["\n"], "seed": 42}
    assert body["format"] == schema
    assert build_body(req(Message.user("hi"), response_format=JSON), "m", False)["format"] == (
        "json")
    assert "format" not in build_body(req(Message.user("hi")), "m", False)


def test_extra_options_merge_and_top_level_extras_pass_through() -> None:
    body = build_body(req(Message.user("hi"), temperature=0,
                          extra={"options": {"num_ctx": 8192}, "keep_alive": "5m",
                                 "think": True}), "m", True)
    assert body["options"] == {"temperature": 0, "num_ctx": 8192}
    assert body["keep_alive"] == "5m" and body["think"] is True


def test_tool_history_uses_objects_and_tool_names() -> None:
    body = build_body(req(
        Message.system("be brief"), Message.user("weather?"),
        Message.assistant("", [ToolCall("call_0", "get_weather", '{"city": "Tokyo"}')]),
        Message.tool("call_0", "sunny"), tools=(WEATHER,)), "m", False)
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": dict(WEATHER.parameters)}}]


def test_tool_choice_none_sends_no_tools() -> None:
    assert "tools" not in build_body(req(Message.user("x"), tools=(WEATHER,), tool_choice="none"),
                                     "m", False)


def test_images_are_raw_base64() -> None:
    png = b"\x89PNG fake"
    b64 = base64.b64encode(png).decode()
    body = build_body(req(Message.user([
        TextPart("what?"), ImagePart(data=png),
        ImagePart(url=f"data:image/png;base64,{b64}")])), "llava", False)
    assert body["messages"][0] == {"role": "user", "content": "what?", "images": [b64, b64]}
    with pytest.raises(UnsupportedError):
        build_body(req(Message.user([ImagePart(url="https://x/cat.png")])), "llava", False)


@pytest.mark.parametrize(("base", "path"), [
    ("http://localhost:11434", "/api/chat"), ("https://ollama.com/api", "/chat"),
    ("http://127.0.0.1:8080/", "/api/chat")])
def test_path_follows_the_base_url(base: str, path: str) -> None:
    call = OllamaAdapter().build(req(Message.user("x")), Target("ollama", "m", base_url=base),
                                 stream=True)
    assert call.path == path and call.headers["accept"] == "application/x-ndjson"


def test_caller_request_is_not_mutated() -> None:
    request = req(Message.user("x"), extra={"options": {"num_ctx": 1}}, temperature=1.0)
    before = repr(request)
    build_body(request, "m", True)
    assert repr(request) == before and request.settings.extra == {"options": {"num_ctx": 1}}
