"""Helpers for replaying recorded Gemini traffic: an inverse request mapping (recorded body →
the equivalent llmswitch Request), a body normaliser for comparing shapes, and stream replay."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from llmswitch.adapters.base import Reply
from llmswitch.adapters.gemini import GeminiAdapter
from llmswitch.adapters.gemini.request import SIGNATURE_MARK
from llmswitch.messages import ImagePart, Message, Part, TextPart, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings
from llmswitch.results import StreamEvent
from tests.support.fixtures import ROOT
from tests.support.streams import run_stream as shared_run_stream

ADAPTER = GeminiAdapter()
MAPPED = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}
UNMAPPED_CONFIG = {"thinkingConfig", "responseModalities", "candidateCount", "topK"}
"""generationConfig fields llmswitch settings do not name: a user passes them in `extra`."""
SCHEMA_KEYS = ("responseSchema", "responseJsonSchema")


def all_names() -> list[str]:
    """Every recorded Gemini fixture in the directory (held-out ones are not there)."""
    return sorted(f"gemini/{p.stem}" for p in (ROOT / "gemini").glob("*.json"))


def model_of(path: str) -> str:
    """The model name in `/v1beta/models/{model}:method`."""
    return path.split("/models/", 1)[1].split(":", 1)[0]


def run_stream(body: bytes, step: int) -> tuple[Reply, list[StreamEvent]]:
    """Feed `body` in `step`-byte pieces through the decoder and a fresh parser."""
    return shared_run_stream(ADAPTER, "gemini", body, step, "text/event-stream")


def request_from_body(body: dict[str, Any]) -> Request:
    """The llmswitch request a user would write to send `body` (unmapped keys go to `extra`)."""
    messages: list[Message] = []
    system = body.get("systemInstruction")
    if system:
        messages.append(Message.system("".join(p["text"] for p in system["parts"])))
    pending: list[ToolCall] = []
    for turn in body["contents"]:
        messages.extend(_messages(turn, pending))
    config = body.get("generationConfig") or {}
    return Request(tuple(messages), Settings(
        max_tokens=config.get("maxOutputTokens"),
        temperature=config.get("temperature"),
        top_p=config.get("topP"),
        seed=config.get("seed"),
        stop=tuple(config.get("stopSequences", ())),
        tools=tuple(ToolSpec(d["name"], d.get("description", ""),
                             json_schema(d.get("parameters") or {}))
                    for t in body.get("tools", ()) for d in t.get("functionDeclarations", ())),
        tool_choice=_choice(body.get("toolConfig")),
        response_format=_format(config),
        extra=_extra(body, config),
    ))


def _extra(body: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in body.items() if k not in MAPPED}
    unmapped = {k: v for k, v in config.items() if k in UNMAPPED_CONFIG}
    if unmapped:
        extra["generationConfig"] = unmapped
    return extra


def _format(config: dict[str, Any]) -> ResponseFormat:
    schema = next((config[k] for k in SCHEMA_KEYS if k in config), None)
    if schema is not None:
        return ResponseFormat.json_schema(json_schema(schema))
    if config.get("responseMimeType") == "application/json":
        return ResponseFormat("json")
    return ResponseFormat()


def _choice(config: dict[str, Any] | None) -> str | None:
    if not config:
        return None
    calling = config["functionCallingConfig"]
    allowed = calling.get("allowedFunctionNames") or []
    if calling["mode"] == "ANY":
        return str(allowed[0]) if len(allowed) == 1 else "required"
    return str(calling["mode"]).lower()


def _messages(turn: dict[str, Any], pending: list[ToolCall]) -> list[Message]:
    parts = turn["parts"]
    if turn["role"] == "model":
        text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        calls = []
        for p in parts:
            if "functionCall" in p:
                call_id = f"call_{len(pending)}"
                if p.get("thoughtSignature"):
                    call_id += SIGNATURE_MARK + p["thoughtSignature"]
                fc = p["functionCall"]
                calls.append(ToolCall(call_id, fc["name"], json.dumps(fc.get("args", {}))))
        pending.extend(calls)
        return [Message.assistant(text, calls)]
    out: list[Message] = []
    content: list[Part] = []
    for p in parts:
        if "functionResponse" in p:
            response = p["functionResponse"]
            call = next(c for c in pending if c.name == response["name"])
            pending.remove(call)
            result = response["response"]
            output = result["output"] if set(result) == {"output"} else json.dumps(result)
            out.append(Message.tool(call.id, output))
        elif "text" in p:
            content.append(TextPart(p["text"]))
        elif "inlineData" in p:
            content.append(ImagePart(data=b64(p["inlineData"]["data"]),
                                     media_type=p["inlineData"]["mimeType"]))
    return out + ([Message("user", tuple(content))] if content else [])


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """The shape that matters: roles and parts, declarations, tool mode, generation config
    (schema types compared case-insensitively; SDK-only `property_ordering` ignored)."""
    out = {k: v for k, v in body.items() if k not in MAPPED}
    out["contents"] = [{"role": c["role"], "parts": [_part(p) for p in c["parts"]]}
                       for c in body["contents"]]
    system = body.get("systemInstruction")
    out["system"] = "".join(p["text"] for p in system["parts"]) if system else None
    out["tools"] = [{"name": d["name"], "description": d.get("description") or "",
                     "parameters": _schema(d.get("parameters") or {})}
                    for t in body.get("tools", ()) for d in t.get("functionDeclarations", ())]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if calling and len(calling.get("allowedFunctionNames") or ()) > 1:
        calling = {"mode": calling["mode"]}  # several allowed names: not expressible
    out["toolConfig"] = calling
    config = dict(body.get("generationConfig") or {})
    for key in SCHEMA_KEYS:
        if key in config:
            config["schema"] = _schema(config.pop(key))
    out["generationConfig"] = config
    return out


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if "inlineData" in part:
        digest = hashlib.sha256(b64(part["inlineData"]["data"])).hexdigest()
        return {"inlineData": {"mimeType": part["inlineData"]["mimeType"], "sha256": digest}}
    return dict(part)


def json_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """What a user would write for an SDK-converted OpenAPI schema: lowercase JSON Schema."""
    converted: dict[str, Any] = _schema(openapi)
    return converted


def b64(text: str) -> bytes:
    """Standard or URL-safe base64 (Google accepts both; SDKs send either)."""
    return base64.b64decode(text.replace("-", "+").replace("_", "/") + "==")


def _schema(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _schema(v))
                for k, v in node.items() if k not in ("property_ordering", "propertyOrdering")}
    if isinstance(node, list):
        return [_schema(v) for v in node]
    return node
