"""The transport behind every provider call, over real sockets: what it sends, what it keeps
(connections) and what it never keeps (cookies, redirects), proxies and CA bundles from the
environment, connections dropped when a caller leaves, typed errors, and the plug-in interface
(`Switch(transports=...)` with a `Transport` or an httpx transport)."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import shutil
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmswitch import Switch, TextDelta
from llmswitch.errors import ConfigError, ConnectionError, LLMSwitchError
from llmswitch.models import collect
from llmswitch.providers.transport import HttpRequest, ProxyRules, Transport
from tests.providers.servers import ANSWER, Upstream, chat_json

KEY = "sk-test-TRANSPORT-0123456789"


def switch_for(url: str, env: Mapping[str, str] | None = None, **provider: Any) -> Switch:
    return Switch({"providers": {"openai": {"base_url": url, **provider}},
                   "observe": {"ledger": False}}, env={"OPENAI_API_KEY": KEY, **(env or {})})


async def test_sends_the_request_as_built_and_keeps_the_connection() -> None:
    async with Upstream() as up, switch_for(up.base_url) as switch:
        first = await switch.complete("openai/gpt-4o-mini", "hi", max_tokens=5)
        second = await switch.complete("openai/gpt-4o-mini", "hi again")
    assert first.text == second.text == ANSWER
    got = up.received[0]
    assert (got.method, got.target) == ("POST", "/v1/chat/completions")
    assert got.headers["authorization"] == f"Bearer {KEY}"
    assert got.headers["content-type"] == "application/json"
    assert json.loads(got.body) == {"model": "gpt-4o-mini", "max_completion_tokens": 5,
                                    "messages": [{"role": "user", "content": "hi"}]}
    assert up.opened == 1  # HTTP/1.1 keep-alive: both calls on one connection


async def test_cookies_are_not_kept_between_calls() -> None:
    async with Upstream("cookie") as up, switch_for(up.base_url) as switch:
        await switch.complete("openai/gpt-4o-mini", "hi")
        await switch.complete("openai/gpt-4o-mini", "hi")
    assert [r.headers.get("cookie") for r in up.received] == [None, None]


async def test_redirects_are_not_followed() -> None:
    async with Upstream("redirect") as up, switch_for(up.base_url) as switch:
        with pytest.raises(LLMSwitchError):
            await switch.complete("openai/gpt-4o-mini", "hi")
    assert [r.target for r in up.received] == ["/v1/chat/completions"]  # not /elsewhere


async def test_a_cancelled_call_drops_its_connection() -> None:
    async with Upstream("drip_json", gap=0.05) as up, switch_for(up.base_url) as switch:
        task = asyncio.create_task(switch.complete("openai/gpt-4o-mini", "hi"))
        while not up.received:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await up.wait_closed_connections(1)  # the provider stops sending (and billing)


async def test_a_stream_left_early_drops_its_connection() -> None:
    async with Upstream("drip_sse", gap=0.05) as up, switch_for(up.base_url) as switch:
        events = switch.stream("openai/gpt-4o-mini", "hi")
        task = asyncio.create_task(anext(events))  # waits for a first event that never comes
        while not up.received:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await events.aclose()
        await up.wait_closed_connections(1)


async def test_an_abandoned_stream_drops_its_connection() -> None:
    async with Upstream("stall_sse") as up, switch_for(up.base_url) as switch:
        events = switch.stream("openai/gpt-4o-mini", "hi")
        first = await anext(events)
        assert isinstance(first, TextDelta)
        await events.aclose()  # the caller walks away mid-stream
        await up.wait_closed_connections(1)


async def test_an_http_proxy_from_the_environment_is_used(tmp_path: Path) -> None:
    async with Upstream() as proxy:
        env = {"http_proxy": f"http://user:pw@127.0.0.1:{proxy.port}"}
        async with switch_for("http://api.example.test/v1", env) as switch:
            done = await switch.complete("openai/gpt-4o-mini", "hi")
    assert done.text == ANSWER
    got = proxy.received[0]
    assert got.target == "http://api.example.test/v1/chat/completions"  # absolute form
    assert got.headers["host"] == "api.example.test"
    assert got.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()


async def test_loopback_and_no_proxy_hosts_go_direct() -> None:
    async with Upstream() as up:
        env = {"HTTP_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9"}
        async with switch_for(up.base_url, env) as switch:  # a proxy that would refuse
            assert (await switch.complete("openai/gpt-4o-mini", "hi")).text == ANSWER
    rules = ProxyRules.from_env({"HTTPS_PROXY": "proxy:3128",
                                 "no_proxy": "internal.example, .corp.example,10.0.0.0/8"})
    assert rules is not None
    assert rules.for_url("https", "api.openai.com") == "http://proxy:3128"
    assert rules.for_url("http", "api.openai.com") is None  # no http proxy named
    for host in ("internal.example", "a.internal.example", "x.corp.example", "10.1.2.3",
                 "localhost", "127.0.0.1", "::1"):
        assert rules.for_url("https", host) is None, host
    assert ProxyRules.from_env({}) is None
    assert ProxyRules.from_env({"https_proxy": "a:1", "HTTPS_PROXY": "b:2"}).by_scheme == {
        "https": "http://a:1"}  # lower case wins, as in curl  # type: ignore[union-attr]


def test_a_socks_proxy_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ConfigError) as caught:
        ProxyRules.from_env({"https_proxy": "socks5://127.0.0.1:1080"})
    assert "socks5" in str(caught.value) and "https_proxy" in str(caught.value)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_a_private_ca_bundle_from_ssl_cert_file(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with Upstream(tls=server_tls) as up:
        async with switch_for(up.base_url) as switch:  # certifi's bundle: not trusted
            with pytest.raises(ConnectionError) as caught:
                await switch.complete("openai/gpt-4o-mini", "hi")
        assert "SSL_CERT_FILE" in str(caught.value)
        async with switch_for(up.base_url, {"SSL_CERT_FILE": str(cert)}) as switch:
            done = await switch.complete("openai/gpt-4o-mini", "hi")
    assert done.text == ANSWER


async def test_an_unusable_base_url_is_a_config_error() -> None:
    async with switch_for("ftp://127.0.0.1/v1") as switch:
        with pytest.raises(ConfigError) as caught:
            await switch.complete("openai/gpt-4o-mini", "hi")
    assert "base_url" in str(caught.value)


async def test_connection_errors_are_typed_and_scrubbed() -> None:
    async with switch_for(f"http://127.0.0.1:9/v1?key={KEY}") as switch:
        with pytest.raises(ConnectionError) as caught:
            await switch.complete("openai/gpt-4o-mini", "hi")
    assert caught.value.provider == "openai" and "base URL" in str(caught.value)
    dumped = json.dumps([caught.value.to_dict(), caught.value.trace.to_dict()  # type: ignore[union-attr]
                         ], default=str)
    assert KEY not in dumped and KEY not in str(caught.value)
    assert KEY not in str(caught.value.__cause__)


def test_one_switch_on_several_loops_closes_every_connection(
        caplog: pytest.LogCaptureFixture) -> None:
    async def serve_and_call(switch: Switch, up: Upstream) -> str:
        return (await switch.complete("openai/gpt-4o-mini", "hi")).text

    async def main() -> None:
        async with Upstream() as up:
            switch = switch_for(up.base_url)
            texts = [await serve_and_call(switch, up)]
            # the same Switch from two more event loops (each closed by asyncio.run)
            for _ in range(2):
                texts.append(await asyncio.to_thread(
                    asyncio.run, serve_and_call(switch, up)))
            assert texts == [ANSWER] * 3
            await up.wait_closed_connections(2)  # the other loops' connections were closed
            await switch.aclose()
            await up.wait_closed_connections(3)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(main())
        gc.collect()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


class Canned:
    """A `Transport` of our own interface (no httpx): answers from memory, records requests."""

    def __init__(self) -> None:
        self.seen: list[HttpRequest] = []
        self.read_timeouts: list[float | None] = []
        self.closed = False

    async def send(self, request: HttpRequest, *, read_timeout: float | None,
                   on_sent: Any = None) -> Any:
        if on_sent is not None:
            on_sent()
        self.seen.append(request)
        self.read_timeouts.append(read_timeout)
        return _CannedResponse(chat_json())

    async def aclose(self) -> None:
        self.closed = True


class _CannedResponse:
    status = 200
    headers: Mapping[str, str] = {"content-type": "application/json"}

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def read(self) -> bytes:
        return self.body

    async def chunk(self) -> bytes:
        body, self.body = self.body, b""
        return body

    async def aclose(self) -> None:
        pass


@pytest.mark.filterwarnings("ignore::llmswitch.providers.http_model.UnknownPriceWarning")
async def test_a_transport_of_our_interface_plugs_in() -> None:
    canned = Canned()
    assert isinstance(canned, Transport)
    config = {"providers": {"azure": {"base_url": "https://res.example.test",
                                      "timeout": 42, "stall_timeout": 7}},
              "observe": {"ledger": False}}
    async with Switch(config, env={"AZURE_OPENAI_API_KEY": KEY},
                      transports={"azure": lambda: canned}) as switch:
        done = await switch.complete("azure/my deployment", "hi")
        streamed = await collect(switch.stream("azure/my deployment", "hi"))
    assert done.text == streamed.text == ANSWER
    sent = canned.seen[0]
    assert sent.url.startswith(
        "https://res.example.test/openai/deployments/my%20deployment/chat/completions"
        "?api-version=")
    assert sent.headers["api-key"] == KEY and json.loads(sent.body)["messages"]
    assert canned.read_timeouts == [None, 7]  # whole answer: the attempt's limit only
    assert canned.closed


async def test_an_httpx_transport_sees_what_a_real_client_sends() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=chat_json(),
                              headers={"content-type": "application/json"})

    config = {"providers": {"openai": {"base_url": "http://x.test/v1"}},
              "observe": {"ledger": False}}
    async with Switch(config, env={"OPENAI_API_KEY": KEY},
                      transports={"openai": lambda: httpx.MockTransport(handler)}) as switch:
        done = await switch.complete("openai/gpt-4o-mini", "héllo")
    assert done.text == ANSWER
    request = seen[0]
    assert str(request.url) == "http://x.test/v1/chat/completions"
    assert request.headers["content-length"] == str(len(request.content))
    assert json.loads(request.content)["messages"][0]["content"] == "héllo"
    assert "héllo".encode() in request.content  # UTF-8 as sent by httpx's json=, not \\u escapes


async def test_bedrock_sigv4_matches_what_went_over_the_wire() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": secret}
    async with Upstream() as up:
        config = {"providers": {"bedrock": {"base_url": f"http://127.0.0.1:{up.port}"}},
                  "observe": {"ledger": False}}
        async with Switch(config, env=env) as switch:
            with pytest.raises(LLMSwitchError):  # the stand-in answers in another protocol
                await switch.complete("bedrock/us.amazon.nova-micro-v1:0", "hi")
    got = up.received[0]
    assert got.target == "/model/us.amazon.nova-micro-v1%3A0/converse"  # sent as signed

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    scheme, _, rest = got.headers["authorization"].partition(" ")
    assert scheme == "AWS4-HMAC-SHA256"
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    _, _, region, service, _ = parts["Credential"].split("/")
    signed = parts["SignedHeaders"].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed)
    aws = AWSRequest(method=got.method, url=f"http://127.0.0.1:{up.port}{got.target}",
                     data=got.body, headers={h: got.headers[h] for h in signed})
    aws.context["timestamp"] = got.headers["x-amz-date"]
    auth = SigV4Auth(Credentials("AKIDEXAMPLE", secret), service, region)
    assert parts["Signature"] == auth.signature(
        auth.string_to_sign(aws, auth.canonical_request(aws)), aws)


async def test_the_attempt_counts_from_when_the_request_has_a_connection() -> None:
    from llmswitch.providers.aiohttp_transport import AiohttpTransport
    from llmswitch.providers.transport import ClientOptions

    transport = AiohttpTransport(ClientOptions())
    calls: list[str] = []
    try:
        async with Upstream() as up:
            request = HttpRequest("POST", up.base_url + "/chat/completions",
                                  {"content-type": "application/json"}, b"{}")
            response = await transport.send(request, read_timeout=None,
                                            on_sent=lambda: calls.append("sent"))
            assert calls == ["sent"] and response.status == 200
            assert json.loads(await response.read())["choices"]
            await response.aclose()
        refused = HttpRequest("POST", "http://127.0.0.1:9/v1/chat/completions", {}, b"{}")
        with pytest.raises(ConnectionError):
            await transport.send(refused, read_timeout=None,
                                 on_sent=lambda: calls.append("refused"))
        assert calls == ["sent"]  # never connected: the provider never saw it
    finally:
        await transport.aclose()
