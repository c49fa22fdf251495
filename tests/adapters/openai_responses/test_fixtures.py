"""Replay every recorded Responses API interaction (OpenAI, Azure v1, DeepSeek) through the
adapter's pure functions: request shape, response and stream parsing, error types."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import pytest

from llmswitch.adapters.base import Reply, Target
from llmswitch.adapters.openai_responses import ResponsesAdapter
from llmswitch.errors import LLMSwitchError
from llmswitch.messages import Message, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings
from llmswitch.results import TextDelta, ToolCallDelta, UsageUpdate
from tests.support.fixtures import body_bytes, load, names

ALL = names("openai.responses", "azure.responses", "deepseek.responses")
ADAPTER = ResponsesAdapter()
ERROR_TYPES = {"auth": "authentication", "bad_request": "bad_request",
               "model_not_found": "model_not_found"}

# Read off the recordings by hand: text, finish reason, tool names, usage
# (input, output, cached, reasoning).
EXPECTED: dict[str, tuple[str, str, list[str], tuple[int, int, int, int]]] = {
    "openai/responses_json_schema": (
        '{"title":"THE NAME OF THE WIND","author":{"first_name":"Patrick","last_name":'
        '"Rothfuss"},"rating":7}', "stop", [], (166, 30, 0, 0)),
    "openai/responses_stream": ("4200 + 42 equals 4242.", "stop", [], (16, 11, 0, 0)),
    "openai/responses_tools_parallel": ("", "tool_calls", ["secret_retrieval_tool"] * 2,
                                        (36, 54, 0, 0)),
    "openai/responses_tools_stream": ("", "tool_calls", ["secret_retrieval_tool"] * 2,
                                      (36, 54, 0, 0)),
    "azure/responses_tools": ("2 + 2 = 4.", "stop", [], (4312, 28, 0, 0)),
    "deepseek/responses_function_tool": ("", "tool_calls", ["get_temperature"],
                                         (366, 63, 256, 18)),
    "deepseek/responses_stream": ("The capital of France is Paris.", "stop", [], (90, 15, 0, 7)),
    "deepseek/responses_structured": ("", "tool_calls", ["final_result"], (376, 81, 256, 21)),
}


def test_every_fixture_has_an_expectation() -> None:
    ok = [n for n in ALL if load(n)["response"]["status"] < 400]
    assert sorted(ok) == sorted(EXPECTED)
    assert len(ALL) == 12


# --- request side -------------------------------------------------------------------------

def request_from_recorded(body: Mapping[str, Any]) -> Request:
    """Rebuild the llmswitch request a user would write for a recorded body."""
    messages: list[Message] = []
    if body.get("instructions"):
        messages.append(Message.system(body["instructions"]))
    for item in body["input"]:
        kind = item.get("type")
        if kind == "function_call":
            call = ToolCall(item["call_id"], item["name"], item["arguments"])
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = Message.assistant(last.text, [*last.tool_calls, call])
            else:
                messages.append(Message.assistant("", [call]))
        elif kind == "function_call_output":
            messages.append(Message.tool(item["call_id"], item["output"]))
        elif item["role"] == "developer":
            messages.append(Message.system(item["content"]))
        elif item["role"] == "assistant":
            messages.append(Message.assistant(item["content"]))
        else:
            messages.append(Message.user(item["content"]))
    tools = tuple(
        ToolSpec(t["name"], t.get("description", ""), t["parameters"], t.get("strict", False))
        for t in body.get("tools", ()) if t["type"] == "function"
    )
    extra = {"tools": body["tools"]} if body.get("tools") and not tools else {}
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:  # the recorded invalid value
        extra["temperature"], temperature = temperature, None
    fmt = (body.get("text") or {}).get("format")
    settings = Settings(
        temperature=temperature,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        response_format=ResponseFormat("json_schema", fmt["schema"], fmt["name"], fmt["strict"])
        if fmt else ResponseFormat(),
        extra=extra,
    )
    return Request(tuple(messages), settings)


def normalise_recorded(body: Mapping[str, Any]) -> dict[str, Any]:
    """What differs between clients but not in meaning: a leading developer item is our
    `instructions`; empty instructions and `stream: false` are defaults; llmswitch has no
    schema `description`."""
    out = dict(body)
    items = list(out["input"])
    lead = []
    while items and items[0].get("role") == "developer":
        lead.append(items.pop(0)["content"])
    if lead:
        out["instructions"] = "\n\n".join(lead)
    out["input"] = items
    if out.get("instructions") == "":
        del out["instructions"]
    if out.get("stream") is False:
        del out["stream"]
    if "text" in out:
        out["text"] = {"format": {k: v for k, v in out["text"]["format"].items()
                                  if k != "description"}}
    return out


@pytest.mark.parametrize("name", ALL)
def test_request_matches_what_the_real_client_sent(name: str) -> None:
    fixture = load(name)
    recorded = fixture["request"]["body_json"]
    request = request_from_recorded(normalise_recorded(recorded))
    target = Target(fixture["provider"], recorded["model"], base_url=_base(fixture))
    call = ADAPTER.build(request, target, stream=bool(recorded.get("stream")))
    assert call.method == fixture["request"]["method"]
    assert _base(fixture) + call.path == fixture["request"]["url"]
    assert call.body == normalise_recorded(recorded)


def _base(fixture: dict[str, Any]) -> str:
    url: str = fixture["request"]["url"]
    return url.removesuffix("/responses")


def test_system_messages_become_instructions_and_images_input_parts() -> None:
    from llmswitch.messages import ImagePart, TextPart

    request = Request((
        Message.system("Be brief."),
        Message.system("Answer in French."),
        Message.user([TextPart("What is this?"), ImagePart(data=b"\x89PNG")]),
        Message.system("late note"),
    ), Settings(max_tokens=50, tools=(ToolSpec("lookup"),), tool_choice="lookup", seed=3,
                response_format=ResponseFormat("json")))
    body = ADAPTER.build(request, Target("openai", "gpt-5-pro"), stream=True).body
    assert body is not None
    assert body["instructions"] == "Be brief.\n\nAnswer in French."
    assert body["input"] == [
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw=="}]},
        {"role": "developer", "content": "late note"},
    ]
    assert body["max_output_tokens"] == 50
    assert body["tool_choice"] == {"type": "function", "name": "lookup"}
    assert body["text"] == {"format": {"type": "json_object"}}
    assert body["stream"] is True
    assert "seed" not in body and "max_tokens" not in body


def test_non_strict_tools_say_so_because_the_api_defaults_to_strict() -> None:
    request = Request((Message.user("hi"),), Settings(tools=(ToolSpec("f"),)))
    body = ADAPTER.build(request, Target("openai", "m"), stream=False).body
    assert body is not None and body["tools"][0]["strict"] is False


def test_stop_sequences_are_refused_before_the_call() -> None:
    from llmswitch.errors import UnsupportedError

    request = Request((Message.user("hi"),), Settings(stop=("\n",)))
    with pytest.raises(UnsupportedError, match="stop"):
        ADAPTER.build(request, Target("openai", "gpt-5-pro"), stream=False)


@pytest.mark.parametrize(("provider", "base", "path"), [
    ("openai", "https://api.openai.com/v1", "/responses"),
    ("azure", "https://r.openai.azure.com/openai/v1", "/responses"),
    ("azure", "https://r.openai.azure.com", "/openai/v1/responses"),
    ("deepseek", "https://api.deepseek.com", "/responses"),
    ("ollama", "http://localhost:11434", "/v1/responses"),
])
def test_paths(provider: str, base: str, path: str) -> None:
    call = ADAPTER.build(Request((Message.user("x"),)), Target(provider, "m", base_url=base),
                         stream=False)
    assert call.path == path


# --- response side ------------------------------------------------------------------------

def run_stream(body: bytes, cuts: list[int]) -> tuple[Reply, list[Any]]:
    decoder = ADAPTER.decoder("text/event-stream")
    parser = ADAPTER.stream_parser(Request((Message.user("x"),)), Target("x", "m"))
    events: list[Any] = []
    for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True):
        for frame in decoder.feed(body[start:end]):
            events.extend(parser.feed(frame))
    for frame in decoder.close():
        events.extend(parser.feed(frame))
    return parser.finish(), events


def random_cuts(size: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, 60))))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply_matches_recording(name: str) -> None:
    fixture = load(name)
    text, finish, tools, (inp, out, cached, reasoning) = EXPECTED[name]
    body = body_bytes(fixture)
    if fixture["stream"]:
        reply, events = run_stream(body, [])
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text
        assert any(isinstance(e, UsageUpdate) for e in events)
    else:
        reply = ADAPTER.parse(body, Target(fixture["provider"], "m"))
    assert reply.text == text
    assert reply.finish_reason == finish
    assert [c.name for c in reply.tool_calls] == tools
    for call in reply.tool_calls:
        assert call.id.startswith("call_") and isinstance(call.args(), dict)
    u = reply.usage
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == (
        inp, out, cached, reasoning)
    assert reply.response_model


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if load(n)["stream"]])
@pytest.mark.parametrize("seed", range(8))
def test_stream_split_anywhere_gives_the_same_reply(name: str, seed: int) -> None:
    body = body_bytes(load(name))
    whole, whole_events = run_stream(body, [])
    reply, events = run_stream(body, random_cuts(len(body), seed))
    assert reply == whole
    assert events == whole_events
    # tool-call deltas reassemble into the final calls
    pieces: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            pieces.setdefault(e.index, []).append(e.arguments)
    assert ["".join(p) for _, p in sorted(pieces.items())] == [c.arguments
                                                                for c in reply.tool_calls]


def test_deepseek_stream_keeps_reasoning_out_of_the_text() -> None:
    reply, _ = run_stream(body_bytes(load("deepseek/responses_stream")), [])
    assert reply.reasoning == "We need answer capital of France."
    assert "need" not in reply.text


@pytest.mark.parametrize("name", [n for n in ALL if load(n)["response"]["status"] >= 400])
def test_errors_map_to_the_tree(name: str) -> None:
    fixture = load(name)
    response = fixture["response"]
    error = ADAPTER.error(response["status"], response["headers"], body_bytes(fixture),
                          Target(fixture["provider"], "m"))
    assert isinstance(error, LLMSwitchError)
    assert error.type == ERROR_TYPES[fixture["error_kind"]]
    assert error.status == response["status"]
    assert json.loads(body_bytes(fixture))["error"]["message"] in error.message
