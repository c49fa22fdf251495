"""Keys a provider echoes back never leave the library: errors, traces, OTel spans, ledger rows.

A fake upstream (httpx MockTransport, plugged in through `Switch(transports=...)`) answers 401
with a JSON or HTML body quoting the header that carried the key, as real gateways and proxies
sometimes do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from llmswitch import LLMSwitchError, Switch
from llmswitch.observe.ledger import Ledger
from tests.support.fixtures import body_bytes, load

OPENAI_KEY = "sk-proj-Zq9LmX2vB7nR4tY8wK1pD6sF3hJ0aC5eG9iU2oQ7xV4bN8mE1rT6yW3zA5sD0fH"
ANTHROPIC_KEY = "sk-ant-api03-Hk3Jd8Fq2Lz7Xc4Vb9Nm1Qw6Er5Ty0Ui8Op3As7Df2Gh4Jk9Lz1Xc6Vb8Nm-AAAA"
GEMINI_KEY = "AIzaSyD4kP9xQ2mL7vN3bR8tW1cY6hJ0fG5sA2e"

PROVIDERS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    # provider: (model, header, key, env)
    "openai": ("openai/gpt-4o-mini", "authorization", OPENAI_KEY, {"OPENAI_API_KEY": OPENAI_KEY}),
    "anthropic": ("anthropic/claude-haiku-4-5", "x-api-key", ANTHROPIC_KEY,
                  {"ANTHROPIC_API_KEY": ANTHROPIC_KEY}),
    "gemini": ("gemini/gemini-2.5-flash", "x-goog-api-key", GEMINI_KEY,
               {"GEMINI_API_KEY": GEMINI_KEY}),
}


def _echo_json(provider: str, header: str, value: str) -> dict[str, Any]:
    said = f"invalid credentials in header {header}: {value}"
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "authentication_error", "message": said},
                "request": {"headers": {header: value}}}
    if provider == "gemini":
        return {"error": {"code": 401, "message": said, "status": "UNAUTHENTICATED",
                          "details": [{"metadata": {header: value}}]}}
    return {"error": {"message": said, "type": "invalid_request_error",
                      "code": "invalid_api_key", "param": value}}


def echo_transport(provider: str, body: str) -> Callable[[], httpx.AsyncBaseTransport]:
    """401 quoting the auth header: `json`, `html`, or `html-cut` (the key crosses the point
    where error messages cut a long body)."""
    _, header, _, _ = PROVIDERS[provider]

    def handler(request: httpx.Request) -> httpx.Response:
        value = request.headers[header]
        if body == "json":
            return httpx.Response(401, json=_echo_json(provider, header, value))
        lead = "<html><body><h1>401 Unauthorized</h1><p>"
        pad = ""
        if body == "html-cut":  # the key starts at character 270: ~30 of its characters fit
            pad = "x" * (270 - len(lead) - len(header) - 2 - (value.rfind(" ") + 1))
        if body == "html-entities":  # an HTML encoder that writes `-` `_` `/` as references
            value = "".join(f"&#{ord(c)};" if c in "-_/+=" else c for c in value)
        page = f"{lead}{pad}{header}: {value}</p></body></html>"
        return httpx.Response(401, text=page, headers={"content-type": "text/html"})

    return lambda: httpx.MockTransport(handler)


def leaks(text: str, key: str) -> bool:
    """The key, or a long piece of its start, in `text`."""
    return key in text or key[:16] in text


def ledger_text(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        rows = [*conn.execute("SELECT * FROM attempts"), *conn.execute("SELECT * FROM traces")]
    finally:
        conn.close()
    return json.dumps(rows, default=str)


@pytest.fixture
def otel() -> Any:
    pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmswitch.observe.otel import OtelObserver

    exporter = InMemorySpanExporter()
    return exporter, OtelObserver(exporter, batch=False)


def otel_text(exporter: Any) -> str:
    spans = exporter.get_finished_spans()
    return json.dumps([[s.name, s.status.description, dict(s.attributes or {}),
                        [(e.name, dict(e.attributes or {})) for e in s.events]] for s in spans],
                      default=str)


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("body", ["json", "html", "html-cut", "html-entities"])
@pytest.mark.parametrize("stream", [False, True])
async def test_echoed_key_is_scrubbed_everywhere(provider: str, body: str, stream: bool,
                                                 tmp_path: Path, otel: Any) -> None:
    model, _, key, env = PROVIDERS[provider]
    exporter, observer = otel
    db = tmp_path / "ledger.sqlite"
    switch = Switch({}, env=env, transports={provider: echo_transport(provider, body)},
                    observers=[Ledger(str(db)), observer])
    with pytest.raises(LLMSwitchError) as caught:
        if stream:
            async for _ in switch.stream(model, "hi"):
                pass
        else:
            await switch.complete(model, "hi")
    await switch.aclose()
    error = caught.value
    assert error.status == 401 and error.type == "authentication"
    assert error.trace is not None
    for where, text in {
        "str": str(error), "repr": repr(error), "args": repr(error.args),
        "to_dict": json.dumps(error.to_dict()), "body": json.dumps(error.body, default=str),
        "hint": str(error.hint), "trace": json.dumps(error.trace.to_dict(), default=str),
        "otel": otel_text(exporter), "ledger": ledger_text(db),
    }.items():
        assert not leaks(text, key), f"{provider} key in {where}: {text[:400]}"
    assert "[redacted]" in str(error)  # the message still says a key was quoted


async def test_fallback_that_succeeded_keeps_no_key_in_its_trace(tmp_path: Path,
                                                                 otel: Any) -> None:
    ok = body_bytes(load("openai/chat_plain_gpt4o"))

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["model"] == "gpt-4o-mini":
            return httpx.Response(401, json=_echo_json(
                "openai", "authorization", request.headers["authorization"]))
        return httpx.Response(200, content=ok, headers={"content-type": "application/json"})

    exporter, observer = otel
    db = tmp_path / "ledger.sqlite"
    config = {"routes": {"r": {"strategy": "fallback", "retries": 0,
                               "targets": ["openai/gpt-4o-mini", "openai/gpt-4o"],
                               "fallback_on": ["authentication"]}}}
    switch = Switch(config, env={"OPENAI_API_KEY": OPENAI_KEY},
                    transports={"openai": lambda: httpx.MockTransport(handler)},
                    observers=[Ledger(str(db)), observer])
    done = await switch.complete("r", "hi")
    await switch.aclose()
    assert done.model == "gpt-4o" and done.trace is not None
    trace = json.dumps(done.trace.to_dict(), default=str)
    assert '"authentication"' in trace  # the failed first attempt is in the tree
    for where, text in {"trace": trace, "otel": otel_text(exporter),
                        "ledger": ledger_text(db)}.items():
        assert not leaks(text, OPENAI_KEY), f"key in {where}: {text[:400]}"


async def test_key_in_a_configured_header_and_url_is_scrubbed() -> None:
    """Configured headers are secrets too, and so are a base URL's password and `?key=`."""
    token = "tok_8fJ2kL9qX4mN7vB1cZ6wR3yT5"
    password = "pw-Zy7Xw6Vu5Ts4Rq3P"
    query_key = "qk-Aa1Bb2Cc3Dd4Ee5Ff6Gg"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {
            "message": f"denied {request.headers['x-proxy-token']} at {request.url}"}})

    config = {"providers": {"myproxy": {
        "base_url": f"http://user:{password}@proxy.test/v1?key={query_key}",
        "headers": {"X-Proxy-Token": token}}}}
    async with Switch(config, env={},
                      transports={"myproxy": lambda: httpx.MockTransport(handler)}) as switch:
        with pytest.raises(LLMSwitchError) as caught:
            await switch.complete("myproxy/some-model", "hi")
    text = json.dumps([str(caught.value), caught.value.to_dict(),
                       caught.value.trace.to_dict() if caught.value.trace else None])
    assert "denied" in text
    for secret in (token, password, query_key):
        assert secret not in text, text


