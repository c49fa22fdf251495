"""Response mapping: Converse JSON → `Reply` (text, tool calls, stop reason, usage)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.bedrock.request import STRUCTURED_TOOL
from llmswitch.adapters.http_errors import body_json, body_snippet
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import FinishReason, Usage

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})


def finish_reason(raw: str | None, has_tool_calls: bool, usage: Usage) -> FinishReason:
    """The neutral finish reason. `malformed_*` raise: the answer is unusable (retryable)."""
    if raw in MALFORMED:
        raise ResponseError(f"the model produced unusable output (stopReason {raw})",
                            hint="retry or fall back to another model",
                            usage=usage if usage.total_tokens else None)
    if raw == "tool_use" and not has_tool_calls:
        return "stop"  # the only tool call was the structured-output answer
    if has_tool_calls and raw in (None, "end_turn"):
        return "tool_calls"
    return STOP_REASONS.get(raw or "end_turn", "stop")


def usage_from(data: Mapping[str, Any] | None) -> Usage:
    """Usage; `input_tokens` includes cache reads and writes (Bedrock counts them apart)."""
    if not data:
        return Usage()
    read = int(data.get("cacheReadInputTokens") or 0)
    write = int(data.get("cacheWriteInputTokens") or 0)
    return Usage(
        input_tokens=int(data.get("inputTokens") or 0) + read + write,
        output_tokens=int(data.get("outputTokens") or 0),
        cached_input_tokens=read,
        cache_write_tokens=write,
    )


def tool_input_text(value: Any) -> str:
    """A `toolUse.input` as JSON text (the whole object arrives at once when not streaming)."""
    if isinstance(value, str):
        return value or "{}"
    return json.dumps({} if value is None else value, ensure_ascii=False)


def parse_blocks(content: Any) -> tuple[str, str, tuple[ToolCall, ...]]:
    """Text, reasoning and tool calls of an output message's content blocks."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            text.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            args = tool_input_text(use.get("input"))
            if use.get("name") == STRUCTURED_TOOL:
                text.append(args)
            else:
                calls.append(ToolCall(str(use.get("toolUseId") or f"call_{len(calls)}"),
                                      str(use.get("name") or ""), args))
        elif isinstance(block.get("reasoningContent"), dict):
            reasoning_text = block["reasoningContent"].get("reasoningText") or {}
            reasoning.append(str(reasoning_text.get("text") or ""))
    return "".join(text), "".join(reasoning), tuple(calls)


def reply_from(data: Mapping[str, Any]) -> Reply:
    """A Converse response object as a reply."""
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict):
        raise ResponseError("the Converse response has no output message", body=dict(data))
    text, reasoning, calls = parse_blocks(message.get("content"))
    usage = usage_from(data.get("usage"))
    raw = data.get("stopReason")
    return Reply(
        text=text,
        finish_reason=finish_reason(raw, bool(calls), usage),
        usage=usage,
        tool_calls=calls,
        reasoning=reasoning,
        raw_finish_reason=raw,
        raw=dict(data),
    )


def parse_response(body: bytes) -> Reply:
    """A 200 Converse body as a reply."""
    data = body_json(body)
    if not isinstance(data, dict):
        raise ResponseError(f"the response is not a JSON object: {body_snippet(body)!r}")
    return reply_from(data)
