"""The GenAI semantic-convention mapping applied at export (pure functions)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("opentelemetry.semconv", reason="extra otel not installed")

from llmswitch.messages import ImagePart, Message, TextPart, ToolCall
from llmswitch.observe.genai import (
    attribute_value,
    content_attributes,
    provider_name,
    span_attributes,
)
from llmswitch.observe.trace import Span


@pytest.mark.parametrize(("ours", "exported"), [
    ("openai", "openai"), ("anthropic", "anthropic"), ("bedrock", "aws.bedrock"),
    ("gemini", "gcp.gemini"), ("azure", "azure.ai.openai"), ("deepseek", "deepseek"),
    ("mistral", "mistral_ai"), ("xai", "x_ai"),
    # outside the registry: the conventions ask for the system's own name
    ("openrouter", "openrouter"), ("ollama", "ollama"), ("local", "local"),
    ("my-proxy", "my-proxy"),
])
def test_provider_names_use_the_registry_values(ours: str, exported: str) -> None:
    assert provider_name(ours) == exported


def test_internal_names_are_renamed_and_the_trace_itself_is_untouched() -> None:
    internal = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "bedrock",
        "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 40, "gen_ai.usage.cached_input_tokens": 60,
        "gen_ai.usage.cache_write_tokens": 0, "gen_ai.usage.reasoning_tokens": 25,
        "llmswitch.ttft_ms": 250.0, "llmswitch.cost_usd": None,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    span = Span("chat m", "attempt", dict(internal))
    out = span_attributes(span)
    assert out == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "aws.bedrock",
        "llmswitch.provider": "bedrock", "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cache_read.input_tokens": 60,
        "gen_ai.usage.reasoning.output_tokens": 25,
        "llmswitch.ttft_ms": 250.0, "gen_ai.response.time_to_first_chunk": 0.25,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    assert span.attributes == internal  # the CLI's --json trace keeps llmswitch's names


@pytest.mark.parametrize(("status", "error", "expected"), [
    ("error", {"type": "rate_limited", "message": "x"}, "rate_limited"),
    ("cut", {"type": "connection", "message": "x"}, "connection"),
    ("abandoned", None, "abandoned"),
    ("cancelled", {"type": "cancelled", "message": "x"}, "cancelled"),
])
def test_every_outcome_but_ok_gets_an_error_type(status: str, error: dict[str, str] | None,
                                                 expected: str) -> None:
    span = Span("chat m", "attempt", {}, status=status, error=error)  # type: ignore[arg-type]
    assert span_attributes(span)["error.type"] == expected
    assert "error.type" not in span_attributes(Span("chat m"))


def test_attribute_values_are_otel_legal() -> None:
    assert attribute_value(["a", "b"]) == ["a", "b"]
    assert attribute_value((1, 2)) == [1, 2]
    assert attribute_value([1, "a"]) == '[1, "a"]'
    assert json.loads(attribute_value({"k": [1]})) == {"k": [1]}
    assert attribute_value([]) == "[]"


def test_messages_become_role_and_parts() -> None:
    messages = (
        Message.system("Be brief."),
        Message.user([TextPart("What is this?"), ImagePart(url="https://x/cat.png"),
                      ImagePart(data=b"\x89PNG", media_type="image/png")]),
        Message.assistant("", [ToolCall("call_1", "lookup", '{"q": "cat"}')]),
        Message.tool("call_1", "a cat"),
    )
    out = content_attributes(messages, "A cat.", [ToolCall("call_2", "save", "not json")],
                             "tool_calls")
    assert json.loads(out["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}]
    assert json.loads(out["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [
            {"type": "text", "content": "What is this?"},
            {"type": "uri", "modality": "image", "uri": "https://x/cat.png"},
            {"type": "blob", "modality": "image", "mime_type": "image/png"}]},
        {"role": "assistant", "parts": [
            {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": {"q": "cat"}}]},
        {"role": "tool", "parts": [
            {"type": "tool_call_response", "id": "call_1", "response": "a cat"}]},
    ]
    assert json.loads(out["gen_ai.output.messages"]) == [{
        "role": "assistant", "finish_reason": "tool_call", "parts": [
            {"type": "text", "content": "A cat."},
            {"type": "tool_call", "id": "call_2", "name": "save", "arguments": "not json"}]}]


def test_a_failed_call_has_input_messages_only() -> None:
    out = content_attributes((Message.user("hi"),))
    assert set(out) == {"gen_ai.input.messages"}
