"""Response mapping: Anthropic Messages JSON → `Reply` (text, tool calls, finish, usage)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llmswitch.adapters.anthropic.request import JSON_TOOLS, JSON_VALUE_TOOL
from llmswitch.adapters.base import Reply
from llmswitch.messages import ToolCall
from llmswitch.results import FinishReason, Usage

FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server-tool loop paused; raw_finish_reason keeps the detail
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """The neutral finish reason (tool calls win over `end_turn`)."""
    mapped = FINISH_REASONS.get(raw or "end_turn", "stop")
    if has_tool_calls and mapped == "stop" and raw != "pause_turn":
        return "tool_calls"
    if not has_tool_calls and mapped == "tool_calls":
        return "stop"  # only the emulated JSON tool was called
    return mapped


def usage_from(data: Mapping[str, Any] | None, base: Usage | None = None) -> Usage:
    """Usage whose `input_tokens` includes cache reads and writes (Anthropic's excludes them).

    Fields missing from `data` keep their value from `base` (a stream's `message_start`), so a
    `message_delta` that only reports `output_tokens` does not reset the input counts.
    """
    base = base or Usage()
    if not data:
        return base
    plain_prev = base.input_tokens - base.cached_input_tokens - base.cache_write_tokens
    plain = _count(data, "input_tokens", plain_prev)
    read = _count(data, "cache_read_input_tokens", base.cached_input_tokens)
    write = _count(data, "cache_creation_input_tokens", base.cache_write_tokens)
    return Usage(
        input_tokens=plain + read + write,
        output_tokens=_count(data, "output_tokens", base.output_tokens),
        cached_input_tokens=read,
        cache_write_tokens=write,
    )


def _count(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    return int(value) if isinstance(value, (int, float)) else default


def json_answer(name: str, arguments: Any) -> str:
    """The text of an emulated JSON answer from the forced tool's input."""
    if name == JSON_VALUE_TOOL and isinstance(arguments, Mapping):
        arguments = arguments.get("value")
    return json.dumps(arguments, ensure_ascii=False)


def parse_message(data: Mapping[str, Any]) -> Reply:
    """A `message` object (a non-streaming body, or one assembled from a stream)."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    emulated: str | None = None
    for block in _blocks(data.get("content")):
        kind = block.get("type")
        if kind == "text":
            text.append(str(block.get("text") or ""))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
        elif kind == "tool_use" and block.get("name") in JSON_TOOLS:
            emulated = str(block["name"])
            text.append(json_answer(emulated, block.get("input")))
        elif kind == "tool_use":
            calls.append(ToolCall(str(block.get("id") or f"toolu_{len(calls)}"),
                                  str(block.get("name") or ""),
                                  json.dumps(block.get("input") or {}, ensure_ascii=False)))
    raw = data.get("stop_reason")
    return build_reply(
        text="".join(text) if emulated is None else text[-1],
        raw_finish=raw if isinstance(raw, str) else None,
        usage=usage_from(data.get("usage")),
        calls=tuple(calls),
        reasoning="".join(reasoning),
        model=data.get("model"),
        stop_details=data.get("stop_details"),
        raw=data,
        emulated=emulated,
    )


def _blocks(content: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(content, list):
        return [b for b in content if isinstance(b, Mapping)]
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return []


def build_reply(
    *,
    text: str,
    raw_finish: str | None,
    usage: Usage,
    calls: tuple[ToolCall, ...],
    reasoning: str,
    model: Any,
    stop_details: Any,
    raw: Any,
    emulated: str | None,
) -> Reply:
    """The reply; a refusal is `content_filter` with its explanation in `refusal`.

    When the answer came through the forced JSON tool, `raw_finish_reason` reads
    `tool_use:<tool name>` so the emulation stays visible.
    """
    finish = finish_reason(raw_finish, bool(calls))
    refusal = None
    if finish == "content_filter":
        detail = stop_details.get("explanation") if isinstance(stop_details, Mapping) else None
        refusal = str(detail or text or "the model declined to answer (stop_reason=refusal)")
    raw_reason = raw_finish
    if emulated is not None and raw_finish == "tool_use":
        raw_reason = f"tool_use:{emulated}"
    return Reply(
        text=text,
        finish_reason=finish,
        usage=usage,
        tool_calls=calls,
        refusal=refusal,
        reasoning=reasoning,
        raw_finish_reason=raw_reason,
        response_model=model if isinstance(model, str) else None,
        raw=raw,
    )
