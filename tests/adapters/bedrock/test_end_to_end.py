"""Bedrock through `Switch` (mock transport) and through the CLI (a real loopback server):
SigV4 signing, API keys, the credential chain, region and endpoint, errors and streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from llmswitch.errors import AuthenticationError, ConfigError, ModelNotFoundError
from llmswitch.models import collect
from llmswitch.results import StreamEnd, TextDelta, ToolCallDelta
from tests.support.fixtures import body_bytes, load
from tests.support.replay import Scripted, serving

CREDS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
         "AWS_SESSION_TOKEN": "session-token"}
MODEL = "bedrock/us.amazon.nova-micro-v1:0"


def mock_switch(name: str, seen: list[httpx.Request], env: dict[str, str],
                config: dict[str, Any] | None = None) -> Switch:
    fixture = load(name)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(fixture["response"]["status"],
                              headers=fixture["response"]["headers"], content=body_bytes(fixture))

    return Switch(config or {}, transports={"bedrock": lambda: httpx.MockTransport(handler)},
                  env=env)


def verify_sigv4(request: httpx.Request, secret: str) -> dict[str, str]:
    """Recompute the signature with botocore from what the server received; return its parts."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    scheme, _, rest = request.headers["authorization"].partition(" ")
    assert scheme == "AWS4-HMAC-SHA256"
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    key_id, date, region, service, _ = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    assert {"host", "x-amz-date"} <= set(signed)
    aws = AWSRequest(method=request.method, url=str(request.url), data=request.content,
                     headers={h: request.headers[h] for h in signed})
    aws.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(Credentials(key_id, secret), service, region)
    expected = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
    assert parts["Signature"] == expected
    return {"key_id": key_id, "date": date, "region": region, "service": service}


async def test_switch_signs_with_sigv4() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("bedrock/converse_plain_nova", seen, {**CREDS, "AWS_REGION": "us-west-2"})
    completion = await switch.complete(MODEL, "Hello!", system="You are a chatbot.")
    await switch.aclose()
    assert completion.text.startswith("Hello! How can I assist you today?")
    assert completion.usage.input_tokens == 7 and completion.finish_reason == "stop"
    request = seen[0]
    assert str(request.url) == ("https://bedrock-runtime.us-west-2.amazonaws.com"
                                "/model/us.amazon.nova-micro-v1%3A0/converse")
    parts = verify_sigv4(request, CREDS["AWS_SECRET_ACCESS_KEY"])
    assert parts == {"key_id": "AKIDEXAMPLE", "date": parts["date"], "region": "us-west-2",
                     "service": "bedrock"}
    assert request.headers["x-amz-security-token"] == "session-token"
    assert json.loads(request.content) == load("bedrock/converse_plain_nova")["request"][
        "body_json"]


async def test_stream_through_switch() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("bedrock/converse_stream_tool_use", seen, CREDS,
                         {"providers": {"bedrock": {"region": "eu-west-1"}}})
    events = [e async for e in switch.stream(MODEL, "temperature?")]
    await switch.aclose()
    assert seen[0].url.host == "bedrock-runtime.eu-west-1.amazonaws.com"
    assert seen[0].url.path.endswith("/converse-stream")
    assert verify_sigv4(seen[0], "secret")["region"] == "eu-west-1"
    assert any(isinstance(e, TextDelta) for e in events)
    assert any(isinstance(e, ToolCallDelta) and e.name == "get_temperature" for e in events)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.completion.finish_reason == "tool_calls"
    assert end.completion.usage.output_tokens == 91


async def test_bedrock_api_key_is_a_bearer_token() -> None:
    seen: list[httpx.Request] = []
    switch = mock_switch("bedrock/converse_plain_nova", seen,
                         {"AWS_BEARER_TOKEN_BEDROCK": "bedrock-key", **CREDS})
    await switch.complete(MODEL, "Hello!")
    await switch.aclose()
    assert seen[0].headers["authorization"] == "Bearer bedrock-key"
    assert "x-amz-date" not in seen[0].headers


@pytest.fixture
def no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """botocore sees no shared files and never asks the instance metadata service."""
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


