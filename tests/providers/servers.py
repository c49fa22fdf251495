"""A small HTTP/1.1 server on 127.0.0.1 for transport tests: answers that drip, stall, redirect
or set cookies, over plain TCP or TLS, and counts connections (opened and closed by the client).

Runs in the test's event loop: `async with Upstream("drip_json") as up: up.base_url`. Every
loop it runs is bounded (a dripping answer stops after `limit` seconds at the latest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

ANSWER = "Hello from the test upstream."


def chat_json(model: str = "gpt-4o-mini", text: str = ANSWER) -> bytes:
    return json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
    }).encode()


def sse_events(words: list[str], model: str = "gpt-4o-mini") -> list[bytes]:
    """A Chat Completions stream: one event per word, the finish, the usage, [DONE]."""
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model}

    def event(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    out = [event({**base, "choices": [{"index": 0, "delta": {"content": w},
                                        "finish_reason": None}]}) for w in words]
    out.append(event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    out.append(event({**base, "choices": [], "usage": {
        "prompt_tokens": 9, "completion_tokens": len(words), "total_tokens": 9 + len(words)}}))
    out.append(b"data: [DONE]\n\n")
    return out


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    target: str
    """The request target as sent (`/v1/...`, or an absolute URL through a proxy)."""
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """Answers every request by `behaviour`:

    ok          the JSON answer (or an SSE stream when the body asks for one)
    sse_gaps    the stream, one event every `gap` seconds
    late_json   the JSON answer after `gap` seconds of silence
    drip_json   headers (with the full length), then the JSON body one byte every `gap`
    drip_sse    stream headers, then one byte of a comment line every `gap` (never an event)
    stall_sse   stream headers and two events, then silence until the client leaves
    redirect    307 to /elsewhere
    cookie      the JSON answer with a `set-cookie` header
    """

    behaviour: str = "ok"
    gap: float = 0.05
    limit: float = 30.0
    tls: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    opened: int = 0
    closed: int = 0
    """Connections that ended (the client closed them, or the server after an answer)."""
    port: int = 0
    _server: asyncio.Server | None = None
    _reader: Any = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/v1"

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait_closed_connections(self, count: int, limit: float = 20.0) -> None:
        """Wait (bounded) until `count` connections have ended."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while self.closed < count:
            if loop.time() > end:
                raise AssertionError(f"{self.closed} of {count} connections closed")
            await asyncio.sleep(0.01)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.closed += 1
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length") or 0))
        self.received.append(Received(method, target, headers, body))
        stream = b'"stream":true' in body.replace(b" ", b"")
        self._reader = reader
        await getattr(self, "_" + self.behaviour)(writer, stream)
        return self.behaviour in ("ok", "cookie", "redirect", "late_json")

    @staticmethod
    def _head(status: str, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _ok(self, writer: asyncio.StreamWriter, stream: bool,
                  extra: dict[str, str] | None = None) -> None:
        if stream:
            await self._sse_gaps(writer, stream, gap=0.0)
            return
        body = chat_json()
        writer.write(self._head("200 OK", {"content-type": "application/json",
                                           "content-length": str(len(body)), **(extra or {})})
                     + body)
        await writer.drain()

    async def _late_json(self, writer: asyncio.StreamWriter, stream: bool) -> None:
        await asyncio.sleep(self.gap)
        await self._ok(writer, stream)

    async def _cookie(self, writer: asyncio.StreamWriter, stream: bool) -> None:
        await self._ok(writer, stream, {"set-cookie": "session=abc123; Path=/"})

    async def _redirect(self, writer: asyncio.StreamWriter, stream: bool) -> None:
        body = b'{"error": {"message": "moved"}}'
        writer.write(self._head("307 Temporary Redirect", {
            "location": "/elsewhere", "content-type": "application/json",
            "content-length": str(len(body))}) + body)
        await writer.drain()

    async def _sse_gaps(self, writer: asyncio.StreamWriter, stream: bool,
                        gap: float | None = None) -> None:
        writer.write(self._head("200 OK", {"content-type": "text/event-stream",
                                           "connection": "close"}))
        for event in sse_events(ANSWER.split(" ")):
            writer.write(event)
            await writer.drain()
            await asyncio.sleep(self.gap if gap is None else gap)
        writer.close()

    async def _drip_json(self, writer: asyncio.StreamWriter, stream: bool) -> None:
        body = chat_json()
        writer.write(self._head("200 OK", {"content-type": "application/json",
                                           "content-length": str(len(body))}))
        await self._drip(writer, body)

    async def _drip_sse(self, writer: asyncio.StreamWriter, stream: bool) -> None:
        writer.write(self._head("200 OK", {"content-type": "text/event-stream"}))
        await self._drip(writer, b": still thinking" * 10_000)

    async def _drip(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        end = asyncio.get_running_loop().time() + self.limit
        for i in range(len(data)):
            if asyncio.get_running_loop().time() > end:
                break
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(self.gap)
        writer.close()

    async def _stall_sse(self, writer: asyncio.StreamWriter, stream: bool) -> None:
        writer.write(self._head("200 OK", {"content-type": "text/event-stream"}))
        for event in sse_events(["Hello", "there"])[:2]:
            writer.write(event)
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader.read(), self.limit)  # b"": the client left
