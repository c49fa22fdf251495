"""Request mapping: llmswitch `Request` → Chat Completions JSON body."""

from __future__ import annotations

from typing import Any

from llmswitch.adapters.base import sampling_fields
from llmswitch.messages import ImagePart, Message, TextPart, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings

# Providers whose API names the output limit `max_completion_tokens` (the o-series and newer
# models reject `max_tokens`); the other OpenAI-compatible servers expect `max_tokens`.
MAX_COMPLETION_TOKENS_PROVIDERS = frozenset({"openai", "azure"})


def build_body(
    request: Request,
    model: str | None,
    provider: str,
    stream: bool,
) -> dict[str, Any]:
    """The JSON body. `model=None` leaves the field out (Azure deployments imply it)."""
    body: dict[str, Any] = {}
    if model is not None:
        body["model"] = model
    body["messages"] = [message_json(m) for m in request.messages]
    body.update(settings_json(request.settings, provider))
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(request.settings.extra)
    return body


def message_json(message: Message) -> dict[str, Any]:
    """One message in Chat Completions form."""
    parts = message.parts
    if (len(parts) == 1 and type(parts[0]) is TextPart and message.name is None
            and message.role in ("user", "system")):
        return {"role": message.role, "content": parts[0].text}  # most messages: one text
    out: dict[str, Any] = {"role": message.role}
    if message.role == "assistant":
        if message.text or not message.tool_calls:
            out["content"] = message.text
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
    elif message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
        out["content"] = message.text
    elif message.images:
        out["content"] = [part_json(p) for p in message.parts]
    else:
        out["content"] = message.text
    if message.name and message.role != "tool":
        out["name"] = message.name
    return out


def part_json(part: TextPart | ImagePart) -> dict[str, Any]:
    """A content part."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": part.data_url()}}


def settings_json(settings: Settings, provider: str) -> dict[str, Any]:
    """Sampling, limits, tools and response format."""
    limit = "max_completion_tokens" if provider in MAX_COMPLETION_TOKENS_PROVIDERS else (
        "max_tokens")
    out = sampling_fields(settings, temperature="temperature", top_p="top_p", max_tokens=limit,
                          stop="stop", seed="seed")
    if settings.tools:
        out["tools"] = [tool_json(t) for t in settings.tools]
    if settings.tool_choice is not None:
        out["tool_choice"] = tool_choice_json(settings.tool_choice)
    fmt = response_format_json(settings.response_format)
    if fmt is not None:
        out["response_format"] = fmt
    return out


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A function tool definition."""
    fn: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        fn["description"] = tool.description
    if tool.strict:
        fn["strict"] = True
    return {"type": "function", "function": fn}


def tool_choice_json(choice: str) -> Any:
    """`auto`/`none`/`required`, or a named function."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def response_format_json(fmt: ResponseFormat) -> dict[str, Any] | None:
    """JSON mode or a strict JSON Schema; `None` for plain text."""
    if fmt.kind == "json":
        return {"type": "json_object"}
    if fmt.kind == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": fmt.name, "schema": dict(fmt.schema or {}),
                            "strict": fmt.strict},
        }
    return None
