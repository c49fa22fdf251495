"""Response mapping: a Responses API `response` object → `Reply`.

Output items: `message` (its `output_text` parts are the answer, `refusal` parts a refusal),
`function_call` (`call_id`, `name`, `arguments`), `reasoning` (reasoning text or summary).
`status`: `completed`; `incomplete` with `incomplete_details.reason` `max_output_tokens`
(→ `length`) or `content_filter`; `failed` (its `error` is raised).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.http_errors import body_json, body_snippet
from llmswitch.adapters.openai_responses.errors import in_band_error
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import FinishReason, Usage

INCOMPLETE_REASONS: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
}


def usage_from(data: Mapping[str, Any] | None) -> Usage:
    """Usage with cached input and reasoning sub-counts."""
    if not data:
        return Usage()
    input_details = data.get("input_tokens_details") or {}
    output_details = data.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("input_tokens") or 0),
        output_tokens=int(data.get("output_tokens") or 0),
        cached_input_tokens=int(input_details.get("cached_tokens") or 0),
        reasoning_tokens=int(output_details.get("reasoning_tokens") or 0),
    )


def finish_reason(
    status: str | None, incomplete_reason: str | None, has_tool_calls: bool, refusal: str | None
) -> FinishReason:
    """The neutral finish reason from the response status and what the output holds."""
    if status == "incomplete":
        return INCOMPLETE_REASONS.get(incomplete_reason or "", "length")
    if refusal:
        return "content_filter"
    if has_tool_calls:
        return "tool_calls"
    return "stop"


def parse_response(body: bytes) -> Reply:
    """A 200 body as a reply (a `failed` response or an error object is raised)."""
    data = body_json(body)
    if not isinstance(data, dict):
        raise ResponseError(f"the response is not a JSON object: {body_snippet(body)!r}")
    if isinstance(data.get("error"), Mapping) and not data.get("output"):
        raise in_band_error(data)
    return reply_from_response(data)


def reply_from_response(data: Mapping[str, Any]) -> Reply:
    """The reply for a finished `response` object (also the payload of a stream's last event)."""
    status = data.get("status")
    if status == "failed" or (status is None and isinstance(data.get("error"), Mapping)):
        raise in_band_error(data if data.get("error") else {"message": "the response failed"})
    output = data.get("output")
    if not isinstance(output, list):
        raise ResponseError("the response has no output list", body=dict(data))
    text, refusal, reasoning, calls = read_output(output)
    details = data.get("incomplete_details") or {}
    raw_reason = details.get("reason") if isinstance(details, Mapping) else None
    return Reply(
        text=text,
        finish_reason=finish_reason(status, raw_reason, bool(calls), refusal),
        usage=usage_from(data.get("usage")),
        tool_calls=calls,
        refusal=refusal,
        reasoning=reasoning,
        raw_finish_reason=str(raw_reason or status or "") or None,
        response_model=data.get("model"),
        raw=dict(data),
    )


def read_output(
    items: list[Any],
) -> tuple[str, str | None, str, tuple[ToolCall, ...]]:
    """Text, refusal, reasoning and tool calls from the output items, in order."""
    text: list[str] = []
    refusal: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    text.append(str(part.get("text") or ""))
                elif part.get("type") == "refusal":
                    refusal.append(str(part.get("refusal") or ""))
        elif kind == "function_call":
            calls.append(tool_call(item, len(calls)))
        elif kind == "reasoning":
            reasoning.append(reasoning_text(item))
    return "".join(text), "".join(refusal) or None, "".join(reasoning), tuple(calls)


def tool_call(item: Mapping[str, Any], index: int) -> ToolCall:
    """A `function_call` item as a tool call (its `call_id` is what a result must echo)."""
    args = item.get("arguments")
    return ToolCall(
        id=str(item.get("call_id") or item.get("id") or f"call_{index}"),
        name=str(item.get("name") or ""),
        arguments=args if isinstance(args, str) and args else _dumps(args),
    )


def reasoning_text(item: Mapping[str, Any]) -> str:
    """A reasoning item's text: its `reasoning_text` content, else its summary."""
    parts = [p for p in item.get("content") or () if isinstance(p, Mapping)]
    if not parts:
        parts = [p for p in item.get("summary") or () if isinstance(p, Mapping)]
    return "".join(str(p.get("text") or "") for p in parts)


def _dumps(value: Any) -> str:
    return "{}" if value in (None, "") else json.dumps(value)
