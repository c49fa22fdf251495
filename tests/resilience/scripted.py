"""A scripted model for resilience tests that FakeModel cannot express: an attempt that blocks
until cancelled, one that spends time on the fake clock, and one that records each request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.resilience.clock import FakeClock
from llmswitch.results import Completion, Usage

T = TypeVar("T")
BLOCK = "<block>"
"""A script entry: wait until cancelled."""


@dataclass
class Scripted(Model):
    """Each call takes the next entry (the last repeats): an exception to raise, `BLOCK`, or
    an answer. `spends` seconds pass on `clock` during each call; `usage` is each answer's."""

    name: str
    script: Sequence[str | BaseException] = ("ok",)
    clock: FakeClock | None = None
    spends: float = 0.0
    usage: Usage = field(default_factory=lambda: Usage(10, 10))
    calls: list[Request] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def call_count(self) -> int:
        """Requests received."""
        return len(self.calls)

    async def complete(self, request: Request) -> Completion:
        """Answer, raise or block as scripted."""
        entry = self.script[min(len(self.calls), len(self.script) - 1)]
        self.calls.append(request)
        self.started.set()
        if self.clock is not None and self.spends:
            self.clock.time += self.spends
        if entry == BLOCK:
            await asyncio.Event().wait()
        if isinstance(entry, BaseException):
            raise entry
        return Completion(str(entry), "stop", self.usage, 0.0, "fake", self.name)


async def until(condition: Callable[[], bool], turns: int = 1000) -> None:
    """Let other tasks run until `condition` holds (a bounded number of loop turns)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def guarded(pending: Awaitable[T]) -> T:
    """Await something that would block forever if the code under test were wrong: a hang
    guard, not a timing assertion."""
    return await asyncio.wait_for(pending, 30)
