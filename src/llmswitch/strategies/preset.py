"""`Preset`: a model with default settings and an optional system prompt (a configured alias)."""

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
        return await self.inner.complete(self.apply(request))

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Delegate with defaults applied."""
        return self.inner.stream(self.apply(request))

    async def aclose(self) -> None:
        """Close the wrapped model."""
        await self.inner.aclose()

    def describe(self) -> dict[str, Any]:
        """The preset and what it wraps."""
        return {"name": self.name, "kind": "preset", "inner": self.inner.describe()}
