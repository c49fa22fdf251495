"""The trace tree carried by every completion.

A `Span` is one step: a provider call (an *attempt*) or a strategy's decision. Attribute names
follow the OpenTelemetry GenAI conventions (`gen_ai.*`); routing decisions use `llmswitch.*`.
Message content never goes into a span unless a caller puts it there on purpose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

SpanKind = Literal["attempt", "strategy", "step"]
SpanStatus = Literal["ok", "error", "cancelled", "abandoned"]
"""`cancelled`: the caller cancelled the call; `abandoned`: the caller stopped reading a
stream. Only `ok` is a success. (A stream that failed after its first token is an `error`
span with `llmswitch.stream_cut`; its ledger row says `cut`.)"""
_STATUSES = frozenset(("ok", "error", "cancelled", "abandoned"))


@dataclass(slots=True)
class Span:
    """One node of a trace: a name, a kind, attributes, children and an outcome."""

    name: str
    kind: SpanKind = "attempt"
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[Span] = field(default_factory=list)
    status: SpanStatus = "ok"
    error: dict[str, Any] | None = None
    start_time: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    def child(self, span: Span | None) -> Span | None:
        """Attach `span` (if any) as a child and return it."""
        if span is not None:
            self.children.append(span)
        return span

    def fail(self, error: BaseException) -> Span:
        """Mark this span failed with an error's type and message."""
        self.status = "error"
        self.error = {
            "type": getattr(error, "type", type(error).__name__),
            "message": str(error),
        }
        return self

    def finish(self, started: float) -> Span:
        """Set the duration from a `time.perf_counter()` start."""
        self.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        return self

    def walk(self) -> list[Span]:
        """Return this span and all its descendants, depth first."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out

    def attempts(self) -> list[Span]:
        """Every provider call below (and including) this span, depth first."""
        if not self.children:  # a direct model call's trace: one attempt
            return [self] if self.kind == "attempt" else []
        out: list[Span] = []
        _collect_attempts(self, out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (the CLI's `trace` field)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "attributes": dict(self.attributes),
        }
        if self.error is not None:
            out["error"] = dict(self.error)
        out["children"] = [c.to_dict() for c in self.children]
        return out


def _collect_attempts(span: Span, out: list[Span]) -> None:
    if span.kind == "attempt":
        out.append(span)
    for child in span.children:
        _collect_attempts(child, out)


def span_from_dict(data: dict[str, Any]) -> Span:
    """Rebuild a span tree from its `to_dict` JSON (e.g. a stored trace)."""
    return Span(
        name=str(data.get("name", "")),
        kind=data.get("kind", "attempt"),
        attributes=dict(data.get("attributes") or {}),
        children=[span_from_dict(c) for c in data.get("children") or ()],
        status=data["status"] if data.get("status") in _STATUSES else "ok",
        error=dict(data["error"]) if data.get("error") else None,
        start_time=float(data.get("start_time", 0.0)),
        duration_ms=float(data.get("duration_ms", 0.0)),
    )
