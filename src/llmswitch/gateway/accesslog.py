"""The access log: one JSON object per request, one per line (`gateway.access_log`).

A line says who asked (the key's id and name, never the key), what for (API, route, served
provider and model), how it ended (status, error kind, outcome) and what it cost (tokens, USD,
time, time to the first event of a stream). Prompts and answers appear only with
`gateway.log_content: true`. Lines are buffered and written at most every 0.2 s (and when
the gateway stops), so logging costs the request path one `orjson.dumps` and a list append.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from llmswitch.gateway.protocols.common import dumps

if TYPE_CHECKING:
    from llmswitch import CallRecord, Completion, Usage


@dataclass(slots=True)
class Outcome:
    """What happened to one request (filled in as it runs; metrics and the log read it)."""

    api: str
    method: str
    path: str
    started: float
    """`time.perf_counter()` when the request arrived."""
    status: int = 0
    trace_id: str | None = None
    route: str = ""
    """The model, alias or route name asked for (empty until the request parsed)."""
    known: bool = False
    """Whether `route` named something the switch serves (else it is not a metric label)."""
    provider: str = ""
    model: str = ""
    key_id: str = ""
    key_name: str = ""
    stream: bool = False
    error: str | None = None
    """The error table's kind, when the request failed (also after a stream started)."""
    outcome: str = "ok"
    """ok | error | client_gone (disconnected) | cancelled (server stopping)."""
    first_event: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    client: str = ""
    prompt: Any = None
    answer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def served_name(self) -> str:
        """`provider/model` that served the request (empty when none did)."""
        if self.provider and self.model and not self.model.startswith(self.provider + "/"):
            return f"{self.provider}/{self.model}"
        return self.model or self.provider

    def served(self, completion: Completion, content: bool) -> None:
        """The answer: who served it (and its text, when content is logged)."""
        self.provider, self.model = completion.provider, completion.model
        if content:
            self.answer = completion.text

    def failed(self, kind: str) -> None:
        """The request failed with the error table's `kind`."""
        self.error = kind
        self.outcome = "error"

    def spent(self, record: CallRecord | None, usage: Usage | None,
              cost: float | None) -> None:
        """What the call was billed (the ledger's figures), and who served it when no
        answer said so."""
        if usage is not None:
            self.input_tokens, self.output_tokens = usage.input_tokens, usage.output_tokens
        self.cost_usd = cost
        if not self.model and record is not None:
            provider, model = record.serving
            self.provider, self.model = provider or "", model or ""
            if not self.model and record.completion is not None:
                self.provider = record.completion.provider
                self.model = record.completion.model

    def line(self, now: float, wall: float, content: bool) -> bytes:
        """The JSON line (content only when asked)."""
        out: dict[str, Any] = {
            "ts": round(wall, 3), "trace_id": self.trace_id, "method": self.method,
            "path": self.path, "api": self.api, "status": self.status,
            "outcome": self.outcome, "error": self.error, "route": self.route or None,
            "provider": self.provider or None, "model": self.model or None,
            "key_id": self.key_id or None, "key_name": self.key_name or None,
            "stream": self.stream, "duration_ms": round((now - self.started) * 1000, 3),
            "ttft_ms": (round((self.first_event - self.started) * 1000, 3)
                        if self.first_event is not None else None),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd, "client": self.client or None,
        }
        if content:
            out["prompt"] = self.prompt
            out["answer"] = self.answer
        out.update(self.extra)
        return dumps(out) + b"\n"


class AccessLog:
    """Buffers lines and writes them to stderr or a file (`flush` on a timer and at exit)."""

    def __init__(self, target: bool | str, content: bool = False,
                 stream: IO[bytes] | None = None) -> None:
        self.enabled = target is not False
        self.content = content
        self._own = False
        self._out: IO[bytes] | None = None
        if stream is not None:
            self._out = stream
        elif isinstance(target, str):
            self._out = open(target, "ab")  # noqa: SIM115 - closed in close()
            self._own = True
        elif target is True:
            self._out = sys.stderr.buffer
        self._lines: list[bytes] = []
        self._size = 0

    def write(self, outcome: Outcome, now: float | None = None) -> None:
        """Queue one request's line."""
        if not self.enabled:
            return
        line = outcome.line(time.perf_counter() if now is None else now, time.time(),
                            self.content)
        self._lines.append(line)
        self._size += len(line)
        if self._size > 256 * 1024:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        if not self._lines or self._out is None:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        self._size = 0
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            pass  # a closed stderr or a full disk must not fail requests

    def close(self) -> None:
        """Flush and close a file the log opened."""
        self.flush()
        if self._own and self._out is not None:
            self._out.close()
            self._out = None
