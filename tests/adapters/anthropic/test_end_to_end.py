"""Anthropic through the whole stack: `Switch` → `HttpModel` → adapter, over `httpx.MockTransport`
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
from llmswitch.results import TextDelta, UsageUpdate
from tests.support.fixtures import body_bytes, load
from tests.support.replay import Scripted, serving

KEY = "sk-ant-test-KEY"
ENV = {"ANTHROPIC_API_KEY": KEY}


def replaying(name: str, seen: list[httpx.Request]) -> Callable[[], httpx.MockTransport]:
    fixture = load(name)
    response = fixture["response"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(response["status"], headers=response["headers"],
                              content=body_bytes(fixture))

    return lambda: httpx.MockTransport(handler)


def switch_replaying(name: str, seen: list[httpx.Request]) -> Switch:
    return Switch({}, transports={"anthropic": replaying(name, seen)}, env=ENV)


async def test_plain_completion_through_switch() -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying("anthropic/messages_max_tokens", seen) as switch:
        done = await switch.complete("anthropic/claude-sonnet-4-20250514",
                                     "List all U.S. states.", max_tokens=50,
                                     system="Be complete.")
    sent = seen[0]
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    body = json.loads(sent.content)
    assert body["system"] == "Be complete."
    assert body["max_tokens"] == 50
    assert done.finish_reason == "length"
    assert done.text.startswith("Here are all 50 U.S. states")
    assert (done.usage.input_tokens, done.usage.output_tokens) == (15, 50)
    assert done.cost_usd == pytest.approx((15 * 3.0 + 50 * 15.0) / 1e6)
    assert done.trace is not None
    assert done.trace.attributes["gen_ai.response.finish_reasons"] == ["length"]


async def test_stream_through_switch() -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying("anthropic/messages_stream", seen) as switch:
        events = [e async for e in switch.stream("anthropic/claude-sonnet-4-20250514",
                                                 "What is 4200 + 42?")]
    assert json.loads(seen[0].content)["stream"] is True
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "4200 + 42 = 4242"
    assert any(isinstance(e, UsageUpdate) for e in events)
    done = events[-1].completion  # type: ignore[union-attr]
    assert done.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (17, 15)


async def test_tool_calls_through_switch() -> None:
    seen: list[httpx.Request] = []
    tool = {"name": "secret_retrieval_tool", "description": "Get a secret",
            "parameters": {"type": "object", "properties": {"password": {"type": "string"}}}}
    async with switch_replaying("anthropic/messages_tools_parallel", seen) as switch:
        done = await switch.complete("anthropic/claude-sonnet-4-20250514", "mellon,radiance",
                                     tools=[tool])
    assert json.loads(seen[0].content)["tools"][0]["input_schema"]["properties"]
    assert done.finish_reason == "tool_calls"
    assert [c.args() for c in done.tool_calls] == [{"password": "mellon"},
                                                   {"password": "radiance"}]


@pytest.mark.parametrize(("name", "error"), [
    ("anthropic/messages_err_401_stream_request", AuthenticationError),
    ("anthropic/messages_err_404_model", ModelNotFoundError),
])
async def test_errors_through_switch(name: str, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []
    async with switch_replaying(name, seen) as switch:
        with pytest.raises(error) as caught:
            await collect(switch.stream("anthropic/claude-sonnet-4-20250514", "x"))
    assert caught.value.provider == "anthropic"  # type: ignore[attr-defined]
    assert caught.value.trace is not None  # type: ignore[attr-defined]


async def test_stream_over_a_real_socket_in_small_chunks() -> None:
    fixture = load("anthropic/messages_tools_stream_haiku45")
    with serving(Scripted.from_fixture(fixture, chunk_size=11)) as server:
        switch = Switch({"providers": {"anthropic": {"base_url": server.url}}}, env=ENV)
        async with switch:
            done = await collect(switch.stream("anthropic/claude-haiku-4-5", "name a pelican"))
    assert server.received[0].path == "/v1/messages"
    assert server.received[0].headers["x-api-key"] == KEY
    assert done.finish_reason == "tool_calls"
    assert [(c.name, c.args()) for c in done.tool_calls] == [("pelican_name_generator", {})]
    assert done.usage.input_tokens == 543


# --- the CLI, as the held-out recordings are replayed -------------------------------------

def run_cli(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "LLMSWITCH_ANTHROPIC"))}
    env.update({"LLMSWITCH_ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test"})
    script = Path(sys.executable).with_name("llmswitch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "llmswitch.cli.main"]
    proc = subprocess.run([*command, "chat", *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize(("name", "stream"), [
    ("anthropic/messages_plain_raw", False),
    ("anthropic/messages_thinking_stream", True),
    ("anthropic/messages_err_404_model", False),
])
def test_cli_chat_against_a_replaying_server(name: str, stream: bool) -> None:
    fixture = load(name)
    model = fixture["request"]["body_json"]["model"]
    with serving(Scripted.from_fixture(fixture, chunk_size=50)) as server:
        code, out = run_cli(server.url, f"anthropic/{model}", "Hello",
                            *(["--stream"] if stream else []))
    sent = json.loads(server.received[0].body)
    assert server.received[0].headers["x-api-key"] == "test"
    assert sent["model"] == model and sent["max_tokens"] > 0
    if fixture["response"]["status"] >= 400:
        assert code == 1
        assert out["error"]["type"] == "model_not_found"
        assert out["error"]["status"] == 404
        return
    assert code == 0
    assert sent.get("stream", False) is stream
    expected = {"anthropic/messages_plain_raw": ("stop", 13, 35, "Hello! As an AI"),
                "anthropic/messages_thinking_stream": ("stop", 46, 133, "1. **Pouch**")}[name]
    assert out["finish_reason"] == expected[0]
    assert (out["usage"]["input_tokens"], out["usage"]["output_tokens"]) == expected[1:3]
    assert out["text"].startswith(expected[3])
    assert out["provider"] == "anthropic" and out["model"] == model
