"""Request mapping: llmswitch `Request` → OpenAI Responses API JSON body (`POST /responses`).

Leading system messages become `instructions`; later ones are `developer` input items.
Assistant tool calls become `function_call` items and tool results `function_call_output`
items. The Responses API has no stop sequences (a request with `stop` is refused before the
call) and no `seed` (dropped: it is best-effort everywhere).
"""

from __future__ import annotations

from typing import Any

from llmswitch.adapters.base import sampling_fields
from llmswitch.errors import UnsupportedError
from llmswitch.messages import ImagePart, Message, TextPart, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings


def build_body(request: Request, model: str, stream: bool) -> dict[str, Any]:
    """The JSON body for one call."""
    if request.settings.stop:
        raise UnsupportedError(
            "the OpenAI Responses API has no stop sequences",
            model=model,
            hint="remove `stop`, or use a model served by Chat Completions",
        )
    instructions, rest = split_instructions(request.messages)
    body: dict[str, Any] = {"model": model}
    if instructions:
        body["instructions"] = instructions
    body["input"] = input_items(rest)
    body.update(settings_json(request.settings))
    if stream:
        body["stream"] = True
    body.update(request.settings.extra)
    return body


def split_instructions(messages: tuple[Message, ...]) -> tuple[str, tuple[Message, ...]]:
    """The leading system messages joined as instructions, and the messages after them."""
    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    text = "\n\n".join(m.text for m in messages[:lead] if m.text)
    return text, messages[lead:]


def input_items(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Input items for the conversation (one message may give several items)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        items.extend(message_items(message))
    return items


def message_items(message: Message) -> list[dict[str, Any]]:
    """The items of one message."""
    if message.role == "tool":
        return [{"type": "function_call_output", "call_id": message.tool_call_id or "",
                 "output": message.text}]
    if message.role == "assistant":
        items: list[dict[str, Any]] = []
        if message.text:
            items.append({"role": "assistant", "content": message.text})
        items.extend(
            {"type": "function_call", "call_id": c.id, "name": c.name,
             "arguments": c.arguments or "{}"}
            for c in message.tool_calls
        )
        return items
    role = "developer" if message.role == "system" else message.role
    if message.images:
        return [{"role": role, "content": [part_json(p) for p in message.parts]}]
    return [{"role": role, "content": message.text}]


def part_json(part: TextPart | ImagePart) -> dict[str, Any]:
    """An input content part."""
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    return {"type": "input_image", "image_url": part.data_url()}


def settings_json(settings: Settings) -> dict[str, Any]:
    """Sampling, output limit, tools and the text format."""
    out = sampling_fields(settings, temperature="temperature", top_p="top_p",
                          max_tokens="max_output_tokens")
    if settings.tools:
        out["tools"] = [tool_json(t) for t in settings.tools]
    if settings.tool_choice is not None:
        out["tool_choice"] = tool_choice_json(settings.tool_choice)
    fmt = text_format_json(settings.response_format)
    if fmt is not None:
        out["text"] = {"format": fmt}
    return out


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A function tool. `strict` is always sent: the Responses API defaults it to true."""
    out: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = dict(tool.parameters)
    out["strict"] = tool.strict
    return out


def tool_choice_json(choice: str) -> Any:
    """`auto`/`none`/`required`, or one named function."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def text_format_json(fmt: ResponseFormat) -> dict[str, Any] | None:
    """`text.format`: JSON mode or a JSON Schema; `None` for plain text."""
    if fmt.kind == "json":
        return {"type": "json_object"}
    if fmt.kind == "json_schema":
        return {"type": "json_schema", "name": fmt.name, "schema": dict(fmt.schema or {}),
                "strict": fmt.strict}
    return None
