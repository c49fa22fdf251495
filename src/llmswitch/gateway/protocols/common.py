"""What every API's request becomes before it reaches the `Switch`, and shared checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch import Message
from llmswitch.gateway.protocols.errors import Api, GatewayError

try:  # orjson is optional (extra `gateway`): same bytes, several times faster
    import orjson

    def dumps(value: Any) -> bytes:
        """Compact JSON as UTF-8 bytes."""
        return orjson.dumps(value)

    loads: Callable[[bytes | str], Any] = orjson.loads
except ImportError:  # pragma: no cover - exercised where orjson is absent
    def dumps(value: Any) -> bytes:
        """Compact JSON as UTF-8 bytes."""
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    loads = json.loads


@dataclass(slots=True)
class Call:
    """One client request, translated: what to ask the switch, and how to answer."""

    api: Api
    model: str
    messages: list[Message]
    settings: dict[str, Any] = field(default_factory=dict)
    """Keyword settings for `Switch.complete`/`stream` (temperature, max_tokens, tools, ...)."""
    stream: bool = False
    include_usage: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None

    @property
    def max_tokens(self) -> int | None:
        """The answer's length limit the client asked for (budgets reserve for it)."""
        value = self.settings.get("max_tokens")
        return value if isinstance(value, int) else None


def bad(message: str, param: str | None = None) -> GatewayError:
    """A 400 naming the offending parameter."""
    return GatewayError("invalid_request", message, param=param)


def require_object(body: Any) -> dict[str, Any]:
    """The body must be a JSON object."""
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def require_model(body: Mapping[str, Any]) -> str:
    """`model` is a non-empty string."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("model is required: a model, alias or route name (GET /v1/models lists them)",
                  "model")
    return model


def number(body: Mapping[str, Any], name: str, low: float, high: float,
           out: dict[str, Any], key: str | None = None) -> None:
    """Copy an optional number in [low, high] into `out`."""
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad(f"{name} must be a number from {low:g} to {high:g}, not {value!r}", name)
    out[key or name] = value


def positive_int(body: Mapping[str, Any], name: str, out: dict[str, Any],
                 key: str | None = None, required: bool = False) -> None:
    """Copy an optional (or required) positive integer into `out`."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad(f"{name}: field required", name)
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(f"{name} must be a positive integer, not {value!r}", name)
    out[key or name] = value


def stop_sequences(value: Any, name: str) -> tuple[str, ...]:
    """A stop string or a list of them."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise bad(f"{name} must be a string or a list of strings", name)


def string_map(value: Any, name: str) -> dict[str, str]:
    """Metadata: a mapping of strings to strings."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad(f"{name} must be an object of string values", name)
    return dict(value)


def boolean(body: Mapping[str, Any], name: str) -> bool:
    """An optional boolean (absent is False)."""
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(f"{name} must be true or false, not {value!r}", name)
    return value


def sse(data: bytes, event: str | None = None) -> bytes:
    """One server-sent event."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
