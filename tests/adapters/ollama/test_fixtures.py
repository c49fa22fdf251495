"""Replay every recorded (and documented) native Ollama interaction: the request we build against
what the real client sent, and the response or NDJSON stream (split anywhere) normalised.
The `/v1` fixtures go through the Chat Completions adapter (tests/adapters/openai_chat) and, via
the switch, in test_end_to_end.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.adapters.base import Reply, Target
from llmswitch.errors import LLMSwitchError
from llmswitch.results import TextDelta, ToolCallDelta, UsageUpdate
from tests.adapters.ollama.helpers import ADAPTER, normalised, request_from_ollama, run_stream
from tests.support.fixtures import body_bytes, load, names

NATIVE = names("ollama.api_chat", "ollama.api_generate")
CHAT = names("ollama.api_chat")

# Hand-checked against the recordings: finish reason, tool names, start of the text.
EXPECTED: dict[str, tuple[str, list[str], str]] = {
    "ollama/api_chat_default_stream": ("length", [], "Hello there! I’m doing well"),
    "ollama/api_chat_format_json": ("stop", [], '{"answer": "600"}'),
    "ollama/api_chat_think": ("stop", [], "Okay, let's break down 2 + 2"),
    "ollama/api_generate_nonstream": ("stop", [], '```\n{\n  "name": "Alice Llama"'),
    "ollama/doc_api_chat_structured_output": ("stop", [], '{"age": 22, "available": false}'),
    "ollama/doc_api_chat_tools_nonstream": ("tool_calls", ["get_weather"], ""),
    "ollama/doc_api_chat_tools_stream": ("tool_calls", ["get_weather"], ""),
}


def test_every_native_fixture_is_covered() -> None:
    assert sorted([*EXPECTED, "ollama/doc_api_generate_error_midstream"]) == NATIVE


@pytest.mark.parametrize("name", CHAT)
def test_request_matches_recording(name: str) -> None:
    recorded = load(name)["request"]
    body = recorded["body_json"]
    stream = body.get("stream", True)
    call = ADAPTER.build(request_from_ollama(body), Target("ollama", body["model"]), stream)
    assert call.method == "POST" and call.path == recorded["path"] == "/api/chat"
    assert call.body is not None
    assert normalised(dict(call.body)) == normalised(body)


def recorded_counts(fixture: dict[str, Any]) -> tuple[int, int]:
    """`prompt_eval_count` and `eval_count` of the final object, read without the adapter."""
    body = body_bytes(fixture)
    lines = ([json.loads(line) for line in body.splitlines() if line.strip()]
             if fixture["stream"] else [json.loads(body)])
    final = [obj for obj in lines if obj.get("done")][-1]
    return final["prompt_eval_count"], final["eval_count"]


def replay(name: str, step: int) -> tuple[Reply, list[Any]]:
    fixture = load(name)
    body = body_bytes(fixture)
    if fixture["stream"]:
        return run_stream(body, step, fixture["response"]["headers"]["content-type"])
    return ADAPTER.parse(body, Target("ollama", "m")), []


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("step", [1, 7, 100, 1_000_000])
def test_fixture_normalises(name: str, step: int) -> None:
    fixture = load(name)
    reply, events = replay(name, step)
    finish, tools, text = EXPECTED[name]
    assert reply.finish_reason == finish
    assert [c.name for c in reply.tool_calls] == tools
    assert reply.text.startswith(text)
    assert [c.id for c in reply.tool_calls] == [f"call_{i}" for i in range(len(tools))]
    for call in reply.tool_calls:
        assert call.args() == {"city": "Tokyo"}
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == recorded_counts(fixture)
    if fixture["stream"]:
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == reply.text
        updates = [e for e in events if isinstance(e, UsageUpdate)]
        assert len(updates) == 1 and updates[0].usage == reply.usage  # only the final line
        deltas = [e for e in events if isinstance(e, ToolCallDelta)]
        assert [(d.id, d.name) for d in deltas] == [(c.id, c.name) for c in reply.tool_calls]


@pytest.mark.parametrize("step", [1, 13, 1_000_000])
def test_error_line_mid_stream(step: int) -> None:
    body = body_bytes(load("ollama/doc_api_generate_error_midstream"))
    with pytest.raises(LLMSwitchError) as caught:
        run_stream(body, step)
    assert caught.value.type == "overloaded" and caught.value.retryable
    assert "an error was encountered while running the model" in str(caught.value)


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if load(n)["stream"]])
def test_truncated_recorded_stream_is_an_error(name: str) -> None:
    body = body_bytes(load(name))
    last = body.rstrip(b"\n").rfind(b"\n") + 1  # start of the done line
    for cut in (last, last + 10, len(body) // 2):
        with pytest.raises(LLMSwitchError) as caught:
            run_stream(body[:cut], 9)
        assert caught.value.type == "bad_response"


def test_generate_response_field_is_read() -> None:
    reply, _ = replay("ollama/api_generate_nonstream", 0)
    assert json.loads(reply.text.strip("`\n")) == {"name": "Alice Llama", "age": 30}
