"""/metrics, /readyz and the access log, in-process (ASGI) over the mock upstream and fakes."""

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
from llmswitch.gateway.accesslog import AccessLog, Outcome
from llmswitch.gateway.app import create_app
from llmswitch.gateway.metrics import Metrics, SharedMetrics
from llmswitch.testing import FakeModel

parser = pytest.importorskip("prometheus_client.parser")

PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}
SECRET_PROMPT = "my secret prompt 7f3a"
ADMIN = "sk-admin-secret-key-123"


def config(upstream: MockUpstream, tmp: Path, **gateway: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
        "models": {n: {"provider": "openai", "name": n, **PRICES} for n in ("primary", "backup")},
        "routes": {"answer": {"strategy": "fallback", "targets": ["primary", "backup"],
                              "retries": 0, "breaker": {"failures": 1, "cooldown": 600}}},
        "observe": {"ledger": str(tmp / "l.sqlite"), "flush_interval": 0.05},
        "gateway": {"access_log": str(tmp / "access.jsonl"), **gateway},
    }


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition (parsed by prometheus_client's own parser)."""
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    hits = [v for (n, ls), v in found.items()
            if n == name and all((k, v2) in ls for k, v2 in labels.items())]
    assert hits, f"no sample {name} {labels}"
    return sum(hits)


async def test_metrics_count_requests_errors_tokens_cost_latency_and_breakers(
        tmp_path: Path) -> None:
    async with MockUpstream() as upstream:
        upstream.script("primary", ["503"])
        app = create_app(config(upstream, tmp_path), env={"OPENAI_API_KEY": "sk-up",
                                                           "LLMSWITCH_ADMIN_KEY": ADMIN})
        auth = {"authorization": f"Bearer {ADMIN}"}
        body = {"model": "answer", "messages": [{"role": "user", "content": "hi"}]}
        async with client(app) as http:
            ok = await http.post("/v1/chat/completions", json=body, headers=auth)
            assert ok.status_code == 200
            streamed = await http.post("/v1/chat/completions", headers=auth, json={
                **body, "stream": True, "stream_options": {"include_usage": True}})
            assert streamed.status_code == 200 and "[DONE]" in streamed.text
            unknown = await http.post("/v1/chat/completions", headers=auth, json={
                **body, "model": "no-such-model-xyz"})
            assert unknown.status_code == 404
            denied = await http.post("/v1/chat/completions", json=body,
                                     headers={"authorization": "Bearer wrong"})
            assert denied.status_code == 401
            scrape = await http.get("/metrics")
        await app.aclose()
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(scrape.text)
    assert value(found, "llmswitch_gateway_requests_total", route="answer",
                 model="openai/backup", key="admin", status="200", api="openai") == 2
    assert value(found, "llmswitch_gateway_errors_total", type="model_not_found") == 1
    assert value(found, "llmswitch_gateway_errors_total", type="unauthenticated") == 1
    # a name nobody serves is not a label (a client cannot grow the series without bound)
    assert "no-such-model-xyz" not in scrape.text
    assert value(found, "llmswitch_gateway_requests_total", route="", status="404") == 1
    assert value(found, "llmswitch_gateway_input_tokens_total", route="answer") > 0
    assert value(found, "llmswitch_gateway_output_tokens_total", route="answer") > 0
    assert value(found, "llmswitch_gateway_cost_usd_total", route="answer") > 0
    assert value(found, "llmswitch_gateway_request_duration_seconds_count",
                 route="answer") == 2
    assert value(found, "llmswitch_gateway_time_to_first_token_seconds_count",
                 route="answer") == 1
    assert value(found, "llmswitch_gateway_breaker_state", target="primary") == 2  # open
    assert value(found, "llmswitch_gateway_breaker_state", target="backup") == 0
    assert value(found, "llmswitch_ledger_rows_dropped_total") == 0


def test_metrics_of_several_workers_add_up(tmp_path: Path) -> None:
    one, two = Metrics(), Metrics()
    for m, n in ((one, 3), (two, 4)):
        for _ in range(n):
            m.observe("openai", "r", "p/m", "k1", 200, None, 0.02, None, 10, 5, 0.5)
    two.observe("openai", "r", "p/m", "k1", 429, "limit_exceeded", 0.001, None, 0, 0, None)
    SharedMetrics(tmp_path, pid=2).publish(two, force=True)
    total, _ = SharedMetrics(tmp_path, pid=1).gather(one, [])
    found = samples(total.render().decode())
    assert value(found, "llmswitch_gateway_requests_total", status="200") == 7
    assert value(found, "llmswitch_gateway_requests_total", status="429") == 1
    assert value(found, "llmswitch_gateway_input_tokens_total") == 70
    assert value(found, "llmswitch_gateway_cost_usd_total") == pytest.approx(3.5)
    assert value(found, "llmswitch_gateway_request_duration_seconds_bucket", le="0.005") == 1
    assert value(found, "llmswitch_gateway_request_duration_seconds_bucket", le="0.025") == 8
    assert value(found, "llmswitch_gateway_request_duration_seconds_count") == 8
    assert value(found, "llmswitch_gateway_errors_total", type="limit_exceeded") == 1
    # the scraping worker's own figures were not changed by the merge
    assert sum(one.requests.values()) == 3


async def _log_lines(tmp_path: Path, log_content: bool) -> str:
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, tmp_path, log_content=log_content),
                         env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        async with client(app) as http:
            for stream in (False, True):
                r = await http.post("/v1/chat/completions", headers={
                    "authorization": f"Bearer {ADMIN}"}, json={
                    "model": "primary", "stream": stream,
                    "messages": [{"role": "user", "content": SECRET_PROMPT}]})
                assert r.status_code == 200
            bad = await http.post("/v1/messages", headers={"x-api-key": ADMIN + "x"},
                                  json={"model": "primary", "max_tokens": 5, "messages": [
                                      {"role": "user", "content": SECRET_PROMPT}]})
            assert bad.status_code == 401
        await app.aclose()
    return (tmp_path / "access.jsonl").read_text()


