"""Helpers for the Bedrock tests: rebuild a `Request` from a recorded Converse body, and run a
recorded stream through the adapter split at arbitrary byte offsets."""

from __future__ import annotations

import json
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.bedrock import BedrockAdapter
from llmswitch.messages import Message, TextPart, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings
from llmswitch.results import StreamEvent
from tests.support.streams import run_stream as shared_run_stream

ADAPTER = BedrockAdapter()
# Body fields llmswitch does not model; a caller passes them through `settings.extra`.
PASSTHROUGH = ("guardrailConfig", "additionalModelRequestFields")


def request_from_converse(body: dict[str, Any]) -> Request:
    """The llmswitch request a caller would write to produce this recorded Converse body."""
    messages: list[Message] = [Message.system(s["text"]) for s in body.get("system") or []]
    for turn in body["messages"]:
        texts = [TextPart(b["text"]) for b in turn["content"] if "text" in b]
        calls = [ToolCall(b["toolUse"]["toolUseId"], b["toolUse"]["name"],
                          json.dumps(b["toolUse"]["input"]))
                 for b in turn["content"] if "toolUse" in b]
        results = [b["toolResult"] for b in turn["content"] if "toolResult" in b]
        for result in results:
            messages.append(Message.tool(result["toolUseId"],
                                         "".join(c["text"] for c in result["content"])))
        if turn["role"] == "assistant":
            messages.append(Message("assistant", tuple(texts), tuple(calls)))
        elif texts:
            messages.append(Message("user", tuple(texts)))
    return Request(tuple(messages), settings_from_converse(body))


def settings_from_converse(body: dict[str, Any]) -> Settings:
    """Settings for the inference, tool and output configuration of a Converse body."""
    config = body.get("inferenceConfig") or {}
    tools = body.get("toolConfig", {}).get("tools", [])
    choice = body.get("toolConfig", {}).get("toolChoice")
    fmt = ResponseFormat()
    if "outputConfig" in body:
        spec = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
        fmt = ResponseFormat.json_schema(json.loads(spec["schema"]), spec["name"])
    return Settings(
        max_tokens=config.get("maxTokens"),
        temperature=config.get("temperature"),
        top_p=config.get("topP"),
        stop=tuple(config.get("stopSequences") or ()),
        tools=tuple(
            ToolSpec(t["toolSpec"]["name"], t["toolSpec"].get("description", ""),
                     t["toolSpec"]["inputSchema"]["json"], bool(t["toolSpec"].get("strict")))
            for t in tools),
        tool_choice=None if choice is None else ("auto" if "auto" in choice else
                                                 "required" if "any" in choice else
                                                 choice["tool"]["name"]),
        response_format=fmt,
        extra={k: body[k] for k in PASSTHROUGH if k in body},
    )


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """A Converse body with what differs only in spelling removed: an empty `system` list,
    `toolResult.status` (llmswitch has no error flag on results), the schema as parsed JSON
    and the schema `description` (llmswitch's ResponseFormat has none)."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    if not out.get("system"):
        out.pop("system", None)
    for turn in out["messages"]:
        for block in turn["content"]:
            if "toolResult" in block:
                block["toolResult"].pop("status", None)
    if "outputConfig" in out:
        spec = out["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
        spec["schema"] = json.loads(spec["schema"])
        spec.pop("description", None)
    return out


def run_stream(body: bytes, step: int, content_type: str = "application/vnd.amazon.eventstream"
               ) -> tuple[Reply, list[StreamEvent]]:
    """Feed `body` in `step`-byte pieces through the decoder and a fresh parser."""
    return shared_run_stream(ADAPTER, "bedrock", body, step, content_type)
