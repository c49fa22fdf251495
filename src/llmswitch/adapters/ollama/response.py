"""Response mapping: an Ollama `/api/chat` object → `Reply` (also the final line of a stream).

Tool calls have no ids in Ollama, so they are numbered `call_0`, `call_1`, …; their arguments
arrive as JSON objects and become JSON text. `done_reason` stays `stop` for tool calls, so the
message decides. Usage (`prompt_eval_count`, `eval_count`) is only on the `done` object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.http_errors import body_json, body_snippet
from llmswitch.adapters.ollama.errors import error_from_message
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import FinishReason, Usage

DONE_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """`length` stays `length`; otherwise tool calls, else `stop`."""
    reason = DONE_REASONS.get(raw or "stop", "stop")
    if has_tool_calls and reason == "stop":
        return "tool_calls"
    return reason


def usage_from(data: Mapping[str, Any]) -> Usage:
    """`prompt_eval_count` in, `eval_count` out."""
    return Usage(input_tokens=int(data.get("prompt_eval_count") or 0),
                 output_tokens=int(data.get("eval_count") or 0))


def tool_calls_from(items: Any, start: int = 0) -> tuple[ToolCall, ...]:
    """Tool calls numbered from `start` (ids are synthesised: Ollama sends none)."""
    calls: list[ToolCall] = []
    for item in items if isinstance(items, list) else ():
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict):
            continue
        args = fn.get("arguments")
        text = args if isinstance(args, str) else json.dumps(
            {} if args is None else args, ensure_ascii=False)
        call_id = item.get("id") or f"call_{start + len(calls)}"
        calls.append(ToolCall(str(call_id), str(fn.get("name") or ""), text or "{}"))
    return tuple(calls)


def message_parts(data: Mapping[str, Any]) -> tuple[str, str, Any]:
    """Text, thinking and raw tool calls of one object (`/api/generate`'s `response` too)."""
    message = data.get("message")
    if isinstance(message, dict):
        return (str(message.get("content") or ""), str(message.get("thinking") or ""),
                message.get("tool_calls"))
    return str(data.get("response") or ""), str(data.get("thinking") or ""), None


def parse_response(body: bytes) -> Reply:
    """A non-streamed (`stream: false`) 200 body."""
    data = body_json(body)
    if not isinstance(data, dict):
        raise ResponseError(f"the response is not a JSON object: {body_snippet(body)!r}")
    if data.get("error"):
        raise error_from_message(str(data["error"]), None, None, data)
    if "choices" in data:  # an OpenAI-shaped answer (a /v1 server or proxy at this URL)
        from llmswitch.adapters.openai_chat.response import parse_response as parse_chat

        return parse_chat(body)[0]
    text, thinking, raw_calls = message_parts(data)
    calls = tool_calls_from(raw_calls)
    raw = data.get("done_reason")
    return Reply(
        text=text,
        finish_reason=finish_reason(raw, bool(calls)),
        usage=usage_from(data),
        tool_calls=calls,
        reasoning=thinking,
        raw_finish_reason=raw,
        response_model=data.get("model"),
        raw=data,
    )
