"""Capabilities drive behaviour: refuse before the call, or emulate and say so in the trace."""

from __future__ import annotations

import json

import httpx
import pytest

from llmswitch import Switch
from llmswitch.capabilities import (
    JSON_SCHEMA_VIA_FORCED_TOOL,
    JSON_SCHEMA_VIA_JSON_MODE,
    JSON_VIA_PROMPT,
    check_request,
    prepare_request,
    suggest_model,
)
from llmswitch.catalog import Catalog, ModelCard
from llmswitch.errors import ContextTooLongError, UnsupportedError
from llmswitch.messages import ImagePart, Message, TextPart, ToolSpec
from llmswitch.request import JSON, TEXT, Request, ResponseFormat, Settings

CATALOG = Catalog.shipped()
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def card(model_id: str, **override: object) -> ModelCard:
    catalog = CATALOG.extended({model_id: override}) if override else CATALOG
    found = catalog.get(model_id)
    assert found is not None
    return found


def req(*, tools: bool = False, image: bool = False, fmt: ResponseFormat = TEXT,
        system: str | None = None, text: str = "hi", max_tokens: int | None = None) -> Request:
    parts = [TextPart(text), *([ImagePart(url="https://x/y.png")] if image else [])]
    messages = ([Message.system(system)] if system else []) + [Message.user(parts)]
    settings = Settings(tools=(ToolSpec("lookup"),) if tools else (), response_format=fmt,
                        max_tokens=max_tokens)
    return Request(tuple(messages), settings)


def test_unknown_and_undeclared_models_are_not_checked() -> None:
    everything = req(tools=True, image=True, fmt=ResponseFormat.json_schema(SCHEMA))
    assert check_request(everything, None) == []
    bare = CATALOG.extended({"vllm/my-model": {}}).get("vllm/my-model")
    assert bare is not None and bare.capabilities == ()
    assert check_request(everything, bare) == []


def test_a_capable_model_needs_nothing() -> None:
    everything = req(tools=True, image=True, fmt=ResponseFormat.json_schema(SCHEMA))
    assert check_request(everything, card("openai/gpt-4o")) == []


def test_tools_on_a_model_without_tools_fail_with_a_better_model_named() -> None:
    with pytest.raises(UnsupportedError) as info:
        check_request(req(tools=True), card("ollama/gemma3:4b"))
    err = info.value
    assert "ollama/gemma3:4b" in err.message and "tool calling" in err.message
    assert err.provider == "ollama" and err.model == "gemma3:4b"
    assert err.hint is not None and "such as ollama/" in err.hint  # same provider first
    better = err.hint.split("such as ")[1].split(",")[0]
    assert card(better).has("tools")


def test_images_on_a_text_model_fail() -> None:
    with pytest.raises(UnsupportedError, match="image input"):
        check_request(req(image=True), card("deepseek/deepseek-chat"))


def test_no_candidate_means_the_hint_explains_the_override() -> None:
    tiny = Catalog([card("ollama/gemma3:4b")])
    with pytest.raises(UnsupportedError) as info:
        check_request(req(tools=True), card("ollama/gemma3:4b"), tiny)
    assert info.value.hint is not None
    assert info.value.hint.startswith('or, if it can, override its card in llmswitch.yaml')
    assert "capabilities: [json_mode, json_schema, vision, streaming, tools]" in info.value.hint


def test_json_schema_via_json_mode_rewrites_a_copy() -> None:
    original = req(fmt=ResponseFormat.json_schema(SCHEMA), system="Be brief.")
    sent, notes = prepare_request(original, card("deepseek/deepseek-chat"))
    assert notes == [JSON_SCHEMA_VIA_JSON_MODE]
    assert sent.settings.response_format == JSON
    assert sent.messages[0].role == "system" and sent.messages[0].text.startswith("Be brief.")
    assert json.dumps(SCHEMA, separators=(",", ":")) in sent.messages[0].text
    assert len(sent.messages) == len(original.messages)
    assert original.settings.response_format.kind == "json_schema"  # caller's request untouched
    assert original.messages[0].text == "Be brief."


def test_json_mode_via_prompt_inserts_a_system_message() -> None:
    sent, notes = prepare_request(req(fmt=JSON), card("anthropic/claude-sonnet-4-5"))
    assert notes == [JSON_VIA_PROMPT]
    assert sent.messages[0].role == "system" and "JSON" in sent.messages[0].text
    assert sent.settings.response_format == TEXT


