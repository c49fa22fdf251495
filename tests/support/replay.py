"""A real HTTP server on 127.0.0.1 that answers with recorded (or scripted) responses.

Each scripted response can be cut into chunks with delays, hang, or drop the connection, so
streaming, timeouts and resets are exercised over a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.fixtures import body_bytes


@dataclass
class Scripted:
    """One response: status, headers, body, and how to deliver it."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunk_size: int | None = None
    delay: float = 0.0
    hang: float = 0.0
    cut_after: int | None = None
    """Close the connection after this many body bytes (a stream cut mid-way)."""

    @classmethod
    def from_fixture(cls, fixture: dict[str, Any], **kw: Any) -> Scripted:
        """The recorded response of a fixture."""
        response = fixture["response"]
        return cls(response["status"], dict(response["headers"]), body_bytes(fixture), **kw)


@dataclass
class Received:
    """A request the server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ReplayServer:
    """Answers requests in order from a list of `Scripted` (the last one repeats)."""

    def __init__(self, responses: list[Scripted]) -> None:
        self.responses = responses
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.received.append(Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                ))
                index = min(len(server.received) - 1, len(server.responses) - 1)
                server.deliver(self, server.responses[index])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def deliver(self, handler: BaseHTTPRequestHandler, r: Scripted) -> None:
        if r.hang:
            time.sleep(r.hang)
        body = r.body if r.cut_after is None else r.body[: r.cut_after]
        handler.send_response(r.status)
        for k, v in r.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding"):
                handler.send_header(k, v)
        handler.send_header("content-length", str(len(r.body)))
        handler.end_headers()
        size = r.chunk_size or len(body) or 1
        try:
            for i in range(0, len(body), size):
                handler.wfile.write(body[i : i + size])
                handler.wfile.flush()
                if r.delay:
                    time.sleep(r.delay)
            if r.cut_after is not None:
                handler.connection.shutdown(socket.SHUT_RDWR)
                handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass

    def start(self) -> ReplayServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(*responses: Scripted) -> Iterator[ReplayServer]:
    """Run a replay server for the duration of a `with` block."""
    server = ReplayServer(list(responses)).start()
    try:
        yield server
    finally:
        server.stop()
