"""`POST /v1/responses`: a documented, text-only subset of OpenAI's Responses API.

In: `model`, `input` (a string, or a list of messages whose content is a string or
`input_text` / `output_text` / `input_image` parts), `instructions`, `max_output_tokens`,
`temperature`, `top_p`, `text.format` (`text`, `json_object`, `json_schema`), `metadata`,
`user`, `stream`. Out: a `response` object with one `message` output item of `output_text`,
and, when streamed, the event sequence `response.created`, `response.in_progress`,
`response.output_item.added`, `response.content_part.added`, `response.output_text.delta`*,
`response.output_text.done`, `response.content_part.done`, `response.output_item.done`,
`response.completed`. Tools, `previous_response_id` and stored conversations are refused
with a 400 that says so.
"""

from __future__ import annotations

import time
from typing import Any

from llmswitch import Completion, ImagePart, Message, StreamEnd, StreamEvent, TextDelta, TextPart
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
    string_map,
)
from llmswitch.gateway.protocols.errors import KINDS

UNSUPPORTED = ("tools", "previous_response_id", "conversation", "prompt", "background")
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def parse(raw: Any) -> Call:
    """Translate a Responses request (the subset above); a bad field is a 400 naming it."""
    body = require_object(raw)
    model = require_model(body)
    for name in UNSUPPORTED:
        if body.get(name):
            raise bad(f"{name} is not supported by this gateway's Responses endpoint (a "
                      "text-only subset; use /v1/chat/completions for tools)", name)
    settings: dict[str, Any] = {}
    positive_int(body, "max_output_tokens", settings, "max_tokens")
    number(body, "temperature", 0, 2, settings)
    number(body, "top_p", 0, 1, settings)
    fmt = _format(body.get("text"))
    if fmt is not None:
        settings["response_format"] = fmt
    conversation: list[Message] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad("instructions must be a string", "instructions")
        conversation.append(Message.system(instructions))
    conversation.extend(_input(body.get("input")))
    user = body.get("user")
    return Call("responses", model, conversation, settings, boolean(body, "stream"), True,
                string_map(body.get("metadata"), "metadata"),
                user if isinstance(user, str) else None)


def _format(text: Any) -> Any:
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        return {"schema": fmt["schema"], "name": str(fmt.get("name", "response"))}
    raise bad("text.format must be {type: text | json_object} or "
              "{type: json_schema, name, schema}", "text.format")


def _input(value: Any) -> list[Message]:
    if isinstance(value, str):
        if not value:
            raise bad("input must not be empty", "input")
        return [Message.user(value)]
    if not isinstance(value, list) or not value:
        raise bad("input must be a string or a non-empty list of messages", "input")
    out = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            raise bad(f"{where}: only message items are supported", where)
        role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise bad(f"{where}.role must be system, developer, user or assistant",
                      f"{where}.role")
        content = item.get("content")
        if isinstance(content, str):
            parts: tuple[TextPart | ImagePart, ...] = (TextPart(content),)
        elif isinstance(content, list):
            parts = tuple(_part(p, f"{where}.content[{j}]") for j, p in enumerate(content))
        else:
            raise bad(f"{where}.content must be a string or a list of parts", f"{where}.content")
        out.append(Message(role, parts))  # type: ignore[arg-type]
    return out


def _part(part: Any, where: str) -> TextPart | ImagePart:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        return TextPart(part["text"])
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        return ImagePart(url=part["image_url"])
    raise bad(f"{where}: unsupported part {kind!r} (input_text, output_text and input_image "
              "are)", where)


def usage_object(completion: Completion) -> dict[str, Any]:
    """The Responses API's `usage`."""
    u = completion.usage
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_input_tokens},
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


def _message_item(trace_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status else []
    return {"type": "message", "id": f"msg_{trace_id}", "status": status or "in_progress",
            "role": "assistant", "content": content}


def _response(call: Call, trace_id: str, created: int, status: str,
              completion: Completion | None = None) -> dict[str, Any]:
    output = [_message_item(trace_id, completion.text, "completed")] if completion else []
    out: dict[str, Any] = {
        "id": f"resp_{trace_id}", "object": "response", "created_at": created,
        "status": status, "model": (completion.model if completion else None) or call.model,
        "output": output, "error": None, "incomplete_details": None,
        "metadata": call.metadata, "usage": usage_object(completion) if completion else None,
    }
    if completion is not None and completion.finish_reason == "length":
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": "max_output_tokens"}
    return out


def render(completion: Completion, call: Call, created: int | None = None) -> dict[str, Any]:
    """The `response` object."""
    return _response(call, completion.trace_id, created or int(time.time()), "completed",
                     completion)


class ResponseStream:
    """Renders a `Switch.stream` as the Responses API's event sequence."""

    def __init__(self, call: Call, trace_id: str, created: int | None = None) -> None:
        self.call = call
        self.trace_id = trace_id
        self.created = created or int(time.time())
        self._seq = -1
        self._text: list[str] = []

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        self._seq += 1
        return sse(dumps({"type": kind, "sequence_number": self._seq, **data}), kind)

    def _ids(self) -> dict[str, Any]:
        return {"item_id": f"msg_{self.trace_id}", "output_index": 0, "content_index": 0}

    def start(self) -> bytes:
        """`response.created`, `response.in_progress`, the output item and its text part."""
        response = _response(self.call, self.trace_id, self.created, "in_progress")
        item = _message_item(self.trace_id, "", "")
        part = {"type": "output_text", "text": "", "annotations": []}
        return (self._event("response.created", {"response": response})
                + self._event("response.in_progress", {"response": response})
                + self._event("response.output_item.added", {"output_index": 0, "item": item})
                + self._event("response.content_part.added", {**self._ids(), "part": part}))

    def event(self, event: StreamEvent) -> bytes:
        """The bytes for one stream event (empty when it has no wire form)."""
        if isinstance(event, TextDelta) and event.text:
            self._text.append(event.text)
            return self._event("response.output_text.delta", {**self._ids(), "delta": event.text})
        if isinstance(event, StreamEnd):
            return self.end(event.completion)
        return b""

    def end(self, completion: Completion) -> bytes:
        """The `done` events and `response.completed` with the whole response."""
        text = completion.text
        part = {"type": "output_text", "text": text, "annotations": []}
        final = _response(self.call, self.trace_id, self.created, "completed", completion)
        return (self._event("response.output_text.done", {**self._ids(), "text": text})
                + self._event("response.content_part.done", {**self._ids(), "part": part})
                + self._event("response.output_item.done",
                              {"output_index": 0, "item": _message_item(self.trace_id, text,
                                                                        "completed")})
                + self._event("response.completed" if final["status"] == "completed"
                              else "response.incomplete", {"response": final}))

    def error(self, kind: str, message: str) -> bytes:
        """An `error` event after the stream began (the OpenAI SDK raises on it)."""
        spec = KINDS[kind]
        return self._event("error", {"code": spec.code or kind, "message": message,
                                     "param": None})
