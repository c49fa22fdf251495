"""What `llmswitch chat --json` should print for a recorded fixture, read straight from the raw
recording with small per-protocol readers written from PROTOCOLS.md (never via our adapters).

`expected(fixture)` returns an `Expected`: the final text, the neutral finish reason, the four
public usage numbers and the tool calls (name plus parsed arguments), or the error type for an
error fixture. Usage follows `llmswitch.results.Usage`: input includes cached and cache-write
tokens, output includes reasoning tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.fixtures import body_bytes

# error_kind (README vocabulary) -> the CLI's error `type`. The Azure "Resource not found" 404
# (`not_found`) is model_not_found: on a deployment path it means this deployment (the model)
# is not served there, and a fallback should move on to the next target.
ERROR_TYPES: dict[str, str] = {
    "auth": "authentication",
    "permission_denied": "authentication",
    "bad_request": "bad_request",
    "model_not_found": "model_not_found",
    "not_found": "model_not_found",
    "rate_limited": "rate_limited",
    "provider_error_midstream": "*",
}

Json = dict[str, Any]


@dataclass
class Expected:
    """The normalised answer a recording implies."""

    text: str = ""
    finish_reason: str = "stop"
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)
    error_type: str | None = None
    """For error fixtures: the CLI error type (`*` = any error, exit status 1)."""


def usage(inp: int = 0, out: int = 0, cached: int = 0, reasoning: int = 0) -> dict[str, int]:
    """The CLI's usage object."""
    return {"input_tokens": inp, "output_tokens": out, "cached_input_tokens": cached,
            "reasoning_tokens": reasoning}


def protocol(fixture: Json) -> str:
    """The wire family of a fixture's response."""
    api = str(fixture["api"])
    if api in ("ollama.openai_compat",) or api.endswith("chat_completions"):
        return "chat"
    if api.endswith("responses"):
        return "responses"
    return api.split(".", maxsplit=1)[0]


def expected(fixture: Json) -> Expected:
    """The expected normalised result of replaying `fixture`."""
    kind = fixture.get("error_kind")
    if kind:
        return Expected(error_type=ERROR_TYPES[kind])
    raw = body_bytes(fixture)
    readers = {"chat": _chat, "responses": _responses, "anthropic": _anthropic,
               "gemini": _gemini, "bedrock": _bedrock, "ollama": _ollama}
    return readers[protocol(fixture)](fixture, raw)


# --- framing ---------------------------------------------------------------------------------

