"""A fault-injecting OpenAI-compatible server on 127.0.0.1 for resilience tests and benchmarks.

Each request's behaviour comes from a script per model name (the body's `model`), consumed in
order (the last entry repeats), or from a `chooser(model, n, stream)` callable:

    ok                       a normal answer (JSON, or SSE when the request streams)
    429 / 429:2.5            rate limited, without / with `retry-after: 2.5`
    500 / 503 / 529          server errors (OpenAI-style error body)
    400 / 401                bad request / authentication
    hang                     read the request, then say nothing (past any timeout)
    reset                    read the request, then abort the TCP connection
    cut_before               stream: headers and a role chunk, then the connection drops
    cut_after                stream: two text chunks, then the connection drops
    cut_late                 stream: text and the usage chunk, no finish, then drops
    malformed                stream: a text chunk, then a chunk that is not JSON
    drip                     stream: the answer one word at a time, `drip_s` apart
    no_usage                 not streamed: the answer without a `usage` object

A continuation request (last messages: the assistant's partial answer, then a user turn) is
answered with the rest of the answer, as a model that continues faithfully would.

Runs in the caller's event loop: `async with MockUpstream() as up: up.base_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

ANSWER = "The quick brown fox jumps over the lazy dog."


@dataclass
class Seen:
    """One request the server received."""

    model: str
    stream: bool
    body: dict[str, Any]
    fault: str


@dataclass
class MockUpstream:
    """The server. `script(model, [...])` sets faults; `seen` lists the requests."""

    answer: str = ANSWER
    drip_s: float = 0.05
    hang_s: float = 30.0
    chooser: Callable[[str, int, bool], str] | None = None
    seen: list[Seen] = field(default_factory=list)
    _scripts: dict[str, list[str]] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    port: int = 0
    connections: int = 0

    def script(self, model: str, faults: Sequence[str]) -> None:
        """The behaviours for the next requests to `model` (the last one repeats)."""
        self._scripts[model] = list(faults)
        self._counts[model] = 0

    def count(self, model: str) -> int:
        """Requests received for a model."""
        return sum(1 for s in self.seen if s.model == model)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> MockUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def _fault(self, model: str, stream: bool) -> str:
        n = self._counts[model]
        self._counts[model] = n + 1
        if self.chooser is not None:
            return self.chooser(model, n, stream)
        faults = self._scripts.get(model, ["ok"])
        return faults[min(n, len(faults) - 1)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                body = await _read_request(reader)
                if body is None:
                    return
                model = str(body.get("model", ""))
                stream = bool(body.get("stream"))
                fault = self._fault(model, stream)
                self.seen.append(Seen(model, stream, body, fault))
                if not await self._respond(writer, fault, body, stream):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, w: asyncio.StreamWriter, fault: str, body: dict[str, Any],
                       stream: bool) -> bool:
        """Write one response; returns whether the connection stays usable."""
        code, _, after = fault.partition(":")
        if code.isdigit():
            await _error(w, int(code), after or None)
            return True
        if fault == "hang":
            await asyncio.sleep(self.hang_s)
            return False
        if fault == "reset":
            w.transport.abort()
            return False
        answer = _rest(body, self.answer)
        if not stream:
            completion = _completion(body, answer)
            if fault == "no_usage":
                del completion["usage"]
            await _json(w, 200, completion)
            return True
        return await self._stream(w, fault, body, answer)

    async def _stream(self, w: asyncio.StreamWriter, fault: str, body: dict[str, Any],
                      answer: str) -> bool:
        model = str(body.get("model"))
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n")
        _sse(w, _chunk(model, {"role": "assistant", "content": ""}))
        if fault == "cut_before":
            await w.drain()
            w.transport.abort()
            return False
        words = [p + " " for p in answer.split(" ")]
        words[-1] = words[-1].rstrip()
        limit = {"cut_after": 2, "malformed": 1, "cut_late": len(words)}.get(fault)
        for i, word in enumerate(words[:limit]):
            _sse(w, _chunk(model, {"content": word}))
            await w.drain()
            if fault == "drip" and i < len(words) - 1:
                await asyncio.sleep(self.drip_s)
        usage = _usage(body, answer)
        if fault == "cut_after":
            w.transport.abort()
            return False
        if fault == "malformed":
            _sse(w, "{not json")
            _end(w)
            await w.drain()
            return True
        if fault == "cut_late":
            _sse(w, json.dumps({"id": "x", "model": model, "choices": [], "usage": usage}))
            await w.drain()
            w.transport.abort()
            return False
        _sse(w, _chunk(model, {}, "stop"))
        _sse(w, json.dumps({"id": "x", "model": model, "choices": [], "usage": usage}))
        _sse(w, "[DONE]")
        _end(w)
        await w.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    length = 0
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    raw = await reader.readexactly(length) if length else b"{}"
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


def _rest(body: dict[str, Any], answer: str) -> str:
    """The answer, or its remainder when the request continues a partial answer."""
    messages = body.get("messages") or []
    if len(messages) >= 2 and messages[-2].get("role") == "assistant":
        partial = str(messages[-2].get("content") or "")
        if partial and answer.startswith(partial):
            return answer[len(partial):]
    return answer


def _usage(body: dict[str, Any], answer: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4 + 1
    out = len(answer) // 4
    return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}


def _completion(body: dict[str, Any], answer: str) -> dict[str, Any]:
    return {"id": "chatcmpl-mock", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop"}],
            "usage": _usage(body, answer)}


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"id": "x", "object": "chat.completion.chunk", "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _sse(w: asyncio.StreamWriter, data: str) -> None:
    payload = f"data: {data}\n\n".encode()
    w.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")


def _end(w: asyncio.StreamWriter) -> None:
    w.write(b"0\r\n\r\n")


async def _json(w: asyncio.StreamWriter, status: int, data: Any,
                headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(data).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    w.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(raw)}\r\n{extra}\r\n".encode() + raw)
    await w.drain()


async def _error(w: asyncio.StreamWriter, status: int, retry_after: str | None) -> None:
    kinds = {429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable",
             529: "overloaded_error", 400: "invalid_request_error", 401: "invalid_api_key"}
    headers = {"retry-after": retry_after} if retry_after else None
    body = {"error": {"message": f"mock {status}", "type": kinds.get(status, "error"),
                      "code": None}}
    await _json(w, status, body, headers)
