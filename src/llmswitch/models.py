"""The one interface everything implements: a provider's model, a route, a cascade, a fallback.

A `Model` completes a `Request` and can stream it. Strategies wrap models and are models, so
they nest freely. A stream always ends with `StreamEnd` carrying the full completion, or raises.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from llmswitch.errors import ResponseError
from llmswitch.request import Request
from llmswitch.results import (
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)


class Model(ABC):
    """Something that answers requests. `name` is how it was asked for (alias, route or id)."""

    name: str = "model"

    @abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Answer the request in one piece."""

    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Answer the request as a stream of events ending with `StreamEnd`.

        The default calls `complete` and replays its answer as one delta; models that can
        stream natively override this.
        """
        return replay_as_stream(self.complete(request))

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most models hold nothing
        """Release what the model holds (clients, threads). Safe to call twice."""

    def describe(self) -> dict[str, Any]:
        """A short JSON-able description for listings and traces."""
        return {"name": self.name, "kind": type(self).__name__}


async def replay_as_stream(pending: Any) -> AsyncIterator[StreamEvent]:
    """Await a completion and yield it as stream events (text, tool calls, end)."""
    completion: Completion = await pending
    if completion.text:
        yield TextDelta(completion.text)
    for i, call in enumerate(completion.tool_calls):
        yield ToolCallDelta(i, call.id, call.name, call.arguments)
    yield StreamEnd(completion)


async def collect(events: AsyncIterator[StreamEvent]) -> Completion:
    """Consume a stream and return its completion; a stream without `StreamEnd` is an error.

    The stream is closed on the way out, whatever happens."""
    try:
        async for event in events:
            if isinstance(event, StreamEnd):
                return event.completion
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
    raise ResponseError("the stream ended without a final result")


@contextlib.asynccontextmanager
async def closing(events: AsyncIterator[StreamEvent]) -> AsyncIterator[AsyncIterator[StreamEvent]]:
    """Iterate a model's stream and close it on the way out, so a caller who leaves stops the
    provider call now (and it is recorded as abandoned), not at garbage collection."""
    try:
        yield events
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
