"""Response mapping: Chat Completions JSON → `Reply` (text, tool calls, finish, usage)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.http_errors import body_json, body_snippet
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import FinishReason, Usage

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "end_turn": "stop",
    "max_tokens": "length",
}


_UNPARSED: Any = object()

ERROR_FINISH_REASONS = frozenset({"error", "insufficient_system_resource"})
"""Finish reasons that mean the provider failed mid-answer (OpenRouter, DeepSeek)."""


def finish_reason(raw: str | None, has_tool_calls: bool, refusal: str | None) -> FinishReason:
    """The neutral finish reason; tool calls and refusals are read from the message too."""
    if refusal:
        return "content_filter"
    if has_tool_calls and raw in (None, "stop", "tool_calls", "function_call"):
        return "tool_calls"
    return FINISH_REASONS.get(raw or "stop", "stop")


def usage_from(data: Mapping[str, Any] | None) -> Usage:
    """Usage with cached and reasoning sub-counts (OpenAI and DeepSeek spellings)."""
    if not data:
        return Usage()
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = data.get("prompt_cache_hit_tokens", 0)
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cached_input_tokens=int(cached or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def parse_tool_calls(items: Any) -> tuple[ToolCall, ...]:
    """Complete tool calls from a message."""
    calls = []
    for i, item in enumerate(items or ()):
        fn = item.get("function") or {}
        args = fn.get("arguments")
        calls.append(ToolCall(
            id=str(item.get("id") or f"call_{i}"),
            name=str(fn.get("name") or ""),
            arguments=args if isinstance(args, str) else _dumps(args),
        ))
    return tuple(calls)


def _dumps(value: Any) -> str:
    import json

    return "{}" if value is None else json.dumps(value)


def parse_response(body: bytes, data: Any = _UNPARSED) -> tuple[Reply, Mapping[str, Any] | None]:
    """The reply, plus the error object if a 200 body carried one (OpenRouter does).
    `data`: the body already parsed (`body_json`), when the caller has it."""
    if data is _UNPARSED:
        data = body_json(body)
    if not isinstance(data, dict):
        raise ResponseError(f"the response is not a JSON object: {body_snippet(body)!r}")
    error = data.get("error")
    if isinstance(error, dict):
        return Reply("", "stop", usage_from(data.get("usage")), raw=data), error
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ResponseError("the response has no choices", body=data)
    choice = choices[0]
    message = choice.get("message") or {}
    calls = parse_tool_calls(message.get("tool_calls"))
    refusal = message.get("refusal") or None
    raw_finish = choice.get("finish_reason")
    if raw_finish in ERROR_FINISH_REASONS:
        return Reply("", "stop", usage_from(data.get("usage")), raw=data), {
            "code": 502, "message": f"the provider ended the answer with finish_reason "
            f"{raw_finish!r}"}
    content = message.get("content")
    reply = Reply(
        text=content if isinstance(content, str) else _content_text(content),
        finish_reason=finish_reason(raw_finish, bool(calls), refusal),
        usage=usage_from(data.get("usage")),
        tool_calls=calls,
        refusal=refusal,
        reasoning=str(message.get("reasoning_content") or message.get("reasoning") or ""),
        raw_finish_reason=raw_finish,
        response_model=data.get("model"),
        raw=data,
    )
    return reply, None


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
