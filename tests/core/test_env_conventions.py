"""Environment variables users already have for the official SDKs (issue 15 item 5).

Base URLs: `LLMSWITCH_<NAME>_BASE_URL` > the config's `base_url` > the SDK's variable
(`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, `OLLAMA_HOST`, `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`)
> the default. Gemini keys as google-genai reads them: `GOOGLE_API_KEY` wins over
`GEMINI_API_KEY`, with a warning. tests/conftest.py clears these variables, so every test
passes its environment to the Switch explicitly.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from tests.support.fixtures import body_bytes, load

MODELS = {
    "openai": ("openai/gpt-4o-mini", "openai/chat_plain_gpt4o"),
    "anthropic": ("anthropic/claude-haiku-4-5", "anthropic/messages_plain_raw"),
    "ollama": ("ollama/llama3.2", "ollama/api_generate_nonstream"),
}


def recorder(fixture: str, seen: list[httpx.Request]) -> Any:
    body = body_bytes(load(fixture))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return lambda: httpx.MockTransport(handler)


async def sent_url(provider: str, env: dict[str, str], config: dict[str, Any] | None = None,
                   fixture: str | None = None) -> str:
    model, default_fixture = MODELS.get(provider, (f"{provider}/m", "openai/chat_plain_gpt4o"))
    seen: list[httpx.Request] = []
    async with Switch(config or {}, env=env,
                      transports={provider: recorder(fixture or default_fixture, seen)}) as sw:
        # The URL is what these tests check, not the answer's shape.
        with contextlib.suppress(Exception):
            await sw.complete(model, "hi")
    assert seen, "no request was sent"
    return str(seen[0].url)


@pytest.mark.parametrize(("provider", "var", "value", "expected"), [
    ("openai", "OPENAI_BASE_URL", "https://proxy.example/v1",
     "https://proxy.example/v1/chat/completions"),
    ("anthropic", "ANTHROPIC_BASE_URL", "https://claude-proxy.example",
     "https://claude-proxy.example/v1/messages"),
    ("ollama", "OLLAMA_HOST", "gpu-box", "http://gpu-box:11434/api/chat"),
    ("ollama", "OLLAMA_HOST", "gpu-box:8080", "http://gpu-box:8080/api/chat"),
    ("ollama", "OLLAMA_HOST", "https://ollama.example", "https://ollama.example/api/chat"),
    ("ollama", "OLLAMA_HOST", "0.0.0.0", "http://0.0.0.0:11434/api/chat"),
])
async def test_sdk_base_url_variable_is_honoured(provider: str, var: str, value: str,
                                                 expected: str) -> None:
    env = {var: value, "OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    assert await sent_url(provider, env) == expected


@pytest.mark.parametrize("provider", ["openai", "anthropic", "ollama"])
async def test_config_and_llmswitch_variable_win_over_the_sdk_variable(provider: str) -> None:
    sdk_var = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL",
               "ollama": "OLLAMA_HOST"}[provider]
    env = {sdk_var: "http://sdk.example:1", "OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    config = {"providers": {provider: {"base_url": "http://config.example:2"}}}
    assert (await sent_url(provider, env, config)).startswith("http://config.example:2/")
    env[f"LLMSWITCH_{provider.upper()}_BASE_URL"] = "http://override.example:3"
    assert (await sent_url(provider, env, config)).startswith("http://override.example:3/")


async def test_openai_base_url_is_only_for_the_openai_provider() -> None:
    env = {"OPENAI_BASE_URL": "http://sdk.example:1/v1", "DEEPSEEK_API_KEY": "k"}
    url = await sent_url("deepseek", env)
    assert url.startswith("https://api.deepseek.com/"), url


def test_bedrock_endpoint_variables() -> None:
    from llmswitch.providers.bedrock import BedrockProvider

    def url(env: dict[str, str], config: dict[str, Any] | None = None) -> str:
        from llmswitch.config.schema import ProviderConfig

        return BedrockProvider("bedrock", ProviderConfig(**(config or {})), env).base_url

    assert url({}) == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert url({"AWS_ENDPOINT_URL": "http://localstack:4566"}) == "http://localstack:4566"
    specific = {"AWS_ENDPOINT_URL": "http://localstack:4566",
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "https://vpce-1.example"}
    assert url(specific) == "https://vpce-1.example"
    assert url({**specific, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}).startswith(
        "https://bedrock-runtime.")
    assert url(specific, {"base_url": "https://config.example"}) == "https://config.example"
    assert url({**specific, "LLMSWITCH_BEDROCK_BASE_URL": "http://o.example"},
               {"base_url": "https://config.example"}) == "http://o.example"


async def test_bedrock_sends_to_aws_endpoint_url_bedrock_runtime() -> None:
    pytest.importorskip("botocore", reason="botocore not installed (extra bedrock)")
    env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:9/bedrock",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-example-key"}
    url = await sent_url("bedrock", env, fixture="bedrock/converse_plain_claude")
    assert url.startswith("http://127.0.0.1:9/bedrock/model/")


async def gemini_key(env: dict[str, str]) -> str:
    seen: list[httpx.Request] = []
    transport = recorder("gemini/generate_plain_instructions", seen)
    async with Switch({}, env=env, transports={"gemini": transport}) as switch:
        await switch.complete("gemini/gemini-2.5-flash", "hi")
    return seen[0].headers["x-goog-api-key"]


async def test_gemini_google_api_key_wins_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="GOOGLE_API_KEY.*GEMINI_API_KEY"):
        key = await gemini_key({"GEMINI_API_KEY": "gemini-key", "GOOGLE_API_KEY": "google-key"})
    assert key == "google-key"


async def test_gemini_either_key_alone_is_used_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert await gemini_key({"GEMINI_API_KEY": "gemini-key"}) == "gemini-key"
        assert await gemini_key({"GOOGLE_API_KEY": "google-key"}) == "google-key"
