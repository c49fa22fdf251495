"""The gateway app in-process (ASGI), driven by the official SDKs, over fake models and over
the fault-injecting OpenAI-compatible mock upstream."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import ANSWER, MockUpstream

from llmswitch import Switch
from llmswitch.gateway.app import create_app
from llmswitch.observe.store import LedgerStore
from llmswitch.testing import FakeModel

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}


def upstream_config(upstream: MockUpstream, ledger: str, **gateway: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
        "models": {n: {"provider": "openai", "name": n, **PRICES} for n in ("primary", "backup")},
        "routes": {"answer": {"strategy": "fallback", "targets": ["primary", "backup"],
                              "retries": 0}},
        "observe": {"ledger": ledger, "flush_interval": 0.05},
        "gateway": gateway,
    }


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def sdk(app: Any, key: str = "sk-anything") -> Any:
    return openai.AsyncOpenAI(api_key=key, base_url="http://gw/v1", max_retries=0,
                              http_client=client_for(app))


async def test_openai_sdk_answer_headers_and_ledger(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        upstream.script("primary", ["503"])
        app = create_app(upstream_config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        raw = await sdk(app).chat.completions.with_raw_response.create(
            model="answer", messages=[{"role": "user", "content": "hi"}])
        out = raw.parse()
        assert out.choices[0].message.content == ANSWER
        headers = raw.headers
        assert headers["x-llmswitch-provider"] == "openai"
        assert headers["x-llmswitch-model"] == "backup"  # the fallback served it
        assert float(headers["x-llmswitch-cost-usd"]) > 0
        trace_id = headers["x-llmswitch-trace-id"]
        assert out.id == f"chatcmpl-{trace_id}"
        await app.aclose()
    with LedgerStore(ledger) as store:
        rows = [r for r in store.attempts() if r["request_id"] == trace_id]
        tree = store.trace(trace_id)
    assert [(r["model"], r["status"]) for r in rows] == [("primary", "error"), ("backup", "ok")]
    assert json.loads(rows[0]["tags"])["api"] == "openai"
    assert tree is not None and tree["kind"] == "strategy"  # the route's decision trace


async def test_streams_in_both_apis_from_any_backend(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        app = create_app(upstream_config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        chunks = [c async for c in await sdk(app).chat.completions.create(
            model="primary", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == ANSWER and chunks[-1].usage is not None
        claude = anthropic.AsyncAnthropic(api_key="sk-x", base_url="http://gw", max_retries=0,
                                          http_client=_httpx2_client(app))
        async with claude.messages.stream(model="answer", max_tokens=100, messages=[
                {"role": "user", "content": "hi"}]) as stream:
            message = await stream.get_final_message()
        assert message.content[0].text == ANSWER and message.stop_reason == "end_turn"
        await app.aclose()


def _httpx2_client(app: Any) -> Any:
    httpx2 = pytest.importorskip("httpx2")
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw")


async def test_bad_input_is_a_clear_error_in_the_api_shape(tmp_path: Path) -> None:
    switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["ok"])})
    app = create_app(switch=switch, limiter=None)
    async with client_for(app) as http:
        bad_json = await http.post("/v1/chat/completions", content=b"{nope",
                                   headers={"content-type": "application/json"})
        assert bad_json.status_code == 400
        assert bad_json.json()["error"]["code"] == "invalid_json"
        wrong_type = await http.post("/v1/chat/completions", content=b"x",
                                     headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        big = await http.post("/v1/chat/completions", content=b"x" * (11 * 1024 * 1024),
                              headers={"content-type": "application/json"})
        assert big.status_code == 413
        unknown = await http.post("/v1/chat/completions", json={
            "model": "mm", "messages": [{"role": "user", "content": "hi"}]})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "model_not_found"
        anth = await http.post("/v1/messages", json={"model": "m", "messages": []})
        assert anth.status_code == 400 and anth.json()["type"] == "error"
        nowhere = await http.get("/v1/nothing")
        assert nowhere.status_code == 404
        models = await http.get("/v1/models")
        assert "m" not in {m["id"] for m in models.json()["data"]}  # fakes are not config
        assert "local/smollm2-135m" in {m["id"] for m in models.json()["data"]}


async def test_admin_key_is_required_once_set() -> None:
    switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["ok"])})
    app = create_app(switch=switch, env={"LLMSWITCH_ADMIN_KEY": "sk-admin-123"})
    with pytest.raises(openai.AuthenticationError):
        await sdk(app, "sk-wrong").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}])
    out = await sdk(app, "sk-admin-123").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "ok"
