"""Request mapping: the bodies we build match what real clients sent in the recordings."""

from __future__ import annotations

from typing import Any

from llmswitch.adapters.base import Target
from llmswitch.adapters.openai_chat import ChatCompletionsAdapter
from llmswitch.messages import Message, ToolCall, to_messages
from llmswitch.request import Request, ResponseFormat, Settings, coerce_settings
from tests.support.fixtures import load

ADAPTER = ChatCompletionsAdapter()


def request_from(body: dict[str, Any], **settings: Any) -> Request:
    return Request(to_messages(body["messages"]), Settings(**coerce_settings(settings)))


def test_plain_openai_body_matches_recording() -> None:
    fixture = load("openai/chat_stream_gpt35")
    recorded = fixture["request"]["body_json"]
    call = ADAPTER.build(
        request_from(recorded, max_tokens=50, temperature=0),
        Target("openai", "gpt-3.5-turbo", base_url="https://api.openai.com/v1"),
        stream=True,
    )
    assert call.path == "/chat/completions"
    assert call.body == recorded


def test_azure_classic_deployment_path_and_version() -> None:
    fixture = load("azure/chat_stream_include_usage")
    recorded = fixture["request"]
    call = ADAPTER.build(
        request_from(recorded["body_json"]),
        Target("azure", "gpt-4o-mini", base_url="https://x.openai.azure.com",
               options={"api_version": "2024-12-01-preview"}),
        stream=True,
    )
    assert call.path == recorded["path"]
    assert dict(call.query) == recorded["query"]
    assert call.body == recorded["body_json"]


def test_azure_v1_base_url_uses_plain_path() -> None:
    call = ADAPTER.build(
        Request((Message.user("hi"),)),
        Target("azure", "dep", base_url="https://x.openai.azure.com/openai/v1"), stream=False)
    assert call.path == "/chat/completions"
    assert call.body is not None and call.body["model"] == "dep"


def test_tools_and_tool_results_round_trip() -> None:
    fixture = load("openai/chat_tools_result_turn")
    recorded = fixture["request"]["body_json"]
    request = Request(to_messages(recorded["messages"]),
                      Settings(**coerce_settings({"tools": recorded["tools"],
                                                  "tool_choice": "required"})))
    body = ADAPTER.build(request, Target("openai", recorded["model"]), stream=False).body
    assert body is not None
    assert body["messages"] == recorded["messages"]
    shape = [(t["function"]["name"], t["function"]["parameters"]) for t in body["tools"]]
    assert shape == [(t["function"]["name"], t["function"]["parameters"])
                     for t in recorded["tools"]]
    assert body["tool_choice"] == "required"


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    request = Request((Message.user("x"),), Settings(response_format=ResponseFormat.json_schema(
        schema, "thing")))
    body = ADAPTER.build(request, Target("deepseek", "deepseek-chat"), stream=False).body
    assert body is not None
    assert body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}


def test_max_tokens_name_depends_on_provider() -> None:
    request = Request((Message.user("x"),), Settings(max_tokens=5))
    openai = ADAPTER.build(request, Target("openai", "m"), stream=False).body
    other = ADAPTER.build(request, Target("openrouter", "m"), stream=False).body
    assert openai is not None and openai["max_completion_tokens"] == 5
    assert other is not None and other["max_tokens"] == 5


def test_ollama_v1_path_gets_prefix_only_when_base_lacks_it() -> None:
    request = Request((Message.user("x"),))
    plain = ADAPTER.build(request, Target("ollama", "m", base_url="http://h:11434"), False)
    v1 = ADAPTER.build(request, Target("ollama", "m", base_url="http://h:11434/v1"), False)
    assert plain.path == "/v1/chat/completions"
    assert v1.path == "/chat/completions"


def test_building_never_mutates_the_request() -> None:
    call = ToolCall("c1", "f", '{"a": 1}')
    request = Request((Message.user("x"), Message.assistant("", [call]),
                       Message.tool("c1", "result")), Settings(stop=("END",)))
    before = repr(request)
    ADAPTER.build(request, Target("openai", "m"), stream=True)
    assert repr(request) == before
