"""Per-deployment request and token budgets (RPM/TPM) over a sliding 60-second window."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from llmswitch.resilience.clock import Clock

WINDOW = 60.0


@dataclass
class RateLimiter:
    """Admits a call when both the requests and the tokens of the last minute stay in budget.

    `rpm`/`tpm` of `None` mean unlimited. Token use is estimated when admitting and can be
    corrected with `settle` once the real usage is known.
    """

    clock: Clock
    rpm: int | None = None
    tpm: int | None = None
    _events: deque[tuple[float, int]] = field(default_factory=deque)

    def _trim(self, now: float) -> None:
        while self._events and now - self._events[0][0] >= WINDOW:
            self._events.popleft()

    def has_room(self, tokens: int = 0) -> bool:
        """Whether a call of `tokens` tokens fits now."""
        now = self.clock.now()
        self._trim(now)
        if self.rpm is not None and len(self._events) >= self.rpm:
            return False
        used = sum(t for _, t in self._events)
        return self.tpm is None or used + tokens <= self.tpm or not self._events

    def acquire(self, tokens: int = 0) -> bool:
        """Record a call if it fits; `False` (and nothing recorded) when it does not."""
        if not self.has_room(tokens):
            return False
        self._events.append((self.clock.now(), tokens))
        return True

    def settle(self, estimated: int, actual: int) -> None:
        """Replace the newest estimate of `estimated` tokens by the actual count."""
        for i in range(len(self._events) - 1, -1, -1):
            t, n = self._events[i]
            if n == estimated:
                self._events[i] = (t, actual)
                return

    def free_in(self) -> float:
        """Seconds until the oldest call leaves the window (0 when there is room)."""
        now = self.clock.now()
        self._trim(now)
        if not self._events:
            return 0.0
        return max(0.0, WINDOW - (now - self._events[0][0]))
