"""Helpers for the Ollama tests: rebuild a `Request` from a recorded `/api/chat` body, and run
a recorded NDJSON stream through the adapter split at arbitrary byte offsets."""

from __future__ import annotations

import json
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.ollama import OllamaAdapter
from llmswitch.messages import Message, ToolCall
from llmswitch.request import JSON, TEXT, Request, ResponseFormat, Settings, coerce_settings
from llmswitch.results import StreamEvent
from tests.support.streams import run_stream as shared_run_stream

ADAPTER = OllamaAdapter()
OPTION_SETTINGS = {"temperature": "temperature", "top_p": "top_p", "num_predict": "max_tokens",
                   "stop": "stop", "seed": "seed"}


def request_from_ollama(body: dict[str, Any]) -> Request:
    """The llmswitch request a caller would write to produce this recorded body."""
    messages = []
    for m in body["messages"]:
        calls = [ToolCall(f"call_{i}", c["function"]["name"],
                          json.dumps(c["function"]["arguments"]))
                 for i, c in enumerate(m.get("tool_calls") or ())]
        messages.append(Message(m["role"], Message.user(m["content"]).parts, tuple(calls)))
    options = dict(body.get("options") or {})
    values: dict[str, Any] = {OPTION_SETTINGS[k]: options.pop(k) for k in list(options)
                              if k in OPTION_SETTINGS}
    fmt = body.get("format")
    values["response_format"] = (JSON if fmt == "json" else ResponseFormat.json_schema(fmt)
                                 if isinstance(fmt, dict) else TEXT)
    if body.get("tools"):
        values["tools"] = body["tools"]
    if options:
        values["extra"] = {"options": options}
    return Request(tuple(messages), Settings(**coerce_settings(values)))


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """A body with defaults spelled out: `stream` (Ollama streams when it is absent) and an
    empty `format` (the same as none)."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    out.setdefault("stream", True)
    if out.get("format") == "":
        del out["format"]
    return out


def run_stream(body: bytes, step: int, content_type: str = "application/x-ndjson"
               ) -> tuple[Reply, list[StreamEvent]]:
    """Feed `body` in `step`-byte pieces through the decoder and a fresh parser."""
    return shared_run_stream(ADAPTER, "ollama", body, step, content_type)
