"""Provider-neutral messages: roles, content parts, tool definitions and tool calls.

Every adapter translates these to and from one wire protocol; nothing here knows any vendor.
All types are frozen: strategies copy and extend requests, they never mutate the caller's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class TextPart:
    """A run of text inside a message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, given by URL or by inline bytes with a media type."""

    url: str | None = None
    data: bytes | None = None
    media_type: str = "image/png"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("ImagePart needs exactly one of url= or data=")

    def data_url(self) -> str:
        """The image as a URL: the given one, or a base64 `data:` URL."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"

    def base64_data(self) -> str:
        """The inline bytes as base64 (empty for URL images)."""
        return base64.b64encode(self.data).decode() if self.data is not None else ""


Part: TypeAlias = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call a tool; `arguments` is the JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"

    def args(self) -> dict[str, Any]:
        """The arguments parsed as a JSON object (empty when the model sent none)."""
        if not self.arguments.strip():
            return {}
        parsed = json.loads(self.arguments)
        if not isinstance(parsed, dict):
            raise ValueError(f"tool call {self.name!r} arguments are not a JSON object")
        return parsed


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: a name, a description and a JSON Schema of its parameters."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation.

    `tool_calls` appear on assistant messages; `tool_call_id` marks a tool message as the
    result of that call.
    """

    role: Role
    parts: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """All text parts joined."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        """The image parts."""
        return tuple(p for p in self.parts if isinstance(p, ImagePart))

    @classmethod
    def system(cls, text: str) -> Message:
        """A system instruction."""
        return cls("system", (TextPart(text),))

    @classmethod
    def user(cls, content: str | Iterable[Part]) -> Message:
        """A user turn from text or parts."""
        return cls("user", _parts(content))

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        """An assistant turn, optionally with tool calls."""
        parts = (TextPart(text),) if text else ()
        return cls("assistant", parts, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        """The result of a tool call."""
        return cls("tool", (TextPart(content),), tool_call_id=tool_call_id, name=name)


def _parts(content: str | Iterable[Part]) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    return tuple(content)


MessagesInput: TypeAlias = str | Message | Sequence[Message | Mapping[str, Any]]


def to_messages(value: MessagesInput, system: str | None = None) -> tuple[Message, ...]:
    """Normalise a prompt string, a message or a list of messages/dicts into messages.

    Dicts use the familiar `{"role": ..., "content": ...}` shape.
    """
    if isinstance(value, str):
        out: list[Message] = [Message.user(value)]
    elif isinstance(value, Message):
        out = [value]
    else:
        out = [m if isinstance(m, Message) else message_from_dict(m) for m in value]
    if system is not None:
        if not isinstance(system, str):
            raise ValueError(f"system must be a string, not {type(system).__name__}")
        out.insert(0, Message.system(system))
    if not out:
        raise ValueError("a request needs at least one message")
    return tuple(out)


def message_from_dict(data: Mapping[str, Any]) -> Message:
    """Build a message from an OpenAI-style dict (`role`, `content`, `tool_calls`, …)."""
    role = data.get("role")
    if role not in ("system", "user", "assistant", "tool"):
        raise ValueError(f"message role must be system, user, assistant or tool, not {role!r}")
    content = data.get("content")
    parts: tuple[Part, ...]
    if content is None:
        parts = ()
    elif isinstance(content, str):
        parts = (TextPart(content),)
    else:
        parts = tuple(_part_from_dict(p) for p in content)
    calls = tuple(
        ToolCall(
            id=str(c.get("id", "")),
            name=str(c.get("function", c).get("name", "")),
            arguments=_arguments_text(c.get("function", c).get("arguments", "{}")),
        )
        for c in data.get("tool_calls") or ()
    )
    return Message(role, parts, calls, data.get("tool_call_id"), data.get("name"))


def _arguments_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _part_from_dict(part: Mapping[str, Any]) -> Part:
    kind = part.get("type")
    if kind == "text":
        return TextPart(str(part.get("text", "")))
    if kind == "image_url":
        url = part["image_url"]
        return ImagePart(url=url if isinstance(url, str) else str(url["url"]))
    raise ValueError(f"unsupported content part type {kind!r} (use 'text' or 'image_url')")