async def test_access_log_has_no_key_prompt_or_answer_by_default(tmp_path: Path) -> None:
    text = await _log_lines(tmp_path, log_content=False)
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(x["status"], x["stream"]) for x in lines] == [(200, False), (200, True),
                                                          (401, False)]
    assert lines[0]["key_id"] == "admin" and lines[0]["trace_id"]
    assert lines[0]["provider"] == "openai" and lines[0]["model"] == "primary"
    assert lines[0]["input_tokens"] > 0 and lines[0]["cost_usd"] > 0
    assert lines[1]["ttft_ms"] is not None
    assert lines[2]["error"] == "unauthenticated"
    for secret in (ADMIN, "sk-up", SECRET_PROMPT, ANSWER, "quick brown"):
        assert secret not in text


async def test_access_log_content_only_when_asked_and_never_the_key(tmp_path: Path) -> None:
    text = await _log_lines(tmp_path, log_content=True)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["prompt"] == [{"role": "user", "text": SECRET_PROMPT}]
    assert lines[0]["answer"] == ANSWER and lines[1]["answer"] == ANSWER
    assert ADMIN not in text and "sk-up" not in text


async def test_readyz_names_what_failed(tmp_path: Path) -> None:
    good = Switch({"observe": {"ledger": str(tmp_path / "ok.sqlite")}},
                  models={"m": FakeModel("m", ["ok"])})
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = Switch({"observe": {"ledger": str(blocker / "l.sqlite")}},
                 models={"m": FakeModel("m", ["ok"])})
    async with client(create_app(switch=good)) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready",
                                                         "checks": {"ledger": "ok"}}
    async with client(create_app(switch=bad)) as http:
        failed = await http.get("/readyz")
        alive = await http.get("/healthz")
    assert failed.status_code == 503 and alive.status_code == 200
    assert failed.json()["status"] == "unavailable"
    assert "is a file, not a folder" in failed.json()["checks"]["ledger"]


def test_access_log_line_is_compact_json() -> None:
    out = Outcome("openai", "POST", "/v1/chat/completions", 0.0, status=200, trace_id="t")
    line = out.line(0.25, 1.0, content=False)
    assert line.endswith(b"\n") and json.loads(line)["duration_ms"] == 250.0
    assert "prompt" not in json.loads(line)
    assert AccessLog(False).enabled is False


async def test_readyz_checks_the_shared_state(tmp_path: Path, redis_url: str) -> None:
    from tests.gateway.state_servers import free_port

    base = {"observe": {"ledger": str(tmp_path / "l.sqlite")}}
    up = create_app({**base, "gateway": {"state": redis_url}})
    async with client(up) as http:
        ready = await http.get("/readyz")
    await up.aclose()
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"ledger": "ok", "state": "ok"}
    down = create_app({**base, "gateway": {"state": f"redis://127.0.0.1:{free_port()}/0"}})
    async with client(down) as http:
        failed = await http.get("/readyz")
    await down.aclose()
    assert failed.status_code == 503
    assert failed.json()["checks"]["ledger"] == "ok"
    assert failed.json()["checks"]["state"] not in ("ok", "")
