"""Request mapping: llmswitch `Request` → Ollama native `/api/chat` JSON body.

Ollama streams unless told otherwise, so `stream` is always sent. Sampling goes under
`options` (`num_predict` is the output limit); `format` is `"json"` or a JSON Schema; tool call
arguments travel as JSON objects; tool results name their tool (`tool_name`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import sampling_fields
from llmswitch.errors import UnsupportedError
from llmswitch.messages import ImagePart, Message, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings


def chat_path(base_url: str) -> str:
    """`/api/chat`, or `/chat` when the base URL already ends in `/api` (ollama.com's)."""
    return "/chat" if base_url.rstrip("/").endswith("/api") else "/api/chat"


def build_body(request: Request, model: str, stream: bool) -> dict[str, Any]:
    """The JSON body; `settings.extra` is merged in (its `options` merge into ours)."""
    settings = request.settings
    body: dict[str, Any] = {"model": model, "messages": messages_json(request.messages),
                            "stream": stream}
    if settings.tools and settings.tool_choice != "none":
        body["tools"] = [tool_json(t) for t in settings.tools]
    fmt = format_json(settings.response_format)
    if fmt is not None:
        body["format"] = fmt
    options = options_json(settings)
    extra = dict(settings.extra)
    extra_options = extra.pop("options", None)
    if isinstance(extra_options, Mapping):
        options.update(extra_options)
    if options:
        body["options"] = options
    body.update(extra)
    return body


def messages_json(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Messages in Ollama's shape; a tool result's `tool_name` is found from its call id."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        for call in message.tool_calls:
            names[call.id] = call.name
        out.append(message_json(message, names))
    return out


def message_json(message: Message, tool_names: Mapping[str, str]) -> dict[str, Any]:
    """One message: `role`, `content`, and `images` / `tool_calls` / `tool_name`."""
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    if message.images:
        out["images"] = [image_base64(p) for p in message.images]
    if message.tool_calls:
        out["tool_calls"] = [tool_call_json(c) for c in message.tool_calls]
    if message.role == "tool":
        name = message.name or tool_names.get(message.tool_call_id or "")
        if name:
            out["tool_name"] = name
    return out


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """An assistant tool call with its arguments as a JSON object."""
    try:
        args: Any = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        args = {}
    return {"function": {"name": call.name, "arguments": args}}


def image_base64(part: ImagePart) -> str:
    """Raw base64 (no `data:` prefix); web URLs are not accepted by Ollama."""
    if part.data is not None:
        return part.base64_data()
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        payload = url.partition(",")[2]
        try:
            base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise UnsupportedError("the image data: URL is not valid base64") from None
        return payload
    raise UnsupportedError("Ollama takes images as bytes, not web URLs",
                           hint="download the image and pass ImagePart(data=...)")


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A function tool (the OpenAI shape, which Ollama shares)."""
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description:
        fn["description"] = tool.description
    fn["parameters"] = dict(tool.parameters)
    return {"type": "function", "function": fn}


def format_json(fmt: ResponseFormat) -> str | dict[str, Any] | None:
    """`"json"`, a JSON Schema, or `None` for text."""
    if fmt.kind == "json":
        return "json"
    if fmt.kind == "json_schema":
        return dict(fmt.schema or {})
    return None


def options_json(settings: Settings) -> dict[str, Any]:
    """`temperature`, `top_p`, `num_predict`, `stop`, `seed`."""
    return sampling_fields(settings, temperature="temperature", top_p="top_p",
                           max_tokens="num_predict", stop="stop", seed="seed")
