"""Turn a finished request into ledger rows: one per attempt in its trace tree (failed
attempts that were billed included), plus the trace itself. Pure functions, no I/O."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from llmswitch.observe.trace import Span
from llmswitch.request import Request

COLUMNS = (
    "ts", "request_id", "route", "attempt", "provider", "model", "status", "error_type",
    "http_status", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
    "cost_usd", "latency_ms", "ttft_ms", "retry_wait_s", "served", "cache_write_tokens",
)


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One request's trace for the local store."""

    request_id: str
    ts: float
    route: str
    status: str
    provider: str | None
    model: str | None
    cost_usd: float | None
    duration_ms: float
    trace_json: str


def attempt_rows(route: str, trace: Span | None, request_id: str,
                 served_ok: bool) -> list[tuple[Any, ...]]:
    """Ledger rows (in `COLUMNS` order) for every attempt span below `trace`."""
    if trace is None:
        return []
    attempts = trace.attempts()
    last_ok = max((i for i, s in enumerate(attempts) if s.status == "ok"), default=-1)
    rows = []
    for i, span in enumerate(attempts):
        a = span.attributes
        rows.append((
            span.start_time, request_id, route, i + 1,
            a.get("gen_ai.provider.name"), a.get("gen_ai.request.model"), span.status,
            (span.error or {}).get("type") if span.status == "error" else None,
            a.get("http.response.status_code"),
            int(a.get("gen_ai.usage.input_tokens") or 0),
            int(a.get("gen_ai.usage.output_tokens") or 0),
            int(a.get("gen_ai.usage.cached_input_tokens") or 0),
            int(a.get("gen_ai.usage.reasoning_tokens") or 0),
            a.get("llmswitch.cost_usd"), span.duration_ms, a.get("llmswitch.ttft_ms"),
            float(a.get("llmswitch.retry_wait_s") or 0.0),
            1 if served_ok and i == last_ok else 0,
            int(a.get("gen_ai.usage.cache_write_tokens") or 0),
        ))
    return rows


def content_attributes(request: Request, output: str | None) -> dict[str, Any]:
    """Prompt and answer as GenAI attributes (only when the config opts in)."""
    out: dict[str, Any] = {"gen_ai.input.messages": [
        {"role": m.role, "content": m.text} for m in request.messages]}
    if output is not None:
        out["gen_ai.output.messages"] = [{"role": "assistant", "content": output}]
    return out


def trace_record(route: str, trace: Span | None, request_id: str,
                 extra: dict[str, Any] | None = None) -> TraceRecord:
    """The stored form of a trace (its public JSON, with optional extra root attributes)."""
    data: dict[str, Any] = trace.to_dict() if trace is not None else {
        "name": route, "kind": "step", "status": "error", "duration_ms": 0.0,
        "attributes": {}, "children": []}
    if extra:
        data["attributes"] = {**data["attributes"], **extra}
    attempts = trace.attempts() if trace is not None else []
    served = next((s for s in reversed(attempts) if s.status == "ok"), None)
    costs = [s.attributes.get("llmswitch.cost_usd") for s in attempts]
    known = [c for c in costs if isinstance(c, (int, float))]
    return TraceRecord(
        request_id=request_id,
        ts=trace.start_time if trace is not None else time.time(),
        route=route,
        status=str(data["status"]),
        provider=served.attributes.get("gen_ai.provider.name") if served else None,
        model=served.attributes.get("gen_ai.request.model") if served else None,
        cost_usd=sum(known) if known else None,
        duration_ms=float(data["duration_ms"]),
        trace_json=json.dumps(data, default=str, ensure_ascii=False),
    )


def new_request_id() -> str:
    """A unique id for one top-level request."""
    return uuid.uuid4().hex
