"""A provider-neutral request: messages plus settings.

`Settings` holds everything that shapes a call but is not a message. Both types are frozen;
use `dataclasses.replace` (or `Request.with_settings`) to derive a changed copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from llmswitch.messages import ImagePart, Message, ToolSpec

ToolChoice: TypeAlias = Literal["auto", "none", "required"] | str
"""`auto`, `none`, `required`, or the name of one tool the model must call."""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """What shape the answer must take: free text, any JSON object, or JSON matching a schema."""

    kind: Literal["text", "json", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool = True

    def __post_init__(self) -> None:
        if self.kind == "json_schema" and self.schema is None:
            raise ValueError("ResponseFormat(kind='json_schema') needs a schema")

    @classmethod
    def json_schema(cls, schema: Mapping[str, Any], name: str = "response") -> ResponseFormat:
        """Constrain the answer to a JSON Schema."""
        return cls("json_schema", schema, name)


TEXT = ResponseFormat()
JSON = ResponseFormat("json")


@dataclass(frozen=True, slots=True)
class Settings:
    """Sampling and output settings for one call. `None` means the provider's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat = TEXT
    timeout: float | None = None
    """Seconds for the whole call, including a stream's last byte."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific body fields passed through unchanged."""

    def __post_init__(self) -> None:
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        if self.max_tokens is not None and (
            not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise ValueError(f"max_tokens must be a positive integer, not {self.max_tokens!r}")
        if self.timeout is not None and (
            not isinstance(self.timeout, (int, float)) or self.timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        names = {t.name for t in self.tools}
        if self.tool_choice not in (None, "auto", "none", "required") and (
            self.tool_choice not in names
        ):
            raise ValueError(f"tool_choice {self.tool_choice!r} names no tool in tools")

    def merged(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with the given fields replaced (unknown names are an error)."""
        if not overrides:
            return self
        return dataclasses.replace(self, **coerce_settings(overrides))


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")


SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))


def coerce_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and normalise convenient spellings (a str stop, dict tools, dict formats)."""
    unknown = set(values) - SETTING_NAMES
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(SETTING_NAMES))}"
        )
    out = dict(values)
    stop = out.get("stop")
    if isinstance(stop, str):
        out["stop"] = (stop,)
    elif stop is not None:
        out["stop"] = tuple(stop)
    if "tools" in out:
        out["tools"] = tuple(_tool(t) for t in out["tools"] or ())
    fmt = out.get("response_format")
    if isinstance(fmt, (str, Mapping, type)):
        out["response_format"] = _format(fmt)
    return out


def _tool(value: ToolSpec | Mapping[str, Any]) -> ToolSpec:
    if isinstance(value, ToolSpec):
        return value
    fn = value.get("function", value)
    return ToolSpec(
        name=str(fn["name"]),
        description=str(fn.get("description", "")),
        parameters=fn.get("parameters") or {"type": "object", "properties": {}},
        strict=bool(fn.get("strict", False)),
    )


def _format(value: str | Mapping[str, Any] | type) -> ResponseFormat:
    if isinstance(value, type):
        schema_of = getattr(value, "model_json_schema", None)  # a pydantic model class
        if schema_of is None:
            raise ValueError("response_format class must be a pydantic model")
        return ResponseFormat.json_schema(schema_of(), value.__name__)
    if value == "text" or (isinstance(value, Mapping) and value.get("type") == "text"):
        return TEXT
    if value == "json" or (isinstance(value, Mapping) and value.get("type") == "json_object"):
        return JSON
    if isinstance(value, Mapping) and value.get("type") == "json_schema":  # OpenAI's shape
        inner = value.get("json_schema") or {}
        return ResponseFormat.json_schema(inner.get("schema") or {}, str(inner.get("name",
                                                                                  "response")))
    if isinstance(value, Mapping) and "schema" in value:
        return ResponseFormat.json_schema(value["schema"], str(value.get("name", "response")))
    if isinstance(value, Mapping) and value.get("type") in ("object", "array"):
        return ResponseFormat.json_schema(value)
    raise ValueError(
        "response_format must be 'text', 'json', a JSON Schema, or {'schema': ..., 'name': ...}"
    )


@dataclass(frozen=True, slots=True)
class Request:
    """Messages and settings, independent of any model. `metadata` feeds routing rules."""

    messages: tuple[Message, ...]
    settings: Settings = field(default_factory=Settings)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def with_settings(self, **changes: Any) -> Request:
        """A copy with some settings replaced."""
        return dataclasses.replace(self, settings=self.settings.merged(changes))

    def with_messages(self, messages: Sequence[Message]) -> Request:
        """A copy with other messages."""
        return dataclasses.replace(self, messages=tuple(messages))

    @property
    def has_images(self) -> bool:
        """Whether any message carries an image."""
        return any(isinstance(p, ImagePart) for m in self.messages for p in m.parts)

    @property
    def prompt_text(self) -> str:
        """All message text, joined by newlines (for routing features and token estimates)."""
        return "\n".join(m.text for m in self.messages)

    @property
    def last_user_text(self) -> str:
        """The text of the last user message (empty when there is none)."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.text
        return ""
