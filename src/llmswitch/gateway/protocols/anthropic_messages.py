"""`POST /v1/messages`: Anthropic's Messages request in, its answer and event stream out.

Supported: `system` (text or text blocks), user/assistant messages with text, image (base64 or
URL), `tool_use` and `tool_result` blocks, `max_tokens` (required, as Anthropic requires it),
`stop_sequences`, `temperature`, `top_p`, `tools` + `tool_choice`, `metadata.user_id`,
`stream`. `thinking` blocks in the history are dropped; server tools are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from llmswitch import (
    Completion,
    ImagePart,
    Message,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmswitch.gateway.protocols.common import (
    Call,
    bad,
    boolean,
    dumps,
    number,
    positive_int,
    require_model,
    require_object,
    sse,
    stop_sequences,
)
from llmswitch.gateway.protocols.errors import error_body

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "content_filter": "refusal"}


def parse(raw: Any) -> Call:
    """Translate a Messages request; a bad field is a 400 naming it."""
    body = require_object(raw)
    model = require_model(body)
    settings: dict[str, Any] = {}
    positive_int(body, "max_tokens", settings, required=True)
    number(body, "temperature", 0, 1, settings)
    number(body, "top_p", 0, 1, settings)
    stop = stop_sequences(body.get("stop_sequences"), "stop_sequences")
    if stop:
        settings["stop"] = stop
    _tools(body, settings)
    conversation = _system(body.get("system")) + messages(body.get("messages"))
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad("metadata must be an object", "metadata")
    user = metadata.get("user_id")
    return Call("anthropic", model, conversation, settings, boolean(body, "stream"),
                True, {}, user if isinstance(user, str) else None)


def _system(value: Any) -> list[Message]:
    if value is None:
        return []
    if isinstance(value, str):
        return [Message.system(value)] if value else []
    if isinstance(value, list):
        texts = []
        for i, block in enumerate(value):
            if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(
                    block.get("text"), str):
                raise bad(f"system[{i}] must be a text block", f"system[{i}]")
            texts.append(block["text"])
        return [Message.system("\n\n".join(texts))] if texts else []
    raise bad("system must be a string or a list of text blocks", "system")


def messages(value: Any) -> list[Message]:
    """The conversation; tool results become tool messages (before the turn's other text)."""
    if not isinstance(value, list) or not value:
        raise bad("messages must be a non-empty list", "messages")
    out: list[Message] = []
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        role = item.get("role") if isinstance(item, dict) else None
        if role not in ("user", "assistant"):
            raise bad(f"{where}.role must be user or assistant, not {role!r}", f"{where}.role")
        content = item.get("content")
        if isinstance(content, str):
            out.append(Message(role, (TextPart(content),)))
        elif isinstance(content, list):
            out.extend(_blocks(role, content, where))
        else:
            raise bad(f"{where}.content must be a string or a list of blocks",
                      f"{where}.content")
    return out


def _blocks(role: str, blocks: list[Any], where: str) -> list[Message]:
    parts: list[TextPart | ImagePart] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(TextPart(block["text"]))
        elif kind == "image":
            parts.append(_image(block.get("source"), at))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_use(block, at))
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, at))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise bad(f"{at}: unsupported block {kind!r} in a {role} message", at)
    out = results
    if parts or calls or not results:
        out.append(Message(role, tuple(parts), tuple(calls)))  # type: ignore[arg-type]
    return out


def _image(source: Any, where: str) -> ImagePart:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "url" and isinstance(source.get("url"), str):
        return ImagePart(url=source["url"])
    if kind == "base64" and isinstance(source.get("data"), str):
        try:
            data = base64.b64decode(source["data"], validate=True)
        except (binascii.Error, ValueError):
            raise bad(f"{where}.source.data is not valid base64", f"{where}.source") from None
        return ImagePart(data=data, media_type=str(source.get("media_type", "image/png")))
    raise bad(f"{where}.source must be {{type: base64, media_type, data}} or {{type: url, url}}",
              f"{where}.source")


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise bad(f"{where}: tool_use needs id and name", where)
    return ToolCall(block["id"], block["name"], json.dumps(block.get("input") or {}))


