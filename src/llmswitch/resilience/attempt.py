"""One attempt's time limit inside a route, enforced by the route itself.

Each attempt is sent with `timeout` = what is left of the call's budget, and provider models
stop there with their own `TimeoutError`. A model that ignores its `timeout` (a custom `Model`,
a slow tool loop) would still run on; `AttemptTimer` stops it `GRACE` seconds later, so the
model's own error, when it has one, speaks first. Like `HttpModel`, a stream's limit counts
only the time spent waiting for the model's next event, never the reader's own time.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from llmswitch.errors import TimeoutError
from llmswitch.request import Request

T = TypeVar("T")
GRACE = 0.25
"""Seconds past an attempt's `timeout` before the route stops the attempt itself."""


class AttemptTimer:
    """The limit of one attempt: its request's `timeout` (none: unbounded)."""

    __slots__ = ("left", "seconds", "target")

    def __init__(self, request: Request, target: str) -> None:
        self.seconds = request.settings.timeout
        self.left = self.seconds
        self.target = target

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` within what is left of the limit (plus `GRACE`)."""
        if self.left is None:
            return await awaitable
        start = time.monotonic()
        timer = asyncio.timeout(max(self.left, 0.0) + GRACE)
        try:
            async with timer:
                return await awaitable
        except builtins.TimeoutError:
            if not timer.expired():
                raise  # the model's own timeout error
            raise TimeoutError(f"{self.target}: no complete answer within {self.seconds:g}s "
                               "(the attempt's share of the call's timeout)",
                               hint="raise the call's timeout, or make the model honour "
                               "its `timeout` setting") from None
        finally:
            self.left -= time.monotonic() - start

    async def next(self, stream: AsyncIterator[T]) -> T:
        """`stream`'s next event within what is left of the limit (`StopAsyncIteration` at
        its end)."""
        return await self.run(anext(stream))
