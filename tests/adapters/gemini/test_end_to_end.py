"""Gemini through the whole stack: `Switch` → `HttpModel` → adapter, over `httpx.MockTransport`
and over a real loopback server, and the `llmswitch chat` CLI against a server replaying
recorded traffic (the way held-out recordings are checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from llmswitch.errors import AuthenticationError, ModelNotFoundError
from llmswitch.models import collect
from llmswitch.results import TextDelta, ToolCallDelta
from tests.support.fixtures import body_bytes, load
from tests.support.replay import Scripted, serving

KEY = "AIza-test-KEY"
ENV = {"GEMINI_API_KEY": KEY}


def replaying(name: str, seen: list[httpx.Request]) -> Callable[[], httpx.MockTransport]:
    fixture = load(name)
    response = fixture["response"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(response["status"], headers=response["headers"],
                              content=body_bytes(fixture))

    return lambda: httpx.MockTransport(handler)


def switch_replaying(name: str, seen: list[httpx.Request]) -> Switch:
    return Switch({}, transports={"gemini": replaying(name, seen)}, env=ENV)


async def test_plain_completion_through_switch() -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying("gemini/generate_plain_instructions", seen) as switch:
        done = await switch.complete("gemini/gemini-2.0-flash", "What is the capital of France?",
                                     system="You are a helpful assistant.")
    sent = seen[0]
    assert str(sent.url) == ("https://generativelanguage.googleapis.com/v1beta/models/"
                             "gemini-2.0-flash:generateContent")
    assert sent.headers["x-goog-api-key"] == KEY
    assert "authorization" not in sent.headers and "key=" not in str(sent.url)
    body = json.loads(sent.content)
    assert body["systemInstruction"] == {"parts": [{"text": "You are a helpful assistant."}]}
    assert done.text == "The capital of France is Paris.\n"
    assert done.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (13, 8)
    assert done.cost_usd is not None and done.cost_usd > 0


async def test_stream_through_switch() -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying("gemini/stream_sse", seen) as switch:
        events = [e async for e in switch.stream("gemini/gemini-2.5-flash", "What is 4200 + 42?")]
    assert seen[0].url.params["alt"] == "sse"
    assert seen[0].url.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    done = events[-1].completion  # type: ignore[union-attr]
    assert text == done.text and text.endswith("00 + 42 = **4242**.")
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.reasoning_tokens) == (
        13, 138, 75)


async def test_tool_calls_stream_through_switch() -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying("gemini/tools_stream", seen) as switch:
        events = [e async for e in switch.stream(
            "gemini/gemini-2.5-flash", "mellon,radiance",
            tools=[{"name": "secret_retrieval_tool", "parameters": {"type": "object"}}])]
    assert [e.name for e in events if isinstance(e, ToolCallDelta)] == [
        "secret_retrieval_tool"] * 2
    done = events[-1].completion  # type: ignore[union-attr]
    assert done.finish_reason == "tool_calls"
    assert [c.args() for c in done.tool_calls] == [{"password": "mellon"},
                                                   {"password": "radiance"}]


@pytest.mark.parametrize(("name", "error"), [
    ("gemini/err_400_api_key_invalid_stream", AuthenticationError),
    ("gemini/err_404_model_stream", ModelNotFoundError),
])
async def test_errors_under_an_sse_content_type(name: str, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying(name, seen) as switch:
        with pytest.raises(error) as caught:
            await collect(switch.stream("gemini/gemini-2.5-flash", "x"))
    assert caught.value.provider == "gemini"  # type: ignore[attr-defined]


async def test_json_array_stream_over_a_real_socket() -> None:
    """A server that answers the JSON-array form (no alt=sse) is understood too."""
    fixture = load("gemini/stream_json_array")
    with serving(Scripted.from_fixture(fixture, chunk_size=13)) as server:
        switch = Switch({"providers": {"gemini": {"base_url": server.url}}}, env=ENV)
        async with switch:
            done = await collect(switch.stream("gemini/gemini-2.5-flash", "name a pelican"))
    assert server.received[0].headers["x-goog-api-key"] == KEY
    assert done.text == "Scoop"
    assert (done.usage.output_tokens, done.usage.reasoning_tokens) == (293, 291)


# --- the CLI, as the held-out recordings are replayed -------------------------------------

def run_cli(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GEMINI_", "GOOGLE_API", "LLMSWITCH_GEMINI"))}
    env.update({"LLMSWITCH_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "test"})
    script = Path(sys.executable).with_name("llmswitch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "llmswitch.cli.main"]
    proc = subprocess.run([*command, "chat", *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize(("name", "stream"), [
    ("gemini/max_tokens", False),
    ("gemini/json_schema_stream", True),
    ("gemini/err_400_api_key_invalid_stream", True),
])
def test_cli_chat_against_a_replaying_server(name: str, stream: bool) -> None:
    fixture = load(name)
    model = fixture["request"]["path"].split("/models/")[1].split(":")[0]
    with serving(Scripted.from_fixture(fixture, chunk_size=50)) as server:
        code, out = run_cli(server.url, f"gemini/{model}", "Hello",
                            *(["--stream"] if stream else []))
    got = server.received[0]
    assert got.headers["x-goog-api-key"] == "test"
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    assert got.path == f"/v1beta/models/{model}:{method}"
    if fixture["response"]["status"] >= 400:
        assert code == 1
        assert out["error"]["type"] == "authentication"
        assert out["error"]["status"] == 400
        return
    assert code == 0
    expected = {"gemini/max_tokens": ("length", 9, 48, 38, "Here is a list of all 50 U"),
                "gemini/json_schema_stream": ("stop", 11, 293, 264, '{"title":"THE NAME')}[name]
    assert out["finish_reason"] == expected[0]
    usage = out["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["reasoning_tokens"]) == (
        expected[1:4])
    assert out["text"].startswith(expected[4])
    assert out["provider"] == "gemini" and out["model"] == model
