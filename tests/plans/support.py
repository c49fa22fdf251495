"""Test doubles for plans: a timed fake model, and an OpenAI-compatible server on 127.0.0.1
(in a thread, so a CLI subprocess can call it) with per-prompt delays and per-model outages.

Server behaviour comes from the request: a prompt containing `[[sleep:1.5]]` is answered after
1.5 s; a model listed in `down` answers 503; `[[hang]]` never answers (until the server stops);
`[[hang_once]]` hangs the first time that prompt is seen and answers after that.
Every request is recorded with its model, prompt and start/end times.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llmswitch import Completion, Request, Usage
from llmswitch.models import Model

_SLEEP = re.compile(r"\[\[sleep:([\d.]+)\]\]")


@dataclass
class TimedModel(Model):
    """Answers after `delay` seconds and records (start, end) of every call."""

    name: str = "timed"
    delay: float = 1.0
    answer: str = "ok"
    cost: float = 0.001
    spans: list[tuple[float, float]] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)

    async def complete(self, request: Request) -> Completion:
        start = time.monotonic()
        self.prompts.append(request.messages[-1].text)
        await asyncio.sleep(self.delay)
        self.spans.append((start, time.monotonic()))
        return Completion(self.answer, "stop", Usage(10, 5), self.cost, "fake", self.name,
                          latency_ms=self.delay * 1000)


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans running at one moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


@dataclass
class Seen:
    """One request the server answered (or refused)."""

    model: str
    prompt: str
    start: float
    end: float = 0.0
    status: int = 200


class Upstream:
    """The OpenAI-compatible stand-in. `down` is a set of model names answering 503."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.down: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                upstream._answer(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def count(self, needle: str) -> int:
        """Requests whose prompt contains `needle`."""
        with self._lock:
            return sum(1 for s in self.seen if needle in s.prompt)

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = str(body.get("model"))
        prompt = "\n".join(str(m.get("content") or "") for m in body.get("messages", []))
        seen = Seen(model, prompt, time.time())
        with self._lock:
            self.seen.append(seen)
        if model in self.down:
            seen.status = 503
            seen.end = time.time()
            self._send(handler, 503, {"error": {"message": "mock outage", "type": "server_error"}})
            return
        with self._lock:
            repeat = sum(1 for s in self.seen if s.prompt == prompt) > 1
        if "[[hang]]" in prompt or ("[[hang_once]]" in prompt and not repeat):
            self._stop.wait(60)
            return
        match = _SLEEP.search(prompt)
        if match:
            time.sleep(float(match.group(1)))
        answer = f"answer from {model}"
        if body.get("response_format"):
            answer = json.dumps({"name": "orders", "model": model})
        seen.end = time.time()
        usage = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
        self._send(handler, 200, {
            "id": "x", "object": "chat.completion", "model": model, "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}]})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def upstream() -> Iterator[Upstream]:
    """A running stand-in server."""
    server = Upstream()
    server.thread.start()
    try:
        yield server
    finally:
        server.close()


def write_config(folder: Path, url: str, ledger: Path | None = None) -> Path:
    """A config whose `openai` provider is the stand-in (no key needed for a local URL)."""
    path = folder / "llmswitch.yaml"
    lines = ["default_model: openai/gpt-4o-mini", "providers:", "  openai:",
             f"    base_url: {url}", "    api_key: test"]
    if ledger is not None:
        lines += ["observe:", f"  ledger: {ledger}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
