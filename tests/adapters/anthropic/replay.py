"""Helpers for replaying recorded Anthropic traffic: an inverse request mapping (recorded body →
the equivalent llmswitch Request), a body normaliser for comparing shapes, and stream replay."""

from __future__ import annotations

import base64
import json
from typing import Any

from llmswitch.adapters.anthropic import AnthropicAdapter
from llmswitch.adapters.base import Reply
from llmswitch.messages import ImagePart, Message, Part, TextPart, ToolCall, ToolSpec
from llmswitch.request import Request, Settings
from llmswitch.results import StreamEvent
from tests.support.fixtures import ROOT
from tests.support.streams import run_stream as shared_run_stream

ADAPTER = AnthropicAdapter()
MAPPED = {"model", "max_tokens", "system", "messages", "tools", "tool_choice", "stop_sequences",
          "temperature", "top_p", "stream"}
BLOCK_KEYS = ("type", "text", "id", "name", "input", "tool_use_id", "content", "source")


def all_names() -> list[str]:
    """Every recorded Anthropic fixture in the directory (held-out ones are not there)."""
    return sorted(f"anthropic/{p.stem}" for p in (ROOT / "anthropic").glob("*.json"))


def run_stream(body: bytes, step: int, content_type: str = "text/event-stream"
               ) -> tuple[Reply, list[StreamEvent]]:
    """Feed `body` in `step`-byte pieces through the decoder and a fresh parser."""
    return shared_run_stream(ADAPTER, "anthropic", body, step, content_type)


def request_from_body(body: dict[str, Any]) -> Request:
    """The llmswitch request a user would write to send `body` (unmapped keys go to `extra`)."""
    messages: list[Message] = []
    system = body.get("system")
    if isinstance(system, list):
        system = "".join(b["text"] for b in system)
    if system:
        messages.append(Message.system(system))
    for turn in body["messages"]:
        messages.extend(_messages(turn))
    tools = tuple(ToolSpec(t["name"], t.get("description", ""), t["input_schema"])
                  for t in body.get("tools", ()))
    choice = body.get("tool_choice")
    settings = Settings(
        max_tokens=body["max_tokens"],
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop=tuple(body.get("stop_sequences", ())),
        tools=tools,
        tool_choice=_choice(choice) if choice else None,
        extra={k: v for k, v in body.items() if k not in MAPPED},
    )
    return Request(tuple(messages), settings)


def _choice(choice: dict[str, Any]) -> str:
    kind = str(choice["type"])
    return {"any": "required", "tool": str(choice.get("name", ""))}.get(kind, kind)


def _messages(turn: dict[str, Any]) -> list[Message]:
    content = turn["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if turn["role"] == "assistant":
        text = "".join(b["text"] for b in content if b["type"] == "text")
        calls = [ToolCall(b["id"], b["name"], json.dumps(b["input"]))
                 for b in content if b["type"] == "tool_use"]
        return [Message.assistant(text, calls)]
    results = [Message.tool(b["tool_use_id"], b["content"])
               for b in content if b["type"] == "tool_result"]
    parts: list[Part] = []
    for b in content:
        if b["type"] == "text":
            parts.append(TextPart(b["text"]))
        elif b["type"] == "image" and b["source"]["type"] == "base64":
            src = b["source"]
            parts.append(ImagePart(data=base64.b64decode(src["data"]),
                                   media_type=src["media_type"]))
        elif b["type"] == "image":
            parts.append(ImagePart(url=b["source"]["url"]))
    return results + ([Message("user", tuple(parts))] if parts else [])


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """The shape that matters: what was asked, not how a client spelled it (string vs one
    text block, `cache_control`, `citations: null`, `disable_parallel_tool_use`)."""
    out = {k: v for k, v in body.items() if k not in ("messages", "system", "tools",
                                                       "tool_choice", "stream")}
    out["stream"] = bool(body.get("stream"))
    system = body.get("system")
    if isinstance(system, list):
        system = "".join(b["text"] for b in system)
    out["system"] = system or None
    out["messages"] = [
        {"role": m["role"], "content": [_block(b) for b in _as_blocks(m["content"])]}
        for m in body["messages"]
    ]
    out["tools"] = [{"name": t["name"], "description": t.get("description") or "",
                     "input_schema": t["input_schema"]} for t in body.get("tools", ())]
    choice = body.get("tool_choice")
    out["tool_choice"] = {k: v for k, v in choice.items() if k in ("type", "name")} if choice \
        else None
    return out


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _block(block: dict[str, Any]) -> dict[str, Any]:
    return {k: block[k] for k in BLOCK_KEYS if k in block}
