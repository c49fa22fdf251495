"""`SchemaGuard`: what `Switch` calls for every name, so every answer to a request with a schema
`response_format` is validated — plain models, aliases and routes, streamed or not.

A request without a schema goes straight to the wrapped model (one attribute check). With one,
`llmswitch.structured.enforce` validates the answer and asks again with the errors up to the
format's `retries` times, then raises `SchemaError`; the completion's `parsed` holds the value.
Models that validate the request's schema themselves (a `structured` route without its own
schema) set `enforces_schema = True` and are passed through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from typing import Any

from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.results import Completion, StreamEvent


class SchemaGuard(Model):
    """Validates answers against the request's schema; otherwise the wrapped model itself."""

    def __init__(self, inner: Model) -> None:
        self.unguarded = inner
        self.name = inner.name
        self._passes = bool(getattr(inner, "enforces_schema", False))

    def complete(self, request: Request) -> Coroutine[Any, Any, Completion]:
        """The inner model's answer, validated when the request carries a schema.

        Not a coroutine of its own: it hands back the inner model's (or `enforce`'s), so a
        call through the guard costs no extra coroutine frame to create and resume."""
        if request.settings.response_format.schema is None or self._passes:
            return self.unguarded.complete(request)
        from llmswitch.structured import enforce

        return enforce(self.unguarded, request, self.name)

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """The inner model's stream; with a schema, its final answer validated."""
        if request.settings.response_format.schema is None or self._passes:
            return self.unguarded.stream(request)
        from llmswitch.structured import enforce_stream

        return enforce_stream(self.unguarded, request, self.name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.unguarded, attribute)  # e.g. a route's targets, for inspection

    async def aclose(self) -> None:
        """Close the wrapped model."""
        await self.unguarded.aclose()

    def describe(self) -> dict[str, Any]:
        """The wrapped model's description (the guard is invisible in listings)."""
        return self.unguarded.describe()
