"""Request mapping: llmswitch `Request` → Anthropic Messages JSON body.

System messages are lifted to the top-level `system`; tool results become `tool_result` blocks
in a user turn (consecutive turns of one role are merged); JSON output uses native structured
output when the model's card has `json_schema`, else a forced tool named `JSON_TOOL`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Target, arguments_object, sampling_fields
from llmswitch.messages import ImagePart, Message, TextPart, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""Used when the request sets no limit (capped by the card's `max_output_tokens`)."""
JSON_TOOL = "llmswitch_json_output"
"""The forced tool that carries a JSON answer on models without native structured output."""
JSON_VALUE_TOOL = "llmswitch_json_value"
"""The same for a schema that is not an object: the answer is the input's `value` field."""
JSON_TOOLS = frozenset({JSON_TOOL, JSON_VALUE_TOOL})
ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def build_body(request: Request, target: Target, stream: bool) -> dict[str, Any]:
    """The JSON body for `POST /v1/messages`."""
    body: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens(request, target)}
    system = "\n\n".join(m.text for m in request.messages if m.role == "system" and m.text)
    if system:
        body["system"] = system
    body["messages"] = messages_json(request.messages)
    body.update(settings_json(request.settings, native_schema(target)))
    if stream:
        body["stream"] = True
    for key, value in request.settings.extra.items():
        current = body.get(key)  # an object meets an object key by key (`output_config`)
        body[key] = {**current, **value} if isinstance(current, Mapping) and isinstance(
            value, Mapping) else value
    return body


def max_tokens(request: Request, target: Target) -> int:
    """The request's limit, else the card's output limit capped at `DEFAULT_MAX_TOKENS`."""
    if request.settings.max_tokens is not None:
        return request.settings.max_tokens
    card_limit = target.card.max_output_tokens if target.card is not None else None
    return min(card_limit or DEFAULT_MAX_TOKENS, DEFAULT_MAX_TOKENS)


def native_schema(target: Target) -> bool:
    """Whether the model has native structured output (`output_config.format`)."""
    return target.card is not None and target.card.has("json_schema")


def messages_json(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """User and assistant turns; consecutive turns of the same role are merged."""
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = message_blocks(message)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, list(blocks)))
    return [{"role": role, "content": _compact(blocks)} for role, blocks in turns]


def _compact(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text block is sent as a plain string (what most clients send)."""
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        text: str = blocks[0]["text"]
        return text
    return blocks


def message_blocks(message: Message) -> list[dict[str, Any]]:
    """The content blocks of one message."""
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                 "content": message.text}]
    blocks = [part_json(p) for p in message.parts
              if not (isinstance(p, TextPart) and not p.text)]
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name,
                       "input": arguments_object(call.arguments)})
    return blocks


def part_json(part: TextPart | ImagePart) -> dict[str, Any]:
    """A text block, or an image block with a base64 or URL source."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.base64_data()}
    elif part.url is not None and part.url.startswith("data:"):
        header, _, data = part.url.partition(",")
        media_type = header[5:].split(";", 1)[0] or part.media_type
        source = {"type": "base64", "media_type": media_type, "data": data}
    else:
        source = {"type": "url", "url": part.url or ""}
    return {"type": "image", "source": source}


def settings_json(settings: Settings, native: bool) -> dict[str, Any]:
    """Sampling, stop sequences, tools, tool choice and JSON output."""
    out = sampling_fields(settings, temperature="temperature", top_p="top_p",
                          stop="stop_sequences")
    tools = [tool_json(t) for t in settings.tools]
    choice = tool_choice_json(settings.tool_choice) if settings.tool_choice else None
    fmt = settings.response_format
    if fmt.kind == "json_schema" and native:
        out["output_config"] = {"format": {"type": "json_schema",
                                           "schema": dict(fmt.schema or {})}}
    elif fmt.kind != "text":
        tool = json_tool(fmt)
        tools.append(tool)
        choice = {"type": "tool", "name": tool["name"]}
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    return out


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A client tool definition."""
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = dict(tool.parameters)
    if tool.strict:
        out["strict"] = True
    return out


def json_tool(fmt: ResponseFormat) -> dict[str, Any]:
    """The forced tool whose input is the JSON answer (a non-object schema is wrapped)."""
    schema = dict(fmt.schema) if fmt.kind == "json_schema" and fmt.schema else ANY_OBJECT
    name = JSON_TOOL
    if "type" not in schema and "properties" in schema:
        schema["type"] = "object"
    if schema.get("type") != "object":
        name = JSON_VALUE_TOOL
        schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    return {
        "name": name,
        "description": f"Give the final answer ({fmt.name}) as this tool's input.",
        "input_schema": schema,
    }


def tool_choice_json(choice: str) -> dict[str, Any]:
    """`auto`, `none`, `required` (→ `any`) or one named tool."""
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}
