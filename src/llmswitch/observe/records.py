"""Turn a finished request into ledger rows: one per attempt in its trace tree (failed
attempts that were billed included), plus the trace itself. Pure functions, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from llmswitch._json import _DUMPS_OPTIONS, dumps_text
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
                 served: Any = _UNKNOWN, tags: Any = _UNKNOWN) -> list[tuple[Any, ...]]:
    """Ledger rows (in `COLUMNS` order) for every attempt of a call: those in its trace tree
    and those registered by provider models that the tree does not hold (cancelled branches).
    `attempts` (`record.all_attempts()`), `served` and `tags` (`tags_json(record.tags)`) may
    be passed when already known."""
    if attempts is None:
        attempts = record.all_attempts()
    if not attempts:
        return []
    if served is _UNKNOWN:
        served = served_attempt(record)
    if tags is _UNKNOWN:
        tags = tags_json(record.tags)
    call_tags = record.tags
    key_id = call_tags.get("key_id") if call_tags else None
    run_id = call_tags.get("run_id") if call_tags else None
    trace_id, name = record.trace_id, record.name
    rows = []
    for i, span in enumerate(attempts, 1):
        a = span.attributes
        failed = span.status == "error"
        status = "cut" if failed and a.get("llmswitch.stream_cut") else span.status
        rows.append((
            span.start_time, trace_id, name, i,
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
            a.get(ATTEMPT_ID) or f"{trace_id}-t{i}",
            1 if a.get("llmswitch.usage_estimated") else 0,
            key_id, run_id, tags,
        ))
    return rows


def served_attempt(record: CallRecord) -> Span | None:
    """The attempt whose answer the caller got (the last successful one in the tree)."""
    completion = record.completion
    if completion is None or completion.trace is None:
        return None
    for span in reversed(completion.trace.attempts()):
        if span.status == "ok":
            return span
    return None


def tags_json(tags: Mapping[str, str]) -> str | None:
    """The `tags` column: the call's tags as sorted JSON, `None` without tags."""
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
    return TraceRecord(*trace_row(record, extra, attempts, served))


def trace_row(record: CallRecord, extra: dict[str, Any] | None = None,
              attempts: list[Span] | None = None, served: Any = _UNKNOWN,
              tags: Any = _UNKNOWN) -> tuple[Any, ...]:
    """`trace_record` as the row the ledger inserts (`TraceRecord`'s fields, in order),
    without building the record."""
    trace = record.trace
    status = record.status if record.status not in (None, "ok", "error") else None
    if attempts is None:
        attempts = record.all_attempts()
    if served is _UNKNOWN:
        served = served_attempt(record)
    if tags is _UNKNOWN:
        tags = tags_json(record.tags)
    known = [c for s in attempts
             if isinstance(c := s.attributes.get("llmswitch.cost_usd"), (int, float))]
    call_tags = record.tags
    return (
        record.trace_id, trace.start_time, record.name, str(status or trace.status),
        served.attributes.get("gen_ai.provider.name") if served else None,
        served.attributes.get("gen_ai.request.model") if served else None,
        sum(known) if known else None,
        float(trace.duration_ms) or record.duration_ms,
        trace_json(trace, record.trace_id, status, extra),
        call_tags.get("key_id") if call_tags else None,
        call_tags.get("run_id") if call_tags else None,
        tags,
    )


def trace_json(trace: Span, trace_id: str, status: str | None = None,
               extra: Mapping[str, Any] | None = None) -> str:
    """The stored trace JSON: `trace.to_dict()` plus `trace_id` (the root's `status` and extra
    attributes replaced when given), exactly as `dumps_text` writes that dict.

    Encoded span by span (orjson for each span's values, joined as bytes), which is 3x
    cheaper than building the dict first; anything unusual (a value orjson refuses, a tree
    deeper than orjson nests, attributes that are not a dict) takes the dict's path."""
    out: list[bytes] = []
    try:
        _span_json(trace, out, 0, status, extra, b',"trace_id":' + _dumps(trace_id))
    except (orjson.JSONEncodeError, _Unusual):
        data = trace.to_dict()
        if status is not None:
            data["status"] = status
        if extra:
            data["attributes"] = {**data["attributes"], **extra}
        data["trace_id"] = trace_id
        return dumps_text(data)
    return b"".join(out).decode()


class _Unusual(Exception):
    """A span `trace_json` leaves to the dict's path."""


_MAX_DEPTH = 60  # orjson nests 254 levels; a span takes 2 (its dict, its children list)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=str, option=_DUMPS_OPTIONS)


def _span_json(span: Span, out: list[bytes], depth: int, status: str | None = None,
               extra: Mapping[str, Any] | None = None, tail: bytes = b"") -> None:
    """Append `span.to_dict()`'s JSON (plus `tail` before its closing brace) to `out`."""
    attributes, error, children = span.attributes, span.error, span.children
    if (depth > _MAX_DEPTH or type(attributes) is not dict or type(children) is not list
            or (error is not None and type(error) is not dict)):
        raise _Unusual
    if extra:
        attributes = {**attributes, **extra}
    # One orjson call per span: a dict's JSON is its values' JSON joined in insertion order,
    # so the span's own fields are encoded as a dict and its children spliced in after.
    head = {"name": span.name, "kind": span.kind, "status": status or span.status,
            "duration_ms": span.duration_ms, "attributes": attributes}
    if error is not None:
        head["error"] = error
    if not children:
        head["children"] = children
        out.append(_dumps(head)[:-1] + tail + b"}")
        return
    out.append(_dumps(head)[:-1] + b',"children":[')
    for i, child in enumerate(children):
        if i:
            out.append(b",")
        if type(child) is not Span:
            raise _Unusual
        _span_json(child, out, depth + 1)
    out.append(b"]" + tail + b"}")