async def test_connection_error_does_not_print_a_key_in_the_url() -> None:
    query_key = "AIzaSyQ8wE7rT6yU5iO4pA3sD2fG1hJ0kL9zX"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    config = {"providers": {"gproxy": {"base_url": f"http://gw.test/v1?key={query_key}"}}}
    async with Switch(config, env={},
                      transports={"gproxy": lambda: httpx.MockTransport(refuse)}) as switch:
        with pytest.raises(LLMSwitchError) as caught:
            await switch.complete("gproxy/m", "hi")
    assert caught.value.type == "connection"
    text = json.dumps([str(caught.value), caught.value.to_dict(), str(caught.value.__cause__),
                       caught.value.trace.to_dict() if caught.value.trace else None])
    assert query_key not in text, text


async def test_bedrock_secret_key_and_session_token_are_scrubbed() -> None:
    pytest.importorskip("botocore", reason="botocore not installed (extra bedrock)")
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    token = "IQoJb3JpZ2luX2VjEBYaCXVzLWVhc3QtMSJHMEUCIQD+example/session+token=="
    env = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_SESSION_TOKEN": token, "AWS_REGION": "us-east-1"}

    def handler(request: httpx.Request) -> httpx.Response:
        sent = request.headers["x-amz-security-token"]
        return httpx.Response(403, json={"message": f"token {sent} (url-encoded "
                                                    f"{quote(sent, safe='')}) and key {secret}"},
                              headers={"x-amzn-errortype": "UnrecognizedClientException"})

    async with Switch({}, env=env,
                      transports={"bedrock": lambda: httpx.MockTransport(handler)}) as switch:
        with pytest.raises(LLMSwitchError) as caught:
            await switch.complete("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "hi")
    text = json.dumps([str(caught.value), caught.value.to_dict(), caught.value.body,
                       caught.value.trace.to_dict() if caught.value.trace else None])
    assert caught.value.status == 403
    for value in (secret, token, quote(token, safe=""), secret[:16], token[:16]):
        assert value not in text, text
