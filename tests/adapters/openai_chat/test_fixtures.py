"""Replay every recorded Chat Completions interaction (OpenAI, Azure, DeepSeek, OpenRouter,
Ollama /v1) through the adapter's pure functions and assert the normalised result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import Reply, Target
from llmswitch.adapters.openai_chat import ChatCompletionsAdapter
from llmswitch.errors import LLMSwitchError
from llmswitch.results import TextDelta, ToolCallDelta
from tests.support.fixtures import body_bytes, load, names
from tests.support.streams import run_stream as shared_run_stream

CHAT_APIS = ("openai.chat_completions", "azure.chat_completions", "deepseek.chat_completions",
             "openrouter.chat_completions", "ollama.openai_compat")
ALL = names(*CHAT_APIS)
ADAPTER = ChatCompletionsAdapter()

# error_kind (the fixture set's own classification) -> our error type
ERROR_TYPES = {
    "auth": "authentication",
    "bad_request": "bad_request",
    "model_not_found": "model_not_found",
    "not_found": "model_not_found",
    "rate_limited": "rate_limited",
}

# Hand-checked expectations: finish reason and tool names, read off the recordings.
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "openai/chat_plain_raw": ("stop", []),
    "openai/chat_max_tokens_length": ("length", []),
    "openai/chat_refusal": ("content_filter", []),
    "openai/chat_stream_gpt35": ("stop", []),
    "openai/chat_tools_parallel": ("tool_calls", ["secret_retrieval_tool"] * 2),
    "openai/chat_tools_parallel_stream": ("tool_calls", ["secret_retrieval_tool"] * 2),
    "openai/chat_tools_function_call_raw": ("tool_calls", ["getCurrentWeather"]),
    "azure/chat_max_tokens": ("length", []),
    "azure/chat_stream_include_usage": ("stop", []),
    "azure/chat_tools": ("tool_calls", ["calculator"]),
    "deepseek/chat_reasoner_stream": ("stop", []),
    "deepseek/chat_tools_parallel": ("tool_calls", ["get_player_name", "roll_dice"]),
    "openrouter/chat_plain": ("stop", []),
    "openrouter/chat_stream": ("stop", []),
    "openrouter/chat_tools": ("tool_calls", ["divide"]),
    "ollama/v1_chat_plain": ("stop", []),
}


def target(fixture: dict[str, Any]) -> Target:
    return Target(fixture["provider"], "model")


def run_stream(body: bytes, step: int) -> tuple[Reply, list[Any]]:
    reply, events = shared_run_stream(ADAPTER, "x", body, step, "text/event-stream")
    return reply, list(events)


def recorded_usage(fixture: dict[str, Any]) -> dict[str, int] | None:
    """The usage object as recorded (last one in a stream), read independently of the adapter."""
    body = body_bytes(fixture).decode()
    if not fixture["stream"]:
        data = json.loads(body)
        return data.get("usage")
    usage = None
    for line in body.splitlines():
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            chunk = json.loads(line[5:])
            usage = chunk.get("usage") or usage
    return usage


@pytest.mark.parametrize("name", ALL)
def test_fixture_normalises(name: str) -> None:
    fixture = load(name)
    response = fixture["response"]
    body = body_bytes(fixture)
    if response["status"] >= 400:
        error = ADAPTER.error(response["status"], response["headers"], body, target(fixture))
        assert error.type == ERROR_TYPES[fixture["error_kind"]]
        assert error.status == response["status"]
        assert str(error)
        return
    if fixture.get("error_kind") == "provider_error_midstream":
        with pytest.raises(LLMSwitchError) as caught:
            run_stream(body, 7)
        assert "Token limit" in str(caught.value)
        return
    if fixture["stream"]:
        reply, events = run_stream(body, 7)
        streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert streamed == reply.text
        if reply.tool_calls:
            assert any(isinstance(e, ToolCallDelta) for e in events)
    else:
        reply = ADAPTER.parse(body, target(fixture))
    usage = recorded_usage(fixture)
    assert usage is not None
    assert reply.usage.input_tokens == usage["prompt_tokens"]
    assert reply.usage.output_tokens == usage["completion_tokens"]
    details = usage.get("completion_tokens_details") or {}
    assert reply.usage.reasoning_tokens == (details.get("reasoning_tokens") or 0)
    if name in EXPECTED:
        finish, tools = EXPECTED[name]
        assert reply.finish_reason == finish
        assert [c.name for c in reply.tool_calls] == tools
    for call in reply.tool_calls:
        assert isinstance(call.args(), dict)
    if reply.finish_reason in ("stop", "length") and not reply.refusal:
        assert reply.text


@pytest.mark.parametrize("step", [1, 3, 64, 100_000])
def test_stream_chunking_does_not_matter(step: int) -> None:
    body = body_bytes(load("openai/chat_tools_parallel_stream"))
    reply, _ = run_stream(body, step)
    assert [json.loads(c.arguments) for c in reply.tool_calls] == [
        {"password": "mellon"}, {"password": "radiance"}]
    assert reply.usage.input_tokens == 75


def test_cached_tokens_deepseek() -> None:
    reply = ADAPTER.parse(body_bytes(load("deepseek/chat_tools_final")), Target("deepseek", "m"))
    assert reply.usage.cached_input_tokens == 896
    assert reply.usage.input_tokens == 976


def test_refusal_is_reported() -> None:
    reply = ADAPTER.parse(body_bytes(load("openai/chat_refusal")), Target("openai", "m"))
    assert reply.refusal and "sorry" in reply.refusal
    assert reply.text == ""


def test_openrouter_padding_before_json() -> None:
    fixture = load("openrouter/chat_plain")
    assert body_bytes(fixture)[:1].isspace()
    assert ADAPTER.parse(body_bytes(fixture), target(fixture)).text == "Hello!"


def test_azure_first_chunk_without_choices() -> None:
    body = body_bytes(load("azure/chat_stream_include_usage"))
    assert b'"choices":[]' in body.split(b"\n\n")[0]
    reply, _ = run_stream(body, 50)
    assert reply.text == "Hello! How can I assist you today?"


def test_deepseek_usage_on_finish_chunk() -> None:
    reply, _ = run_stream(body_bytes(load("deepseek/chat_reasoner_stream")), 33)
    assert reply.usage.reasoning_tokens == 198
    assert reply.reasoning.startswith("Hmm")


def test_openrouter_error_inside_200_stream_keeps_usage() -> None:
    body = body_bytes(load("openrouter/chat_stream_error_midstream"))
    decoder = ADAPTER.decoder("text/event-stream")
    parser = ADAPTER.stream_parser(None, Target("openrouter", "m"))  # type: ignore[arg-type]
    with pytest.raises(LLMSwitchError) as caught:
        for frame in decoder.feed(body):
            parser.feed(frame)
    assert caught.value.type == "bad_request"
    assert parser.usage.input_tokens == 43  # billed even though the stream failed


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_stream_is_an_error(cut: float) -> None:
    body = body_bytes(load("openai/chat_stream_gpt35"))
    end = body.index(b'"finish_reason":"stop"')
    with pytest.raises(LLMSwitchError) as caught:
        run_stream(body[: int(end * cut)], 10)
    assert caught.value.type == "bad_response"


def test_streamed_body_to_a_plain_request_is_understood() -> None:
    body = body_bytes(load("openai/chat_stream_gpt35"))
    reply = ADAPTER.parse(body, Target("openai", "m"))
    assert reply.text == "1, 2, 3, 4, 5" and reply.usage.output_tokens == 13
