"""Request mapping: llmswitch `Request` → Bedrock Converse JSON body.

System messages lift into `system: [{text}]`; tool results become `toolResult` blocks in a user
turn; consecutive turns of one role merge (Converse wants them alternating). A JSON Schema answer
uses the native `outputConfig.textFormat` where the card says the model has `json_schema`, and a
forced tool (`STRUCTURED_TOOL`) otherwise; the response parser turns that tool's input into text.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from llmswitch.adapters.base import sampling_fields
from llmswitch.catalog.card import ModelCard
from llmswitch.errors import UnsupportedError
from llmswitch.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
from llmswitch.request import Request, ResponseFormat, Settings

STRUCTURED_TOOL = "llmswitch_structured_output"
"""The tool a JSON answer is forced through when the model has no native structured output."""

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                 "image/gif": "gif", "image/webp": "webp"}


def model_path(model: str, stream: bool) -> str:
    """`/model/{id}/converse[-stream]` with the id URL-encoded (`:` and `/` of ARNs too)."""
    return f"/model/{quote(model, safe='')}/{'converse-stream' if stream else 'converse'}"


def structured_mode(settings: Settings, card: ModelCard | None) -> str | None:
    """How a JSON answer is obtained: `native`, `tool` (emulated), or `None` for text."""
    fmt = settings.response_format
    if fmt.kind == "text":
        return None
    if fmt.kind == "json_schema" and card is not None and card.has("json_schema"):
        return "native"
    return "tool"


def build_body(request: Request, card: ModelCard | None = None) -> dict[str, Any]:
    """The Converse JSON body (the same for `converse` and `converse-stream`)."""
    settings = request.settings
    system = [{"text": m.text} for m in request.messages if m.role == "system" and m.text]
    body: dict[str, Any] = {"messages": messages_json(request.messages)}
    if system:
        body["system"] = system
    body["inferenceConfig"] = inference_config(settings)
    mode = structured_mode(settings, card)
    tool_config = tool_config_json(settings, _has_tool_blocks(request.messages), mode == "tool")
    if tool_config:
        body["toolConfig"] = tool_config
    if mode == "native":
        body["outputConfig"] = output_config(settings.response_format)
    body.update(settings.extra)
    return body


def messages_json(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Non-system messages as Converse turns, consecutive same-role turns merged."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        content = content_json(message)
        if not content:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(content)
        else:
            out.append({"role": role, "content": content})
    return out


def content_json(message: Message) -> list[dict[str, Any]]:
    """The content blocks of one message."""
    if message.role == "tool":
        return [{"toolResult": {
            "toolUseId": message.tool_call_id or "",
            "content": [{"text": message.text}],
        }}]
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text.strip():  # Converse rejects blank text blocks
                blocks.append({"text": part.text})
        else:
            blocks.append(image_json(part))
    blocks.extend(tool_use_json(c) for c in message.tool_calls)
    return blocks


def tool_use_json(call: ToolCall) -> dict[str, Any]:
    """An assistant tool call; Converse wants `input` as a JSON value, not text."""
    try:
        args: Any = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        args = {}
    return {"toolUse": {"toolUseId": call.id, "name": call.name, "input": args}}


def image_json(part: ImagePart) -> dict[str, Any]:
    """An image block: inline bytes (base64 in JSON), a `data:` URL, or an `s3://` location."""
    media_type, data = part.media_type, part.data
    if part.url is not None:
        if part.url.startswith("s3://"):
            return {"image": {"format": _image_format(media_type, part.url),
                              "source": {"s3Location": {"uri": part.url}}}}
        media_type, data = _data_url(part.url)
    assert data is not None
    return {"image": {"format": _image_format(media_type, ""),
                      "source": {"bytes": base64.b64encode(data).decode()}}}


def _data_url(url: str) -> tuple[str, bytes]:
    if not url.startswith("data:") or ";base64," not in url:
        raise UnsupportedError(
            "Bedrock takes images as bytes or s3:// locations, not web URLs",
            hint="download the image and pass ImagePart(data=..., media_type=...)",
        )
    head, _, payload = url.partition(",")
    try:
        return head[5:].split(";", 1)[0], base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise UnsupportedError("the image data: URL is not valid base64") from None


def _image_format(media_type: str, url: str) -> str:
    """The format from an S3 key's extension, else from the media type."""
    fmt = IMAGE_FORMATS.get("image/" + url.rsplit(".", 1)[-1].lower()) if url else None
    fmt = fmt or IMAGE_FORMATS.get(media_type.lower())
    if fmt is None:
        raise UnsupportedError(f"Bedrock does not accept images of type {media_type!r}",
                               hint="use png, jpeg, gif or webp")
    return fmt


def inference_config(settings: Settings) -> dict[str, Any]:
    """`maxTokens`, `temperature`, `topP`, `stopSequences` (Converse has no seed)."""
    return sampling_fields(settings, max_tokens="maxTokens", temperature="temperature",
                           top_p="topP", stop="stopSequences")


def tool_config_json(
    settings: Settings, history_has_tools: bool, structured_tool: bool
) -> dict[str, Any] | None:
    """`toolConfig`, or `None`. Converse has no `none` choice: tools are then left out unless
    the history holds tool blocks (which require a toolConfig)."""
    tools = [tool_spec_json(t) for t in settings.tools]
    choice = settings.tool_choice
    if choice == "none" and not history_has_tools:
        tools = []
    if structured_tool:
        tools.append(tool_spec_json(_structured_tool(settings.response_format)))
        if not settings.tools or choice == "none":
            choice = STRUCTURED_TOOL
        elif choice in (None, "auto"):
            choice = "required"  # a user tool or the answer tool, never free text
    if not tools:
        return None
    out: dict[str, Any] = {"tools": tools}
    if choice == "auto":
        out["toolChoice"] = {"auto": {}}
    elif choice == "required":
        out["toolChoice"] = {"any": {}}
    elif choice is not None and choice != "none":
        out["toolChoice"] = {"tool": {"name": choice}}
    return out


def tool_spec_json(tool: ToolSpec) -> dict[str, Any]:
    """A `toolSpec`."""
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": dict(tool.parameters)}
    if tool.strict:
        spec["strict"] = True
    return {"toolSpec": spec}


def _structured_tool(fmt: ResponseFormat) -> ToolSpec:
    schema = dict(fmt.schema) if fmt.kind == "json_schema" and fmt.schema else {"type": "object"}
    return ToolSpec(STRUCTURED_TOOL, f"Give the final answer ({fmt.name}) as this tool's input.",
                    schema)


def output_config(fmt: ResponseFormat) -> dict[str, Any]:
    """Native structured output: `outputConfig.textFormat` (the schema travels as JSON text)."""
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
        "name": fmt.name, "schema": json.dumps(dict(fmt.schema or {})),
    }}}}


def _has_tool_blocks(messages: tuple[Message, ...]) -> bool:
    return any(m.role == "tool" or m.tool_calls for m in messages)