def sse_events(raw: bytes) -> list[tuple[str, str]]:
    """(event name, data) for each SSE event; comments skipped, CRLF tolerated."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events


def _is_sse(raw: bytes) -> bool:
    head = raw.lstrip()[:6]
    return head.startswith((b"data:", b"event:", b":"))


def _args(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value if value is not None else {}


# --- OpenAI Chat Completions (OpenAI, Azure, DeepSeek, OpenRouter, Ollama /v1) ----------------

CHAT_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
               "function_call": "tool_calls", "content_filter": "content_filter"}


def _chat_usage(u: Json | None) -> dict[str, int]:
    u = u or {}
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens", 0)
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return usage(u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0, cached or 0,
                 reasoning)


def _chat_finish(raw: str | None, calls: bool, refusal: Any) -> str:
    if refusal:
        return "content_filter"
    if calls and raw in (None, "stop", "tool_calls", "function_call"):
        return "tool_calls"
    return CHAT_FINISH.get(raw or "stop", "stop")


def _chat(fixture: Json, raw: bytes) -> Expected:
    if _is_sse(raw):
        return _chat_stream(raw)
    data = json.loads(raw)
    message = data["choices"][0]["message"]
    calls = [(c["function"]["name"], _args(c["function"].get("arguments")))
             for c in message.get("tool_calls") or []]
    return Expected(
        text=message.get("content") or "",
        finish_reason=_chat_finish(data["choices"][0].get("finish_reason"), bool(calls),
                                   message.get("refusal")),
        usage=_chat_usage(data.get("usage")),
        tool_calls=calls,
    )


def _chat_stream(raw: bytes) -> Expected:
    text, finish, use, refusal = "", None, None, ""
    calls: dict[int, list[str]] = {}
    for _, data in sse_events(raw):
        if data.strip() == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            use = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            refusal += delta.get("refusal") or ""
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc.get("index", 0), ["", ""])
                fn = tc.get("function") or {}
                slot[0] += fn.get("name") or ""
                slot[1] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    tool_calls = [(n, _args(a)) for _, (n, a) in sorted(calls.items())]
    return Expected(text, _chat_finish(finish, bool(tool_calls), refusal), _chat_usage(use),
                    tool_calls)


# --- OpenAI Responses (OpenAI, Azure v1, DeepSeek) -------------------------------------------

def _responses(fixture: Json, raw: bytes) -> Expected:
    if _is_sse(raw):
        final = None
        for _, data in sse_events(raw):
            event = json.loads(data)
            if event.get("type") in ("response.completed", "response.incomplete"):
                final = event["response"]
        assert final is not None, "a Responses stream without its terminal event"
        return _response_object(final)
    return _response_object(json.loads(raw))


def _response_object(data: Json) -> Expected:
    text, refusal = "", ""
    calls = []
    for item in data.get("output") or []:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    text += part.get("text") or ""
                elif part.get("type") == "refusal":
                    refusal += part.get("refusal") or ""
        elif item.get("type") == "function_call":
            calls.append((item["name"], _args(item.get("arguments"))))
    reason = (data.get("incomplete_details") or {}).get("reason")
    if refusal:
        finish = "content_filter"
    elif data.get("status") == "incomplete":
        finish = "content_filter" if reason == "content_filter" else "length"
    else:
        finish = "tool_calls" if calls else "stop"
    u = data.get("usage") or {}
    return Expected(text, finish, usage(
        u.get("input_tokens") or 0, u.get("output_tokens") or 0,
        (u.get("input_tokens_details") or {}).get("cached_tokens") or 0,
        (u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
    ), calls)


# --- Anthropic Messages ----------------------------------------------------------------------

ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                    "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop",
                    "model_context_window_exceeded": "length"}


def _anthropic_usage(u: Json) -> dict[str, int]:
    read = u.get("cache_read_input_tokens") or 0
    write = u.get("cache_creation_input_tokens") or 0
    return usage((u.get("input_tokens") or 0) + read + write, u.get("output_tokens") or 0, read)


def _anthropic(fixture: Json, raw: bytes) -> Expected:
    if not _is_sse(raw):
        data = json.loads(raw)
        text = "".join(b["text"] for b in data["content"] if b["type"] == "text")
        calls = [(b["name"], b["input"]) for b in data["content"] if b["type"] == "tool_use"]
        return Expected(text, ANTHROPIC_FINISH[data["stop_reason"]],
                        _anthropic_usage(data["usage"]), calls)
    blocks: dict[int, Json] = {}
    u: Json = {}
    stop = None
    for _, data in sse_events(raw):
        event = json.loads(data)
        kind = event["type"]
        if kind == "message_start":
            u.update({k: v for k, v in event["message"]["usage"].items() if v is not None})
        elif kind == "content_block_start":
            block = dict(event["content_block"])
            block["json"] = ""
            blocks[event["index"]] = block
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta["type"] == "input_json_delta":
                block["json"] += delta["partial_json"]
        elif kind == "message_delta":
            stop = event["delta"].get("stop_reason") or stop
            u.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    ordered = [blocks[i] for i in sorted(blocks)]
    text = "".join(b.get("text", "") for b in ordered if b["type"] == "text")
    calls = [(b["name"], _args(b["json"]) if b["json"] else b.get("input") or {})
             for b in ordered if b["type"] == "tool_use"]
    return Expected(text, ANTHROPIC_FINISH[str(stop)], _anthropic_usage(u), calls)


# --- Gemini ----------------------------------------------------------------------------------

GEMINI_FILTER = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                 "IMAGE_SAFETY"}


def _gemini(fixture: Json, raw: bytes) -> Expected:
    if _is_sse(raw):
        chunks = [json.loads(d) for _, d in sse_events(raw)]
    else:
        parsed = json.loads(raw)
        chunks = parsed if isinstance(parsed, list) else [parsed]
    text, reason, blocked = "", None, False
    meta: Json = {}
    calls = []
    for chunk in chunks:
        meta = chunk.get("usageMetadata") or meta
        if (chunk.get("promptFeedback") or {}).get("blockReason"):
            blocked = True
        for cand in (chunk.get("candidates") or [])[:1]:
            for part in (cand.get("content") or {}).get("parts") or []:
                if "text" in part and not part.get("thought"):
                    text += part["text"]
                if "functionCall" in part:
                    calls.append((part["functionCall"]["name"],
                                  part["functionCall"].get("args") or {}))
            reason = cand.get("finishReason") or reason
    if blocked or reason in GEMINI_FILTER:
        finish = "content_filter"
    elif calls:
        finish = "tool_calls"
    else:
        finish = "length" if reason == "MAX_TOKENS" else "stop"
    thoughts = meta.get("thoughtsTokenCount") or 0
    return Expected(text, finish, usage(
        (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0),
        (meta.get("candidatesTokenCount") or 0) + thoughts,
        meta.get("cachedContentTokenCount") or 0, thoughts,
    ), calls)


# --- Bedrock Converse ------------------------------------------------------------------------

BEDROCK_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "tool_use": "tool_calls", "guardrail_intervened": "content_filter",
                  "content_filtered": "content_filter", "model_context_window_exceeded": "length"}


def _bedrock_usage(u: Json) -> dict[str, int]:
    read = u.get("cacheReadInputTokens") or 0
    write = u.get("cacheWriteInputTokens") or 0
    return usage((u.get("inputTokens") or 0) + read + write, u.get("outputTokens") or 0, read)


def _bedrock(fixture: Json, raw: bytes) -> Expected:
    frames = fixture["response"].get("eventstream_decoded")
    if not frames:
        data = json.loads(raw)
        content = data["output"]["message"]["content"]
        text = "".join(b["text"] for b in content if "text" in b)
        calls = [(b["toolUse"]["name"], b["toolUse"]["input"]) for b in content if "toolUse" in b]
        return Expected(text, BEDROCK_FINISH[data["stopReason"]], _bedrock_usage(data["usage"]),
                        calls)
    text, stop = "", None
    u: Json = {}
    tools: dict[int, list[str]] = {}
    for frame in frames:
        kind, p = frame["headers"].get(":event-type"), frame["payload"]
        if kind == "contentBlockStart" and "toolUse" in p.get("start", {}):
            tools[p["contentBlockIndex"]] = [p["start"]["toolUse"]["name"], ""]
        elif kind == "contentBlockDelta":
            delta = p["delta"]
            text += delta.get("text") or ""
            if "toolUse" in delta:
                tools[p["contentBlockIndex"]][1] += delta["toolUse"].get("input") or ""
        elif kind == "messageStop":
            stop = p["stopReason"]
        elif kind == "metadata":
            u = p.get("usage") or {}
    calls = [(n, _args(a)) for _, (n, a) in sorted(tools.items())]
    return Expected(text, BEDROCK_FINISH[str(stop)], _bedrock_usage(u), calls)


# --- Ollama native ---------------------------------------------------------------------------

def _ollama(fixture: Json, raw: bytes) -> Expected:
    try:
        lines = [json.loads(raw)]
    except ValueError:  # NDJSON: one object a line
        lines = [json.loads(x) for x in re.split(rb"\r?\n", raw) if x.strip()]
    text, calls, last = "", [], lines[-1]
    for obj in lines:
        message = obj.get("message") or {}
        text += message.get("content") or obj.get("response") or ""
        calls += [(c["function"]["name"], _args(c["function"].get("arguments")))
                  for c in message.get("tool_calls") or []]
    reason = last.get("done_reason")
    finish = "tool_calls" if calls else ("length" if reason == "length" else "stop")
    return Expected(text, finish, usage(last.get("prompt_eval_count") or 0,
                                        last.get("eval_count") or 0), calls)
