"""A provider-neutral request: messages plus settings.

`Settings` holds everything that shapes a call but is not a message. Both types are frozen;
use `dataclasses.replace` (or `Request.with_settings`) to derive a changed copy.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from llmswitch.messages import ImagePart, Message, ToolSpec

ToolChoice: TypeAlias = Literal["auto", "none", "required"] | str
"""`auto`, `none`, `required`, or the name of one tool the model must call."""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """What shape the answer must take: free text, any JSON object, or JSON matching a schema.

    A schema is checked (JSON Schema meta-schema, resolvable `$ref`s, known keywords) when the
    format is made, so a bad one fails before any call; `Switch` then validates every answer
    against it, asking again up to `retries` times before `SchemaError`.
    """

    kind: Literal["text", "json", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool = True
    retries: int = 2
    """Corrective retries after an answer that does not match the schema."""
    model: type | None = field(default=None, compare=False, repr=False)
    """The pydantic model class the schema came from: answers are parsed into it."""

    def __post_init__(self) -> None:
        if self.kind == "json_schema" and self.schema is None:
            raise ValueError("ResponseFormat(kind='json_schema') needs a schema")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or (
                self.retries < 0):
            raise ValueError(f"response_format retries must be a whole number >= 0, "
                             f"not {self.retries!r}")
        if self.schema is not None and self.model is None:  # pydantic checks its own schemas
            from llmswitch.schemacheck import SchemaProblem, compile_schema

            try:
                compile_schema(self.schema)
            except SchemaProblem as exc:
                raise exc.within("response_format schema") from None

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
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or
                                            not isinstance(self.max_tokens, int) or
                                            self.max_tokens < 1):
            raise ValueError(f"max_tokens must be a positive integer, not {self.max_tokens!r}")
        if self.timeout is not None and (isinstance(self.timeout, bool) or
                                         not isinstance(self.timeout, (int, float)) or
                                         not self.timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or
                                      not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")
        if self.stop and not all(isinstance(s, str) for s in self.stop):
            raise ValueError(f"stop must be a string or a list of strings, not {self.stop!r}")
        if not isinstance(self.response_format, ResponseFormat):
            raise ValueError(f"response_format must be a ResponseFormat, not "
                             f"{self.response_format!r}")
        if not isinstance(self.extra, Mapping):
            raise ValueError(f"extra must be a mapping of body fields, not {self.extra!r}")
        names = {t.name for t in self.tools}
        if len(names) < len(self.tools):
            twice = sorted({t.name for t in self.tools if [u.name for u in self.tools].count(
                t.name) > 1})
            raise ValueError(f"tools: each name must be unique ({', '.join(twice)} given twice)")
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
    """Check names and normalise convenient spellings (a str stop, dict tools, dict formats).

    `ValueError` names the setting when a value has the wrong shape.
    """
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
        if not isinstance(stop, (list, tuple)):
            raise ValueError(f"stop must be a string or a list of strings, not {stop!r}")
        out["stop"] = tuple(stop)
    if "tools" in out:
        tools = out["tools"] or ()
        if not isinstance(tools, (list, tuple)):
            raise ValueError(f"tools must be a list of tools, not {tools!r}")
        out["tools"] = tuple(_tool(i, t) for i, t in enumerate(tools))
    fmt = out.get("response_format")
    if fmt is not None and not isinstance(fmt, ResponseFormat):
        out["response_format"] = _format(fmt)
    return out


def _tool(index: int, value: ToolSpec | Mapping[str, Any]) -> ToolSpec:
    if isinstance(value, ToolSpec):
        return value
    fn = value.get("function", value) if isinstance(value, Mapping) else None
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise ValueError(f"tools[{index}] must be a ToolSpec or a mapping with a 'name'")
    parameters = fn.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, Mapping):
        raise ValueError(f"tools[{index}] ({fn['name']}): parameters must be a JSON Schema "
                         f"object, not {parameters!r}")
    return ToolSpec(
        name=fn["name"],
        description=str(fn.get("description", "")),
        parameters=parameters,
        strict=bool(fn.get("strict", False)),
    )


_WRAPPER_KEYS = frozenset({"schema", "name", "strict", "retries"})
_FORMAT_HELP = ("response_format must be 'text', 'json', a JSON Schema, a pydantic model class, "
                "or {'schema': ..., 'name': ..., 'retries': ...}")


def _format(value: Any) -> ResponseFormat:
    if isinstance(value, type):
        return model_format(value)
    if value == "text":
        return TEXT
    if value == "json":
        return JSON
    if not isinstance(value, Mapping):
        raise ValueError(f"{_FORMAT_HELP}, not {value!r}")
    kind = value.get("type")
    if kind == "text":
        return TEXT
    if kind == "json_object":
        return JSON
    if kind == "json_schema":  # OpenAI's shape
        inner = value.get("json_schema")
        if not isinstance(inner, Mapping) or inner.get("schema") is None:
            raise ValueError("response_format json_schema needs json_schema.schema")
        return ResponseFormat("json_schema", inner["schema"], str(inner.get("name", "response")),
                              bool(inner.get("strict", True)))
    if "schema" in value:
        unknown = set(value) - _WRAPPER_KEYS
        if unknown:
            raise ValueError(f"response_format: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(_WRAPPER_KEYS))}")
        schema = value["schema"]
        if isinstance(schema, type):
            fmt = model_format(schema)
            return dataclasses.replace(fmt, retries=value.get("retries", fmt.retries))
        return ResponseFormat("json_schema", schema, str(value.get("name", "response")),
                              bool(value.get("strict", True)), value.get("retries", 2))
    return ResponseFormat.json_schema(value)  # a bare JSON Schema (checked on creation)


@functools.lru_cache(maxsize=128)
def model_format(cls: type) -> ResponseFormat:
    """A pydantic model class as a format (its JSON Schema is generated once per class)."""
    schema_of = getattr(cls, "model_json_schema", None)
    if schema_of is None:
        raise ValueError(f"response_format class must be a pydantic model, not {cls.__name__}")
    return ResponseFormat("json_schema", schema_of(), cls.__name__, model=cls)


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