def _tool_result(block: dict[str, Any], where: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise bad(f"{where}.tool_use_id is required", f"{where}.tool_use_id")
    content = block.get("content", "")
    if isinstance(content, list):
        content = "".join(b.get("text", "") for b in content
                          if isinstance(b, dict) and b.get("type") == "text")
    elif not isinstance(content, str):
        raise bad(f"{where}.content must be a string or text blocks", f"{where}.content")
    if block.get("is_error"):
        content = f"Error: {content}"
    return Message.tool(call_id, content)


def _tools(body: dict[str, Any], settings: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools must be a list", "tools")
        specs = []
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or (
                    tool.get("type") not in (None, "custom")):
                raise bad(f"tools[{i}] must be {{name, description, input_schema}} "
                          "(server tools are not supported)", f"tools[{i}]")
            schema = tool.get("input_schema") or {"type": "object", "properties": {}}
            if not isinstance(schema, dict):
                raise bad(f"tools[{i}].input_schema must be a JSON Schema object",
                          f"tools[{i}].input_schema")
            specs.append({"name": tool["name"], "description": tool.get("description", ""),
                          "parameters": schema})
        if specs:
            settings["tools"] = specs
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    names = {t["name"] for t in settings.get("tools", ())}
    if kind in {"auto", "none"}:
        settings["tool_choice"] = kind
    elif kind == "any":
        settings["tool_choice"] = "required"
    elif kind == "tool" and choice.get("name") in names:
        settings["tool_choice"] = choice["name"]
    else:
        raise bad("tool_choice must be {type: auto | any | none} or {type: tool, name} naming "
                  "a tool in tools", "tool_choice")


def usage_object(usage: Usage) -> dict[str, int]:
    """Anthropic's `usage`: `input_tokens` excludes cache reads and writes."""
    return {
        "input_tokens": max(0, usage.input_tokens - usage.cached_input_tokens
                            - usage.cache_write_tokens),
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
    }


def _input(arguments: str) -> Any:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def render(completion: Completion, call: Call) -> dict[str, Any]:
    """The `message` object."""
    content: list[dict[str, Any]] = []
    if completion.text:
        content.append({"type": "text", "text": completion.text})
    content.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
                   for c in completion.tool_calls)
    return {
        "id": f"msg_{completion.trace_id}",
        "type": "message",
        "role": "assistant",
        "model": completion.model or call.model,
        "content": content,
        "stop_reason": STOP_REASONS.get(completion.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": usage_object(completion.usage),
    }


class MessageStream:
    """Renders a `Switch.stream` as Anthropic's event sequence: `message_start`, per block
    `content_block_start` / `content_block_delta`* / `content_block_stop`, `message_delta`
    (stop reason and usage), `message_stop`."""

    def __init__(self, call: Call, trace_id: str) -> None:
        self.call = call
        self.trace_id = trace_id
        self._index = -1
        self._open: str | None = None  # "text" or the open tool call's index

    def start(self) -> bytes:
        """`message_start` and a `ping`."""
        message: dict[str, Any] = {
            "id": f"msg_{self.trace_id}", "type": "message", "role": "assistant",
            "model": self.call.model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return (sse(dumps({"type": "message_start", "message": message}), "message_start")
                + sse(b'{"type":"ping"}', "ping"))

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse(dumps({"type": "content_block_stop", "index": self._index}),
                   "content_block_stop")

    def _begin(self, key: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = key
        return out + sse(dumps({"type": "content_block_start", "index": self._index,
                                "content_block": block}), "content_block_start")

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse(dumps({"type": "content_block_delta", "index": self._index, "delta": delta}),
                   "content_block_delta")

    def event(self, event: StreamEvent) -> bytes:
        """The bytes for one stream event (empty when it has no wire form)."""
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            out = b"" if self._open == "text" else self._begin(
                "text", {"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            key = f"tool{event.index}"
            out = b""
            if self._open != key:
                out = self._begin(key, {"type": "tool_use", "id": event.id or f"toolu_{key}",
                                        "name": event.name or "", "input": {}})
            if event.arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": event.arguments})
            return out
        if isinstance(event, StreamEnd):
            return self.end(event.completion)
        return b""

    def end(self, completion: Completion) -> bytes:
        """Close the open block, then `message_delta` (stop reason, usage) and `message_stop`."""
        delta = {"type": "message_delta",
                 "delta": {"stop_reason": STOP_REASONS.get(completion.finish_reason, "end_turn"),
                           "stop_sequence": None},
                 "usage": usage_object(completion.usage)}
        return (self._close() + sse(dumps(delta), "message_delta")
                + sse(b'{"type":"message_stop"}', "message_stop"))

    def error(self, kind: str, message: str) -> bytes:
        """An `error` event after the stream began, never `message_stop` (the Anthropic SDK
        raises on it), so a cut answer is never taken for a whole one."""
        return sse(dumps(error_body(kind, message, "anthropic")), "error")
