"""Time for resilience code: a monotonic `now()` and an awaitable `sleep()`, swappable in tests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds and sleeping; `FakeClock` advances without waiting."""

    def now(self) -> float:
        """Monotonic seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        if seconds > 0:
            await asyncio.sleep(seconds)


@dataclass
class FakeClock:
    """A clock for tests: `sleep` records the wait and moves time forward at once."""

    time: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        """The fake current time."""
        return self.time

    async def sleep(self, seconds: float) -> None:
        """Record, advance, and yield to the loop once."""
        self.sleeps.append(seconds)
        self.time += max(seconds, 0.0)
        await asyncio.sleep(0)
