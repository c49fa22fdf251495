"""`Preset`: a model with default settings and an optional system prompt (a configured alias).

When the defaults carry a schema `response_format` the caller did not override, the preset
validates the answers itself (`llmswitch.structured.enforce`), as `Switch` does for a schema
the caller sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

from llmswitch.messages import Message
from llmswitch.models import Model
from llmswitch.request import Request, Settings, coerce_settings
from llmswitch.results import Completion, StreamEvent

_DEFAULTS = Settings()


class Preset(Model):
    """Applies defaults the caller did not set, then delegates. Never mutates the request."""

    def __init__(
        self,
        name: str,
        inner: Model,
        settings: Mapping[str, Any] | None = None,
        system: str | None = None,
    ) -> None:
        self.name = name
        self.inner = inner
        self.defaults = coerce_settings(settings or {})
        Settings(**self.defaults)  # every value checked now (ValueError), not on the first call
        fmt = self.defaults.get("response_format")
        self._schema = fmt is not None and fmt.schema is not None
        self.system = system

    def apply(self, request: Request) -> Request:
        """The request with defaults filled in and the system prompt prepended."""
        current = request.settings
        fill = {
            k: v for k, v in self.defaults.items()
            if getattr(current, k) == getattr(_DEFAULTS, k)
        }
        settings = dataclasses.replace(current, **fill) if fill else current
        messages = request.messages
        if self.system and not any(m.role == "system" for m in messages):
            messages = (Message.system(self.system), *messages)
        return dataclasses.replace(request, settings=settings, messages=messages)

    async def complete(self, request: Request) -> Completion:
        """Delegate with defaults applied."""
        applied = self.apply(request)
        if self._schema and self._adds_schema(request, applied):
            from llmswitch.structured import enforce

            return await enforce(self.inner, applied, self.name)
        return await self.inner.complete(applied)

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Delegate with defaults applied."""
        applied = self.apply(request)
        if self._schema and self._adds_schema(request, applied):
            from llmswitch.structured import enforce_stream

            return enforce_stream(self.inner, applied, self.name)
        return self.inner.stream(applied)

    @staticmethod
    def _adds_schema(request: Request, applied: Request) -> bool:
        return (request.settings.response_format.schema is None
                and applied.settings.response_format.schema is not None)

    async def aclose(self) -> None:
        """Close the wrapped model."""
        await self.inner.aclose()

    def describe(self) -> dict[str, Any]:
        """The preset and what it wraps."""
        return {"name": self.name, "kind": "preset", "inner": self.inner.describe()}