@pytest.mark.parametrize("model_id", ["anthropic/claude-3-5-haiku-20241022",
                                      "bedrock/meta.llama3-3-70b-instruct-v1:0"])
def test_json_schema_by_forced_tool_is_left_to_the_adapter(model_id: str) -> None:
    original = req(fmt=ResponseFormat.json_schema(SCHEMA))
    sent, notes = prepare_request(original, card(model_id))
    assert notes == [JSON_SCHEMA_VIA_FORCED_TOOL]
    assert sent is original


def test_json_schema_without_any_way_fails() -> None:
    plain = card("openrouter/qwen/qwen3-32b", capabilities=["streaming"])
    with pytest.raises(UnsupportedError, match="JSON Schema output"):
        check_request(req(fmt=ResponseFormat.json_schema(SCHEMA)), plain)


def test_local_models_have_grammars() -> None:
    local = card("local/my-gguf", capabilities=["streaming"], path="/x.gguf")
    assert check_request(req(fmt=ResponseFormat.json_schema(SCHEMA)), local) == []
    assert check_request(req(fmt=JSON), local) == []


def test_context_window_exact_for_openai() -> None:
    small = card("openai/gpt-4o", context_window=100)
    words = "hello " * 60  # 60 tokens + framing under o200k
    check_request(req(text=words, max_tokens=30), small)
    with pytest.raises(ContextTooLongError) as info:
        check_request(req(text=words, max_tokens=40), small)
    assert "100-token context window" in info.value.message
    assert "+ max_tokens 40" in info.value.message
    assert info.value.hint is not None and "openai/" in info.value.hint
    with pytest.raises(ContextTooLongError):
        check_request(req(text="hello " * 120), small)


def test_context_window_approximate_refuses_only_a_clear_overrun() -> None:
    small = card("anthropic/claude-sonnet-4-5", context_window=1000)
    near = "The committee met on Tuesday. " * 40  # ~ 300 tokens estimated
    check_request(req(text=near * 3), small)  # over by a little: the provider decides
    with pytest.raises(ContextTooLongError, match="about"):
        check_request(req(text=near * 6), small)


def test_suggestion_prefers_same_provider_then_cheapest() -> None:
    picked = suggest_model(None, card("openai/gpt-3.5-turbo"), {"json_schema", "vision"})
    assert picked is not None and picked.startswith("openai/")
    options = [c for c in CATALOG if c.provider == "openai" and c.has("json_schema")
               and c.has("vision") and c.id != "openai/gpt-3.5-turbo"]
    cheapest = min(options, key=lambda c: c.input_per_mtok or 1e9)
    assert picked == cheapest.id


# --- the hook in HttpModel --------------------------------------------------------------

CHAT_OK = {"id": "x", "object": "chat.completion", "model": "deepseek-chat",
           "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": '{"city": "Paris"}'}}],
           "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}}


def switch_with(provider: str, seen: list[httpx.Request]) -> Switch:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=CHAT_OK)

    return Switch({}, transports={provider: lambda: httpx.MockTransport(handler)},
                  env={"DEEPSEEK_API_KEY": "x"})


async def test_emulation_is_sent_and_recorded_in_the_trace() -> None:
    seen: list[httpx.Request] = []
    switch = switch_with("deepseek", seen)
    answer = await switch.complete("deepseek/deepseek-chat", "Capital of France?",
                                   response_format=SCHEMA)
    body = json.loads(seen[0].content)
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and '"city"' in body["messages"][0]["content"]
    assert answer.trace is not None
    assert answer.trace.attributes["llmswitch.emulated"] == [JSON_SCHEMA_VIA_JSON_MODE]
    await switch.aclose()


async def test_unsupported_fails_before_any_http_call() -> None:
    seen: list[httpx.Request] = []
    switch = switch_with("ollama", seen)
    with pytest.raises(UnsupportedError) as info:
        await switch.complete("ollama/gemma3:4b", "hi", tools=[ToolSpec("lookup")])
    assert seen == []
    assert info.value.trace is not None and info.value.trace.attributes["error.type"] == (
        "unsupported")
    events = []
    with pytest.raises(UnsupportedError):
        async for event in switch.stream("ollama/gemma3:4b", "hi", tools=[ToolSpec("lookup")]):
            events.append(event)
    assert seen == [] and events == []
    await switch.aclose()
