"""`llmswitch serve` as a real process on 127.0.0.1, driven by the official `openai` and
`anthropic` SDKs, over the fault-injecting mock upstream. No timing asserts: behaviour only,
every wait bounded."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import ANSWER, MockUpstream, _chunk, _end, _json, _sse, _usage

from llmswitch.observe.store import LedgerStore
from tests.gateway.served import access_lines, serving, write_config

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}
UP_ENV = {"OPENAI_API_KEY": "sk-upstream-test"}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


class ToolUpstream(MockUpstream):
    """The mock upstream, plus: a request offering tools (and no tool result yet) is answered
    with a call to the first tool, `{"city": "Paris"}`."""

    async def _respond(self, w: asyncio.StreamWriter, fault: str, body: dict[str, Any],
                       stream: bool) -> bool:
        messages = body.get("messages") or []
        if not body.get("tools") or any(m.get("role") == "tool" for m in messages):
            return await super()._respond(w, fault, body, stream)
        name = body["tools"][0]["function"]["name"]
        call = {"id": "call_1", "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'}}
        if not stream:
            await _json(w, 200, {"id": "c", "object": "chat.completion", "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "tool_calls",
                                              "message": {"role": "assistant", "content": None,
                                                          "tool_calls": [call]}}],
                                 "usage": _usage(body, "x" * 20)})
            return True
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n")
        _sse(w, _chunk(body["model"], {"role": "assistant", "tool_calls": [{"index": 0, **call}]}))
        _sse(w, _chunk(body["model"], {}, "tool_calls"))
        _sse(w, json.dumps({"id": "x", "model": body["model"], "choices": [],
                            "usage": _usage(body, "x" * 20)}))
        _sse(w, "[DONE]")
        _end(w)
        await w.drain()
        return True


def gateway_config(tmp: Path, upstream: MockUpstream, timeout: float = 30,
                   **gateway: Any) -> str:
    return write_config(tmp / "llmswitch.yaml", {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": timeout}},
        "models": {n: {"provider": "openai", "name": n, **PRICES}
                   for n in ("primary", "backup", "slow")},
        "routes": {"answer": {"strategy": "fallback", "targets": ["primary", "backup"],
                              "retries": 0}},
        "observe": {"ledger": str(tmp / "ledger.sqlite"), "flush_interval": 0.05},
        "gateway": {"access_log": str(tmp / "access.jsonl"), "drain_seconds": 30,
                    **gateway},
    })


def oa(url: str, **kw: Any) -> Any:
    return openai.AsyncOpenAI(api_key="sk-client", base_url=f"{url}/v1", max_retries=0,
                              timeout=60, **kw)


def ledger_rows(tmp: Path, trace_id: str) -> list[dict[str, Any]]:
    with LedgerStore(str(tmp / "ledger.sqlite")) as store:
        return [r for r in store.attempts() if r["request_id"] == trace_id]


async def wait_for_rows(tmp: Path, trace_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The ledger rows of a call, once the writer has written them (bounded)."""
    until = time.monotonic() + timeout
    while True:
        rows = ledger_rows(tmp, trace_id) if (tmp / "ledger.sqlite").exists() else []
        if rows or time.monotonic() > until:
            return rows
        await asyncio.sleep(0.1)


