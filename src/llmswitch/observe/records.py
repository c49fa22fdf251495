"""Turn a finished request into ledger rows: one per attempt in its trace tree (failed
attempts that were billed included), plus the trace itself. Pure functions, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmswitch._json import dumps_text
from llmswitch.calls import ATTEMPT_ID
from llmswitch.observe.trace import Span
from llmswitch.request import Request

if TYPE_CHECKING:
    from llmswitch.calls import CallRecord

COLUMNS = (
    "ts", "request_id", "route", "attempt", "provider", "model", "status", "error_type",
    "http_status", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
    "cost_usd", "latency_ms", "ttft_ms", "retry_wait_s", "served", "cache_write_tokens",
    "attempt_id", "usage_estimated", "key_id", "run_id", "tags",
)
"""An attempt row's columns. `status`: ok, error, cut (a stream that failed after its first
token), cancelled, abandoned (the caller stopped reading). `request_id` is the call's trace id."""

_UNKNOWN: Any = object()

TAG_COLUMNS = ("key_id", "run_id")
"""Tags that get their own (indexed) columns besides the `tags` JSON."""


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
    key_id: str | None = None
    run_id: str | None = None
    tags: str | None = None


def attempt_rows(record: CallRecord, attempts: list[Span] | None = None,
                 served: Any = _UNKNOWN) -> list[tuple[Any, ...]]:
    """Ledger rows (in `COLUMNS` order) for every attempt of a call: those in its trace tree
    and those registered by provider models that the tree does not hold (cancelled branches).
    `attempts` (`record.all_attempts()`) and `served` may be passed when already known."""
    if attempts is None:
        attempts = record.all_attempts()
    if not attempts:
        return []
    if served is _UNKNOWN:
        served = served_attempt(record)
    tags = _tags_json(record.tags)
    key_id, run_id = (record.tags.get(k) for k in TAG_COLUMNS)
    rows = []
    for i, span in enumerate(attempts):
        a = span.attributes
        failed = span.status == "error"
        status = "cut" if failed and a.get("llmswitch.stream_cut") else span.status
        rows.append((
            span.start_time, record.trace_id, record.name, i + 1,
            a.get("gen_ai.provider.name"), a.get("gen_ai.request.model"), status,
            (span.error or {}).get("type") if failed else None,
            a.get("http.response.status_code"),
            int(a.get("gen_ai.usage.input_tokens") or 0),
            int(a.get("gen_ai.usage.output_tokens") or 0),
            int(a.get("gen_ai.usage.cached_input_tokens") or 0),
            int(a.get("gen_ai.usage.reasoning_tokens") or 0),
            a.get("llmswitch.cost_usd"), span.duration_ms, a.get("llmswitch.ttft_ms"),
            float(a.get("llmswitch.retry_wait_s") or 0.0),
            1 if span is served else 0,
            int(a.get("gen_ai.usage.cache_write_tokens") or 0),
            a.get(ATTEMPT_ID) or f"{record.trace_id}-t{i + 1}",
            1 if a.get("llmswitch.usage_estimated") else 0,
            key_id, run_id, tags,
        ))
    return rows


def served_attempt(record: CallRecord) -> Span | None:
    """The attempt whose answer the caller got (the last successful one in the tree)."""
    if record.completion is None or record.completion.trace is None:
        return None
    return next((s for s in reversed(record.completion.trace.attempts()) if s.status == "ok"),
                None)


def _tags_json(tags: Mapping[str, str]) -> str | None:
    return json.dumps(dict(tags), ensure_ascii=False, sort_keys=True) if tags else None


def content_attributes(request: Request, output: str | None) -> dict[str, Any]:
    """Prompt and answer as GenAI attributes (only when the config opts in)."""
    out: dict[str, Any] = {"gen_ai.input.messages": [
        {"role": m.role, "content": m.text} for m in request.messages]}
    if output is not None:
        out["gen_ai.output.messages"] = [{"role": "assistant", "content": output}]
    return out


def trace_record(record: CallRecord, extra: dict[str, Any] | None = None,
                 attempts: list[Span] | None = None,
                 served: Any = _UNKNOWN) -> TraceRecord:
    """The stored form of a call's trace (its public JSON, with optional extra root attributes
    and the call's status: ok, error, cancelled or abandoned). `attempts` and `served` as for
    `attempt_rows`."""
    trace = record.trace
    data: dict[str, Any] = trace.to_dict()
    data["trace_id"] = record.trace_id
    if record.status not in (None, "ok", "error"):
        data["status"] = record.status
    if extra:
        data["attributes"] = {**data["attributes"], **extra}
    if attempts is None:
        attempts = record.all_attempts()
    if served is _UNKNOWN:
        served = served_attempt(record)
    costs = [s.attributes.get("llmswitch.cost_usd") for s in attempts]
    known = [c for c in costs if isinstance(c, (int, float))]
    return TraceRecord(
        request_id=record.trace_id,
        ts=trace.start_time,
        route=record.name,
        status=str(data["status"]),
        provider=served.attributes.get("gen_ai.provider.name") if served else None,
        model=served.attributes.get("gen_ai.request.model") if served else None,
        cost_usd=sum(known) if known else None,
        duration_ms=float(data["duration_ms"]) or record.duration_ms,
        trace_json=dumps_text(data),
        key_id=record.tags.get("key_id"),
        run_id=record.tags.get("run_id"),
        tags=_tags_json(record.tags),
    )
