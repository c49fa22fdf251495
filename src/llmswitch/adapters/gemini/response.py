"""Response mapping: Gemini `GenerateContentResponse` JSON → `Reply`.

Tool calls are read from `functionCall` parts (Gemini ends them with `STOP`); a safety-blocked
candidate (or a blocked prompt) is `content_filter`; usage counts thoughts as output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.gemini.request import SIGNATURE_MARK
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import FinishReason, Usage

FILTER_REASONS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                            "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})
LENGTH_REASONS = frozenset({"MAX_TOKENS"})
ERROR_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL",
                           "TOO_MANY_TOOL_CALLS", "MISSING_THOUGHT_SIGNATURE"})


def finish_reason(raw: str | None, has_tool_calls: bool) -> FinishReason:
    """The neutral finish reason: `functionCall` parts make it `tool_calls`."""
    if raw in FILTER_REASONS:
        return "content_filter"
    if raw in LENGTH_REASONS:
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def usage_from(data: Mapping[str, Any] | None) -> Usage:
    """`promptTokenCount` (+ tool-use prompt) in, candidates + thoughts out."""
    if not data:
        return Usage()
    thoughts = _int(data.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=_int(data.get("promptTokenCount"))
        + _int(data.get("toolUsePromptTokenCount")),
        output_tokens=_int(data.get("candidatesTokenCount")) + thoughts,
        cached_input_tokens=_int(data.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


@dataclass
class Content:
    """What the parts of a candidate add up to (also accumulated across stream chunks)."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)

    def add_parts(self, parts: Sequence[Any]) -> tuple[list[str], list[ToolCall]]:
        """Add the parts of one chunk; returns the new text pieces and tool calls."""
        texts: list[str] = []
        calls: list[ToolCall] = []
        for part in parts:
            if not isinstance(part, Mapping):
                continue
            call = part.get("functionCall")
            if isinstance(call, Mapping):
                calls.append(tool_call(call, part.get("thoughtSignature"), len(self.calls)))
                self.calls.append(calls[-1])
            elif isinstance(part.get("text"), str) and part.get("thought"):
                self.reasoning.append(part["text"])
            elif isinstance(part.get("text"), str) and part["text"]:
                texts.append(part["text"])
                self.text.append(part["text"])
        return texts, calls


def tool_call(call: Mapping[str, Any], signature: Any, index: int) -> ToolCall:
    """A tool call; its id carries the part's `thoughtSignature` so it can be echoed back."""
    call_id = str(call.get("id") or f"call_{index}")
    if isinstance(signature, str) and signature:
        call_id += SIGNATURE_MARK + signature
    return ToolCall(call_id, str(call.get("name") or ""),
                    json.dumps(call.get("args") or {}, ensure_ascii=False))


def candidate_of(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first candidate, if any."""
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], Mapping):
        return candidates[0]
    return None


def parts_of(candidate: Mapping[str, Any] | None) -> Sequence[Any]:
    """A candidate's parts (a blocked candidate has `content: {}`)."""
    content = candidate.get("content") if candidate else None
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return parts if isinstance(parts, list) else []


def blocked_prompt(data: Mapping[str, Any]) -> str | None:
    """`promptFeedback.blockReason` when the prompt itself was blocked."""
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
    return str(reason) if reason else None


def parse_response(data: Mapping[str, Any]) -> Reply:
    """A whole (non-streamed) response."""
    content = Content()
    candidate = candidate_of(data)
    content.add_parts(parts_of(candidate))
    raw = candidate.get("finishReason") if candidate else None
    blocked = blocked_prompt(data)
    if candidate is None and blocked is None:
        raise ResponseError("the response has no candidates", body=dict(data))
    return build_reply(content, raw if isinstance(raw, str) else None, blocked,
                       usage_from(data.get("usageMetadata")), data.get("modelVersion"), data)


def build_reply(
    content: Content,
    raw: str | None,
    blocked: str | None,
    usage: Usage,
    model: Any,
    data: Any,
) -> Reply:
    """The reply; a malformed function call is a (retryable) `ResponseError`."""
    if raw in ERROR_REASONS:
        raise ResponseError(f"Gemini stopped with finishReason {raw}",
                            hint="retry, or simplify the tool definitions",
                            usage=usage if usage.total_tokens else None)
    finish = finish_reason(raw, bool(content.calls))
    refusal = None
    if blocked is not None:
        finish, raw = "content_filter", raw or blocked
        refusal = f"the prompt was blocked ({blocked})"
    elif finish == "content_filter":
        refusal = f"the answer was blocked (finishReason {raw})"
    return Reply(
        text="".join(content.text),
        finish_reason=finish,
        usage=usage,
        tool_calls=tuple(content.calls),
        refusal=refusal,
        reasoning="".join(content.reasoning),
        raw_finish_reason=raw,
        response_model=model if isinstance(model, str) else None,
        raw=data,
    )
