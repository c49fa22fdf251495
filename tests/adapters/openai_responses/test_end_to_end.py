"""The Responses adapter behind `Switch` (mock transport) and the CLI (real loopback socket)."""

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


def mock_switch(name: str, seen: list[httpx.Request], config: dict[str, Any] | None = None,
                cut: bytes | None = None) -> Switch:
    fixture = load(name)
    body = body_bytes(fixture)
    if cut is not None:
        body = body[: body.index(cut)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(fixture["response"]["status"],
                              headers=fixture["response"]["headers"], content=body)

    provider = fixture["provider"]
    return Switch(config or {}, transports={provider: lambda: httpx.MockTransport(handler)},
                  env={"OPENAI_API_KEY": "x", "DEEPSEEK_API_KEY": "x"})


async def test_catalog_responses_model_goes_to_responses() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("openai/responses_json_schema", seen)
    answer = await switch.complete("openai/gpt-5-pro", "Recommend a book",
                                   response_format={"type": "object", "properties": {}})
    assert str(seen[0].url) == "https://api.openai.com/v1/responses"
    assert seen[0].headers["authorization"] == "Bearer x"
    sent = json.loads(seen[0].content)
    assert sent["model"] == "gpt-5-pro" and sent["text"]["format"]["type"] == "json_schema"
    assert json.loads(answer.text)["rating"] == 7
    assert answer.usage.input_tokens == 166 and answer.cost_usd is not None
    await switch.aclose()


async def test_stream_through_switch() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("openai/responses_stream", seen)
    events = [e async for e in switch.stream("openai/o3-pro", "What is 4200 + 42?")]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "4200 + 42 equals 4242."
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.completion.finish_reason == "stop"
    assert json.loads(seen[0].content)["stream"] is True
    await switch.aclose()


async def test_provider_option_api_responses() -> None:
    seen: list[httpx.Request] = []
    config = {"providers": {"deepseek": {"api": "responses"}}}
    switch = mock_switch("deepseek/responses_function_tool", seen, config)
    answer = await switch.complete("deepseek/deepseek-v4-pro", "Temperature in Tokyo?",
                                   tools=[{"name": "get_temperature",
                                           "parameters": {"type": "object"}}])
    assert str(seen[0].url) == "https://api.deepseek.com/responses"
    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls[0].args() == {"city": "Tokyo"}
    assert answer.usage.cached_input_tokens == 256 and answer.usage.reasoning_tokens == 18
    await switch.aclose()


async def test_unknown_model_400_is_model_not_found() -> None:
    switch = mock_switch("openai/responses_err_400_model_not_found", [])
    with pytest.raises(ModelNotFoundError) as info:
        await switch.complete("openai/gpt-5-pro", "x")
    assert info.value.status == 400 and info.value.trace is not None
    await switch.aclose()


async def test_cut_stream_is_an_error() -> None:
    switch = mock_switch("openai/responses_stream", [], cut=b"event: response.completed")
    with pytest.raises(ResponseError):
        await collect(switch.stream("openai/gpt-5-pro", "x"))
    await switch.aclose()


@pytest.mark.parametrize("stream", [True, False])
def test_cli_chat_json(stream: bool) -> None:
    name = "openai/responses_stream" if stream else "openai/responses_json_schema"
    with serving(Scripted.from_fixture(load(name), chunk_size=37)) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "llmswitch.cli.main", "chat", "openai/gpt-5-pro", "hi",
             "--json", *(["--stream"] if stream else [])],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1",
                 "OPENAI_API_KEY": "x"},
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert server.received[0].path == "/v1/responses"
    assert json.loads(server.received[0].body).get("stream", False) is stream
    assert data["provider"] == "openai" and data["model"] == "gpt-5-pro"
    assert data["finish_reason"] == "stop"
    assert data["text"] == ("4200 + 42 equals 4242." if stream else
                            json.loads(body_bytes(load(name)))["output"][0]["content"][0]["text"])
    assert data["usage"]["input_tokens"] > 0 and data["cost_usd"] > 0