async def test_missing_credentials_name_the_variables(no_aws_files: Path) -> None:
    switch = mock_switch("bedrock/converse_plain_nova", [], {})
    with pytest.raises(AuthenticationError) as caught:
        await switch.complete(MODEL, "Hello!")
    await switch.aclose()
    assert "AWS_ACCESS_KEY_ID" in str(caught.value)
    assert "AWS_BEARER_TOKEN_BEDROCK" in str(caught.value)


async def test_profile_from_the_shared_credentials_file(no_aws_files: Path) -> None:
    (no_aws_files / "credentials").write_text(
        "[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n")
    seen: list[httpx.Request] = []
    switch = mock_switch("bedrock/converse_plain_nova", seen, {},
                         {"providers": {"bedrock": {"profile": "dev"}}})
    await switch.complete(MODEL, "Hello!")
    await switch.aclose()
    assert verify_sigv4(seen[0], "profile-secret")["key_id"] == "AKIDPROFILE"
    assert "x-amz-security-token" not in seen[0].headers


async def test_unknown_profile_is_a_config_error(no_aws_files: Path) -> None:
    switch = mock_switch("bedrock/converse_plain_nova", [], {},
                         {"providers": {"bedrock": {"profile": "nope"}}})
    with pytest.raises(ConfigError, match="nope"):
        await switch.complete(MODEL, "Hello!")
    await switch.aclose()


async def test_missing_botocore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.credentials", None)
    switch = mock_switch("bedrock/converse_plain_nova", [], CREDS)
    with pytest.raises(ConfigError) as caught:
        await switch.complete(MODEL, "Hello!")
    await switch.aclose()
    assert "llmswitch[bedrock]" in str(caught.value)


async def test_invalid_model_is_model_not_found() -> None:
    switch = mock_switch("bedrock/err_400_invalid_model_stream", [], CREDS)
    with pytest.raises(ModelNotFoundError):
        await collect(switch.stream("bedrock/us.does-not-exist-model-v1:0", "hello"))
    await switch.aclose()


def run_cli(server_url: str, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", "chat", *args, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "LLMSWITCH_BEDROCK_BASE_URL": server_url, **(env or {})},
    )


@pytest.mark.parametrize(("name", "stream"), [
    ("bedrock/converse_plain_claude", False),
    ("bedrock/converse_stream_reasoning", True),
    ("bedrock/converse_stream_tool_use", True),
])
def test_cli_against_a_loopback_server(name: str, stream: bool) -> None:
    fixture = load(name)
    model = fixture["request"]["path"].split("/")[2]
    with serving(Scripted.from_fixture(fixture, chunk_size=29)) as server:
        proc = run_cli(server.url, f"bedrock/{model}", "Say hello",
                       *(["--stream"] if stream else []))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    received = server.received[0]
    assert received.path.endswith("/converse-stream" if stream else "/converse")
    assert received.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert json.loads(received.body)["messages"] == [
        {"role": "user", "content": [{"text": "Say hello"}]}]
    assert data["provider"] == "bedrock" and data["model"] == model
    assert data["usage"]["input_tokens"] > 0 and data["usage"]["output_tokens"] > 0
    if name.endswith("tool_use"):
        assert data["finish_reason"] == "tool_calls"
        assert data["tool_calls"][0]["name"] == "get_temperature"
    else:
        assert data["finish_reason"] == "stop" and data["text"].startswith("Hello!")


def test_cli_reports_a_stream_cut_mid_frame() -> None:
    fixture = load("bedrock/converse_stream_tool_result_turn")
    cut = body_bytes(fixture).index(b"messageStop") - 20
    with serving(Scripted.from_fixture(fixture, cut_after=cut)) as server:
        proc = run_cli(server.url, "bedrock/us.amazon.nova-micro-v1:0", "hi", "--stream")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["type"] in ("bad_response", "connection")
    assert error["provider"] == "bedrock"


def test_cli_error_from_the_errortype_header() -> None:
    fixture = load("bedrock/err_403_access_denied")
    with serving(Scripted.from_fixture(fixture)) as server:
        proc = run_cli(server.url, "bedrock/us.amazon.nova-micro-v1:0", "hi")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "authentication" and error["status"] == 403
    assert "AccessDeniedException" in error["message"]
