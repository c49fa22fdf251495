"""Request mapping: llmswitch `Request` → Gemini `generateContent` JSON body.

Roles become `user`/`model`, system messages `systemInstruction`, tool results
`functionResponse` parts (named after the call they answer), and a `thoughtSignature` carried
in a tool call's id (see `split_call_id`) is echoed back on that call's part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import arguments_object, sampling_fields
from llmswitch.messages import ImagePart, Message, TextPart, ToolSpec
from llmswitch.request import Request, Settings

SIGNATURE_MARK = "~ts~"
"""Separates a tool call's id from the `thoughtSignature` Gemini attached to the call."""
SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
})
"""The OpenAPI subset Gemini's `parameters` schema accepts; other keys are dropped."""
MAX_REF_DEPTH = 8


def model_path(model: str, stream: bool, base_url: str = "") -> str:
    """`/v1beta/models/{model}:generateContent` or `:streamGenerateContent` (without the
    version prefix when the base URL already ends in `/v1beta` or `/v1`)."""
    name = model.removeprefix("models/")
    method = "streamGenerateContent" if stream else "generateContent"
    version = "" if base_url.rstrip("/").endswith(("/v1beta", "/v1")) else "/v1beta"
    return f"{version}/models/{name}:{method}"


def build_body(request: Request) -> dict[str, Any]:
    """The JSON body."""
    body: dict[str, Any] = {"contents": contents_json(request.messages)}
    system = "\n\n".join(m.text for m in request.messages if m.role == "system" and m.text)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    settings = request.settings
    if settings.tools:
        body["tools"] = [{"functionDeclarations": [tool_json(t) for t in settings.tools]}]
    if settings.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": tool_choice_json(settings.tool_choice)}
    config = generation_config(settings)
    if config:
        body["generationConfig"] = config
    return merge_extra(body, settings.extra)


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`Settings.extra` over the body; an object meets an object key by key (so
    `extra={"generationConfig": {"thinkingConfig": ...}}` keeps `maxOutputTokens`)."""
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            body[key] = {**current, **value}
        else:
            body[key] = value
    return body


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """A tool call id as (id, thought signature or `None`)."""
    base, mark, signature = call_id.partition(SIGNATURE_MARK)
    return base, (signature or None) if mark else None


def contents_json(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """`contents`: consecutive turns of one role are merged (tool results join one turn)."""
    names: dict[str, str] = {}
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        for call in message.tool_calls:
            names[call.id] = call.name
        role = "model" if message.role == "assistant" else "user"
        parts = message_parts(message, names)
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return turns


def message_parts(message: Message, call_names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The parts of one message."""
    if message.role == "tool":
        name = call_names.get(message.tool_call_id or "") or message.name or ""
        return [{"functionResponse": {"name": name, "response": _tool_output(message.text)}}]
    parts = [part_json(p) for p in message.parts if not (isinstance(p, TextPart) and not p.text)]
    for call in message.tool_calls:
        part: dict[str, Any] = {"functionCall": {"name": call.name,
                                                 "args": arguments_object(call.arguments)}}
        _, signature = split_call_id(call.id)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _tool_output(text: str) -> dict[str, Any]:
    """A JSON-object result is sent as is; anything else as `{"output": text}`."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"output": text}


def part_json(part: TextPart | ImagePart) -> dict[str, Any]:
    """A text part, inline image bytes, or an image by URI (`fileData`)."""
    if isinstance(part, TextPart):
        return {"text": part.text}
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.base64_data()}}
    url = part.url or ""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";", 1)[0] or part.media_type
        return {"inlineData": {"mimeType": mime, "data": data}}
    return {"fileData": {"mimeType": part.media_type, "fileUri": url}}


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A function declaration (its JSON Schema reduced to the subset Gemini accepts)."""
    return {"name": tool.name, "description": tool.description,
            "parameters": openapi_schema(tool.parameters)}


def tool_choice_json(choice: str) -> dict[str, Any]:
    """`AUTO`, `NONE`, `ANY` (required), or `ANY` restricted to one function."""
    if choice in ("auto", "none"):
        return {"mode": choice.upper()}
    if choice == "required":
        return {"mode": "ANY"}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def generation_config(settings: Settings) -> dict[str, Any]:
    """Limits, sampling, stop sequences, seed and JSON output."""
    out = sampling_fields(settings, max_tokens="maxOutputTokens", temperature="temperature",
                          top_p="topP", seed="seed", stop="stopSequences")
    fmt = settings.response_format
    if fmt.kind != "text":
        out["responseMimeType"] = "application/json"
    if fmt.kind == "json_schema" and fmt.schema is not None:
        out["responseJsonSchema"] = dict(fmt.schema)
    return out


def openapi_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Schema → Gemini's OpenAPI subset: `$ref`s inlined, `["x", "null"]` types made
    `nullable`, `const` made `enum`, `oneOf` made `anyOf`, unsupported keys dropped."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, 0)


def _convert(node: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and depth < MAX_REF_DEPTH:
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _convert(merged, defs, depth + 1)
    out = _type_of(node)
    for key, value in node.items():
        if key in ("type", "$ref") or key not in SCHEMA_KEYS | {"oneOf"}:
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {k: _convert(v, defs, depth) for k, v in value.items()
                        if isinstance(v, Mapping)}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _convert(value, defs, depth)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            _any_of(out, [_convert(v, defs, depth) for v in value if isinstance(v, Mapping)])
        else:
            out[key] = value
    if "enum" in out and not all(isinstance(v, str) for v in out["enum"]):
        del out["enum"]  # Gemini enums are strings only
    return out


def _type_of(node: Mapping[str, Any]) -> dict[str, Any]:
    """`type` (a `["x", "null"]` list becomes `x` + `nullable`) and `const` as an `enum`."""
    out: dict[str, Any] = {}
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        kind = kinds[0] if kinds else None
    if kind is not None:
        out["type"] = kind
    if "const" in node:
        out["enum"] = [node["const"]]
    return out


def _any_of(out: dict[str, Any], options: list[dict[str, Any]]) -> None:
    """`anyOf` with a `null` option becomes `nullable`; a single remaining option is inlined."""
    kept = [o for o in options if o.get("type") != "null"]
    if len(kept) < len(options):
        out["nullable"] = True
    if len(kept) == 1:
        for key, value in kept[0].items():
            out.setdefault(key, value)
    elif kept:
        out["anyOf"] = kept