async def test_openai_and_anthropic_sdks_chat_stream_tools_and_schema(tmp_path: Path) -> None:
    async with ToolUpstream(answer='{"city": "Paris", "days": 3}') as upstream:
        upstream.script("primary", ["503"])
        async with serving("--config", gateway_config(tmp_path, upstream), env=UP_ENV) as gw:
            client = oa(gw.url)
            raw = await client.chat.completions.with_raw_response.create(
                model="answer", messages=[{"role": "user", "content": "hi"}])
            out = raw.parse()
            assert out.choices[0].message.content == upstream.answer
            assert raw.headers["x-llmswitch-model"] == "backup"  # the route fell back
            assert raw.headers["x-llmswitch-provider"] == "openai"
            assert float(raw.headers["x-llmswitch-cost-usd"]) > 0
            trace_id = raw.headers["x-llmswitch-trace-id"]

            chunks = [c async for c in await client.chat.completions.create(
                model="backup", messages=[{"role": "user", "content": "hi"}], stream=True,
                stream_options={"include_usage": True})]
            assert "".join(c.choices[0].delta.content or "" for c in chunks
                           if c.choices) == upstream.answer
            assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

            tool = await client.chat.completions.create(
                model="backup", messages=[{"role": "user", "content": "weather in Paris?"}],
                tools=[WEATHER])
            call = tool.choices[0].message.tool_calls[0]
            assert tool.choices[0].finish_reason == "tool_calls"
            assert (call.function.name, json.loads(call.function.arguments)) == (
                "get_weather", {"city": "Paris"})
            assert upstream.seen[-1].body["tools"][0]["function"]["name"] == "get_weather"

            schema = {"type": "object", "properties": {"city": {"type": "string"},
                                                       "days": {"type": "integer"}},
                      "required": ["city", "days"], "additionalProperties": False}
            structured = await client.chat.completions.create(
                model="backup", messages=[{"role": "user", "content": "plan"}],
                response_format={"type": "json_schema", "json_schema": {
                    "name": "trip", "schema": schema, "strict": True}})
            assert json.loads(structured.choices[0].message.content) == {"city": "Paris",
                                                                        "days": 3}
            assert upstream.seen[-1].body["response_format"]["type"] == "json_schema"

            claude = anthropic.AsyncAnthropic(api_key="sk-client", base_url=gw.url,
                                              max_retries=0, timeout=60)
            message = await claude.messages.create(
                model="backup", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
            assert message.content[0].text == upstream.answer
            async with claude.messages.stream(model="answer", max_tokens=100, messages=[
                    {"role": "user", "content": "hi"}]) as stream:
                final = await stream.get_final_message()
            assert final.content[0].text == upstream.answer
            assert final.stop_reason == "end_turn"
            used = await claude.messages.create(
                model="backup", max_tokens=100, tools=[{
                    "name": "get_weather", "description": "Weather in a city",
                    "input_schema": WEATHER["function"]["parameters"]}],
                messages=[{"role": "user", "content": "weather in Paris?"}])
            assert used.stop_reason == "tool_use"
            assert used.content[-1].input == {"city": "Paris"}

            with pytest.raises(openai.NotFoundError) as missing:
                await client.chat.completions.create(
                    model="primry", messages=[{"role": "user", "content": "hi"}])
            assert missing.value.status_code == 404
            assert "did you mean" in str(missing.value) and "primary" in str(missing.value)
        assert await gw.stop() == 0
    rows = ledger_rows(tmp_path, trace_id)
    assert [(r["model"], r["status"]) for r in rows] == [("primary", "error"), ("backup", "ok")]
    log = access_lines(tmp_path / "access.jsonl")
    assert len(log) == 8 and log[-1]["status"] == 404 and log[0]["trace_id"] == trace_id
    assert "sk-client" not in (tmp_path / "access.jsonl").read_text()


async def test_client_leaving_a_stream_cancels_the_upstream_call(tmp_path: Path) -> None:
    async with MockUpstream(drip_s=0.5) as upstream:
        upstream.script("slow", ["drip"])
        async with serving("--config", gateway_config(tmp_path, upstream), env=UP_ENV) as gw:
            async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http, http.stream(
                    "POST", "/v1/chat/completions", json={
                        "model": "slow", "stream": True,
                        "messages": [{"role": "user", "content": "hi"}]}) as response:
                trace_id = response.headers["x-llmswitch-trace-id"]
                async for line in response.aiter_lines():
                    if '"content":"The' in line.replace(" ", ""):
                        break  # one word in: leave
            rows = await wait_for_rows(tmp_path, trace_id)
            # the upstream connection was closed before the answer's last word
            until = time.monotonic() + 30
            while upstream._writers and time.monotonic() < until:
                await asyncio.sleep(0.1)
            assert not upstream._writers
        assert await gw.stop() == 0
    assert [r["status"] for r in rows] in (["abandoned"], ["cancelled"])
    assert rows[0]["output_tokens"] > 0 and rows[0]["usage_estimated"] == 1
    log = access_lines(tmp_path / "access.jsonl")
    assert log[-1]["outcome"] == "client_gone" and log[-1]["trace_id"] == trace_id


async def test_slow_upstream_is_relayed_and_a_hung_one_is_a_504(tmp_path: Path) -> None:
    # The drip (9 words, 0.05 s apart) fits the 5 s attempt timeout with a wide margin on a
    # busy machine; the hang never does.
    async with MockUpstream(drip_s=0.05, hang_s=60) as upstream:
        upstream.script("slow", ["drip"])
        upstream.script("primary", ["hang"])
        config = gateway_config(tmp_path, upstream, timeout=5)
        async with serving("--config", config, env=UP_ENV) as gw:
            client = oa(gw.url)
            chunks = [c async for c in await client.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": "hi"}], stream=True)]
            assert "".join(c.choices[0].delta.content or "" for c in chunks
                           if c.choices) == ANSWER
            with pytest.raises(openai.APIStatusError) as hung:
                await client.chat.completions.create(
                    model="primary", messages=[{"role": "user", "content": "hi"}])
            assert hung.value.status_code == 504
            assert hung.value.response.headers.get("x-llmswitch-trace-id")
        assert await gw.stop() == 0



async def stream_then_sigterm(gw: Any) -> tuple[str, str]:
    """Stream model `slow` and send the gateway SIGTERM once the first bytes arrived
    (mid-stream); the trace id and the whole body the client received."""
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as http, http.stream(
            "POST", "/v1/chat/completions", json={
                "model": "slow", "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}) as response:
        trace_id = response.headers["x-llmswitch-trace-id"]
        body = ""
        async for chunk in response.aiter_text():
            if not body:
                gw.proc.send_signal(signal.SIGTERM)
            body += chunk
    return trace_id, body

async def test_sigterm_drains_a_running_stream_flushes_the_ledger_and_exits_0(
        tmp_path: Path) -> None:
    async with MockUpstream(drip_s=0.3) as upstream:
        upstream.script("slow", ["drip"])
        async with serving("--config", gateway_config(tmp_path, upstream), env=UP_ENV) as gw:
            trace_id, body = await stream_then_sigterm(gw)
            text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                           for line in body.splitlines()
                           if line.startswith("data: {") and '"choices":[{' in line)
            assert text == ANSWER and body.rstrip().endswith("data: [DONE]")
            status = await gw.stop()
    assert status == 0, gw.log
    rows = ledger_rows(tmp_path, trace_id)  # written before the process exited
    assert [r["status"] for r in rows] == ["ok"]
    assert access_lines(tmp_path / "access.jsonl")[-1]["trace_id"] == trace_id


async def test_a_stream_longer_than_the_drain_ends_with_an_error_event_and_a_ledger_row(
        tmp_path: Path) -> None:
    async with MockUpstream(drip_s=1.0) as upstream:
        upstream.script("slow", ["drip"])
        config = gateway_config(tmp_path, upstream, drain_seconds=1)
        async with serving("--config", config, env=UP_ENV) as gw:
            trace_id, body = await stream_then_sigterm(gw)
            status = await gw.stop()
    assert status == 0, gw.log
    assert "[DONE]" not in body  # not a clean end
    error = json.loads(body.strip().splitlines()[-1].removeprefix("data: "))
    assert error["error"]["code"] == "unavailable"
    assert "shutting down" in error["error"]["message"]
    rows = ledger_rows(tmp_path, trace_id)
    assert [r["status"] for r in rows] == ["cancelled"]
    assert rows[0]["output_tokens"] > 0


async def test_slow_loris_is_dropped_while_others_are_served(tmp_path: Path) -> None:
    async with MockUpstream() as upstream:
        config = gateway_config(tmp_path, upstream, header_timeout=1)
        async with serving("--config", config, env=UP_ENV) as gw:
            loop = asyncio.get_running_loop()
            loris = socket.create_connection(("127.0.0.1", gw.port))
            silent = socket.create_connection(("127.0.0.1", gw.port))
            loris.setblocking(False)
            silent.setblocking(False)
            await loop.sock_sendall(loris, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            dropped = False
            async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
                for _ in range(300):  # a byte every 0.1 s: bounded at 30 s
                    try:
                        await loop.sock_sendall(loris, b"x")
                    except (BrokenPipeError, ConnectionResetError):
                        dropped = True
                        break
                    assert (await http.get("/healthz")).status_code == 200
                    try:
                        if await asyncio.wait_for(loop.sock_recv(loris, 1024), 0.1) == b"":
                            dropped = True
                            break
                    except TimeoutError:
                        pass
                assert dropped, "the slow client was never dropped"
                closed = await asyncio.wait_for(loop.sock_recv(silent, 1024), 30)
                assert closed == b""  # a connection that never sends is dropped too
                ok = await http.post("/v1/chat/completions", json={
                    "model": "primary", "messages": [{"role": "user", "content": "hi"}]})
                assert ok.status_code == 200
            loris.close()
            silent.close()


async def test_a_kept_alive_connection_dribbling_its_next_head_is_dropped(
        tmp_path: Path) -> None:
    """The head timer of a connection's second request starts when its head arrives in
    part (the first request's head arrived whole, so no timer was running)."""
    async with MockUpstream() as upstream:
        config = gateway_config(tmp_path, upstream, header_timeout=1, idle_timeout=120)
        async with serving("--config", config, env=UP_ENV) as gw:
            loop = asyncio.get_running_loop()
            conn = socket.create_connection(("127.0.0.1", gw.port))
            conn.setblocking(False)
            await loop.sock_sendall(conn, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while b'{"status":"ok"}' not in answer:
                chunk = await asyncio.wait_for(loop.sock_recv(conn, 4096), 30)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
            await loop.sock_sendall(conn, b"GET /healthz HTTP/1.1\r\n")
            dropped = False
            for _ in range(300):  # a byte every 0.1 s: bounded at 30 s, idle timeout 120 s
                try:
                    await loop.sock_sendall(conn, b"x")
                    if await asyncio.wait_for(loop.sock_recv(conn, 1024), 0.1) == b"":
                        dropped = True
                        break
                except TimeoutError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                    break
            conn.close()
            assert dropped, "the connection dribbling its second head was never dropped"


async def test_workers_share_the_port_and_metrics_add_up(tmp_path: Path) -> None:
    async with MockUpstream() as upstream:
        config = gateway_config(tmp_path, upstream)
        async with serving("--config", config, "--workers", "2", env=UP_ENV) as gw:
            for _ in range(12):  # fresh connections: the kernel spreads them over workers
                async with httpx.AsyncClient(base_url=gw.url, timeout=60) as one:
                    r = await one.post("/v1/chat/completions", json={
                        "model": "primary", "messages": [{"role": "user", "content": "x"}]})
                    assert r.status_code == 200
            total, workers = await _scrape_until(gw.url, 12, 2)
            assert total == 12 and len(workers) == 2
        assert await gw.stop() == 0


async def _scrape_until(url: str, requests: int, workers: int) -> tuple[float, set[str]]:
    """Scrape /metrics until every worker's requests show (workers publish every second)."""
    until, total, seen = time.monotonic() + 30, 0.0, set()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while time.monotonic() < until:
            lines = (await http.get("/metrics")).text.splitlines()
            total = sum(float(line.rsplit(" ", 1)[1]) for line in lines
                        if line.startswith("llmswitch_gateway_requests_total{"))
            seen = {line.split('worker="')[1].split('"')[0] for line in lines
                    if line.startswith("llmswitch_gateway_in_flight_requests{")}
            if total == requests and len(seen) == workers:
                break
            await asyncio.sleep(0.3)
    return total, seen


async def test_refuses_a_non_loopback_address_without_auth(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmswitch.cli.main", "serve", "--host", "0.0.0.0", "--port",
        "0", "--config", write_config(tmp_path / "c.yaml", {"observe": {"ledger": False}}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 2
    assert b"refusing to serve without authentication on 0.0.0.0" in err
    assert b"--no-auth" in err and b"Traceback" not in err


@pytest.mark.local_model
async def test_no_config_serves_the_local_model_offline(tmp_path: Path) -> None:
    async with serving(env={"LLMSWITCH_LEDGER": str(tmp_path / "ledger.sqlite")},
                       cwd=str(tmp_path)) as gw:
        client = oa(gw.url)
        models = {m.id async for m in client.models.list()}
        assert "local/smollm2-135m" in models
        out = await client.chat.completions.create(
            model="local/smollm2-135m", max_tokens=8,
            messages=[{"role": "user", "content": "Say hello."}])
        assert out.choices[0].message.content
        assert out.usage is not None and out.usage.completion_tokens > 0
        chunks = [c async for c in await client.chat.completions.create(
            model="local/smollm2-135m", max_tokens=8, stream=True,
            messages=[{"role": "user", "content": "Say hello."}])]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        claude = anthropic.AsyncAnthropic(api_key="x", base_url=gw.url, max_retries=0,
                                          timeout=120)
        message = await claude.messages.create(
            model="local/smollm2-135m", max_tokens=8,
            messages=[{"role": "user", "content": "Say hello."}])
        assert message.content[0].text
        assert (await gw.stop()) == 0


def test_exposure_rules() -> None:
    from llmswitch import Switch
    from llmswitch.gateway.app import create_app
    from llmswitch.gateway.server import ServeError, ServeOptions, check_exposure, is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org"]))
    open_app = create_app(switch=Switch({"observe": {"ledger": False}}))
    keyed = create_app(switch=Switch({"observe": {"ledger": False}}),
                       env={"LLMSWITCH_ADMIN_KEY": "sk-admin"})
    with pytest.raises(ServeError, match="--no-auth"):
        check_exposure(open_app, ServeOptions(host="0.0.0.0"))
    check_exposure(open_app, ServeOptions(host="0.0.0.0", no_auth=True))
    check_exposure(open_app, ServeOptions(host="127.0.0.1"))
    check_exposure(keyed, ServeOptions(host="0.0.0.0"))


def test_several_workers_need_shared_state_for_limits_and_budgets(tmp_path: Path) -> None:
    from llmswitch.gateway.app import create_app
    from llmswitch.gateway.server import ServeError, ServeOptions, check_shared_state

    limited = create_app({"observe": {"ledger": str(tmp_path / "l.sqlite")},
                          "gateway": {"limits": {"local/smollm2-135m": {"rpm": 5}}}})
    with pytest.raises(ServeError, match="would not hold"):
        check_shared_state(limited, ServeOptions(workers=2))
    check_shared_state(limited, ServeOptions(workers=1))  # one worker counts exactly
    shared = create_app({"observe": {"ledger": str(tmp_path / "l.sqlite")},
                         "gateway": {"state": "redis://127.0.0.1:1/0",
                                     "limits": {"local/smollm2-135m": {"rpm": 5}}}})
    check_shared_state(shared, ServeOptions(workers=2))
    for app in (limited, shared):
        asyncio.run(app.aclose())
