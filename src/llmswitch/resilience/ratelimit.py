"""Per-deployment request and token budgets (RPM/TPM) over a sliding 60-second window.

Budgets live behind `LimitStore`, a small async interface a shared store (e.g. Redis with an
atomic script, for several gateway replicas) can implement; `MemoryLimitStore` keeps them
in-process. A call is admitted with `acquire` (which reserves its request and its tokens in one
step), and its reservation is given back exactly once: `settle` with the tokens it really used
when it reached the provider, `release` when it never did.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from llmswitch.request import Request
from llmswitch.resilience.clock import Clock
from llmswitch.results import Usage

WINDOW = 60.0
"""Seconds a request and its tokens count against the budgets (a sliding window)."""
DEFAULT_OUTPUT_TOKENS = 1024
"""Output tokens reserved for a request that sets no `max_tokens`."""


@dataclass(frozen=True, slots=True)
class Admission:
    """`acquire`'s answer: admitted (with a `reservation` to settle or release later), or
    not, with `retry_after` seconds until the request could fit."""

    admitted: bool
    retry_after: float = 0.0
    reservation: Any = None


class LimitStore(Protocol):
    """RPM/TPM budgets by deployment key. Every method must be atomic for concurrent callers.

    `rpm` or `tpm` of `None` means that budget is unlimited. A request larger than `tpm` on its
    own is admitted only into an otherwise empty window (else it could never run).
    """

    async def acquire(self, key: str, rpm: int | None, tpm: int | None,
                      tokens: int) -> Admission:
        """Admit one request of `tokens` tokens (input plus maximum output) and reserve it, or
        refuse it and say when it could fit."""

    async def settle(self, reservation: Any, tokens: int) -> None:
        """Replace a reservation's tokens by what the call really used (it stays one request
        of the window). A reservation that already left the window is ignored."""

    async def release(self, reservation: Any) -> None:
        """Give back a reservation whose call never reached the provider (request and
        tokens)."""


class _Window:
    __slots__ = ("count", "slots", "used")

    def __init__(self) -> None:
        self.slots: deque[_Reservation] = deque()
        self.count = 0
        self.used = 0


class _Reservation:
    __slots__ = ("at", "live", "tokens", "window")

    def __init__(self, window: _Window, at: float, tokens: int) -> None:
        self.window = window
        self.at = at
        self.tokens = tokens
        self.live = True


class MemoryLimitStore:
    """In-process budgets (one event loop; no method awaits, so each is atomic). Running
    totals per key keep `acquire` O(1) apart from dropping expired entries."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    async def acquire(self, key: str, rpm: int | None, tpm: int | None,
                      tokens: int) -> Admission:
        """Admit and reserve, or refuse with the seconds until the request would fit."""
        now = self.clock.now()
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = _Window()
        slots = w.slots
        while slots and now - slots[0].at >= WINDOW:
            _drop(slots.popleft())
        if _fits(w.count, w.used, rpm, tpm, tokens):
            r = _Reservation(w, now, tokens)
            slots.append(r)
            w.count += 1
            w.used += tokens
            return Admission(True, 0.0, r)
        return Admission(False, _free_in(w, now, rpm, tpm, tokens))

    async def settle(self, reservation: Any, tokens: int) -> None:
        """Correct the reserved tokens to the actual count."""
        r: _Reservation = reservation
        if r.live:
            r.window.used += tokens - r.tokens
            r.tokens = tokens

    async def release(self, reservation: Any) -> None:
        """Drop the reservation from the window."""
        _drop(reservation)


def _drop(r: _Reservation) -> None:
    if r.live:
        r.live = False
        r.window.count -= 1
        r.window.used -= r.tokens


def _fits(count: int, used: int, rpm: int | None, tpm: int | None, tokens: int) -> bool:
    return (rpm is None or count < rpm) and (tpm is None or count == 0 or used + tokens <= tpm)


def _free_in(w: _Window, now: float, rpm: int | None, tpm: int | None, tokens: int) -> float:
    """Seconds until enough of the window expires for the request to fit."""
    count, used = w.count, w.used
    for r in w.slots:
        if not r.live:
            continue
        count -= 1
        used -= r.tokens
        if _fits(count, used, rpm, tpm, tokens):
            return max(0.0, r.at + WINDOW - now)
    return 0.0


def input_tokens(request: Request) -> int:
    """A quick estimate of a request's input tokens (characters / 4, rounded up)."""
    return (len(request.prompt_text) + 3) // 4


def admission_tokens(request: Request) -> int:
    """Tokens a request may use: its input plus its maximum output (`max_tokens`, else
    `DEFAULT_OUTPUT_TOKENS`)."""
    return input_tokens(request) + (request.settings.max_tokens or DEFAULT_OUTPUT_TOKENS)


def used_tokens(usage: Usage | None, fallback: int) -> int:
    """Tokens a call used: the provider's count when it reported one, else `fallback`."""
    if usage is None or not usage.total_tokens:
        return fallback
    return usage.total_tokens
