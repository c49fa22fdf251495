"""Ollama through `Switch` (mock transport) and through the CLI (a real loopback server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from llmswitch.errors import ModelNotFoundError, ResponseError
from llmswitch.models import collect
from llmswitch.results import StreamEnd, TextDelta
from tests.support.fixtures import body_bytes, load
from tests.support.replay import Scripted, serving


def mock_switch(name: str, seen: list[httpx.Request], env: dict[str, str] | None = None,
                config: dict[str, Any] | None = None, status: int | None = None,
                body: bytes | None = None) -> Switch:
    fixture = load(name)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status or fixture["response"]["status"],
                              headers=fixture["response"]["headers"],
                              content=body if body is not None else body_bytes(fixture))

    return Switch(config or {}, transports={"ollama": lambda: httpx.MockTransport(handler)},
                  env=env or {})


async def test_complete_with_tools_through_switch() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("ollama/doc_api_chat_tools_nonstream", seen)
    completion = await switch.complete(
        "ollama/llama3.2", "what is the weather in tokyo?",
        tools=[{"type": "function", "function": {
            "name": "get_weather", "description": "Get the weather in a given city",
            "parameters": {"type": "object", "properties": {"city": {
                "type": "string", "description": "The city to get the weather for"}},
                "required": ["city"]}}}])
    await switch.aclose()
    assert str(seen[0].url) == "http://localhost:11434/api/chat"
    assert "authorization" not in seen[0].headers
    assert json.loads(seen[0].content) == load("ollama/doc_api_chat_tools_nonstream")[
        "request"]["body_json"]
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls[0].id == "call_0"
    assert completion.tool_calls[0].args() == {"city": "Tokyo"}
    assert completion.cost_usd == 0.0  # a local model from the catalog, priced at zero


async def test_stream_through_switch_with_api_key_and_base_url() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("ollama/api_chat_default_stream", seen,
                         env={"OLLAMA_API_KEY": "k", "LLMSWITCH_OLLAMA_BASE_URL":
                              "https://ollama.com/api"})
    events = [e async for e in switch.stream("ollama/gemma3:1b", "Hello, how are you?",
                                             max_tokens=50, temperature=0)]
    await switch.aclose()
    assert str(seen[0].url) == "https://ollama.com/api/chat"
    assert seen[0].headers["authorization"] == "Bearer k"
    assert json.loads(seen[0].content)["options"] == {"num_predict": 50, "temperature": 0}
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.completion.finish_reason == "length"
    assert end.completion.usage.output_tokens == 50
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == end.completion.text


async def test_unknown_model_404() -> None:
    body = b'{"error":"model \\"nope\\" not found, try pulling it first"}'
    switch = mock_switch("ollama/doc_api_chat_tools_nonstream", [], status=404, body=body)
    with pytest.raises(ModelNotFoundError) as caught:
        await switch.complete("ollama/nope", "hi")
    await switch.aclose()
    assert "`ollama pull nope`" in str(caught.value)


async def test_stream_without_done_is_an_error_through_switch() -> None:
    body = body_bytes(load("ollama/api_chat_format_json"))
    cut = body[: body.rindex(b'{"model"')]
    switch = mock_switch("ollama/api_chat_format_json", [], body=cut)
    with pytest.raises(ResponseError, match="done"):
        await collect(switch.stream("ollama/gemma3:1b", "hi", response_format="json"))
    await switch.aclose()


async def test_v1_base_url_goes_through_the_openai_compatible_adapter() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("ollama/v1_chat_plain", seen,
                         env={"LLMSWITCH_OLLAMA_BASE_URL": "http://localhost:11434/v1"})
    completion = await switch.complete("ollama/gemma3:4b", "What is 4200 + 42?")
    await switch.aclose()
    assert seen[0].url.path == "/v1/chat/completions"
    assert completion.text == "4200 + 42 = 4242\n"


def run_cli(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", "chat", *args, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "LLMSWITCH_OLLAMA_BASE_URL": server_url},
    )


@pytest.mark.parametrize(("name", "stream"), [
    ("ollama/api_chat_think", True),
    ("ollama/doc_api_chat_tools_stream", True),
    ("ollama/doc_api_chat_structured_output", False),
])
def test_cli_against_a_loopback_server(name: str, stream: bool) -> None:
    fixture = load(name)
    model = fixture["request"]["body_json"]["model"]
    with serving(Scripted.from_fixture(fixture, chunk_size=23)) as server:
        proc = run_cli(server.url, f"ollama/{model}", "Hi there",
                       *(["--stream"] if stream else []))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    received = server.received[0]
    assert received.path == "/api/chat"
    sent = json.loads(received.body)
    assert sent["stream"] is stream and sent["model"] == model
    assert sent["messages"] == [{"role": "user", "content": "Hi there"}]
    assert data["provider"] == "ollama" and data["model"] == model
    assert data["usage"]["input_tokens"] > 0 and data["usage"]["output_tokens"] > 0
    if "tools" in name:
        assert data["finish_reason"] == "tool_calls"
        assert data["tool_calls"] == [{"id": "call_0", "name": "get_weather",
                                       "arguments": '{"city": "Tokyo"}'}]
    else:
        assert data["finish_reason"] == "stop" and data["text"]


def test_cli_error_line_mid_stream() -> None:
    fixture = load("ollama/doc_api_generate_error_midstream")
    with serving(Scripted.from_fixture(fixture, chunk_size=50)) as server:
        proc = run_cli(server.url, "ollama/gemma3:1b", "hi", "--stream")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "overloaded" and error["provider"] == "ollama"
    assert "an error was encountered while running the model" in error["message"]
