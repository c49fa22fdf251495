"""One top-level call's record: its trace id, tags, and every attempt that reached a provider.

`Switch` opens a `CallRecord` for each `complete`/`stream` and makes it current (a context
variable, so the concurrent sub-tasks of an ensemble or a cascade share it). `HttpModel`
registers each attempt's span when it sends the request, and marks how the attempt ended:
`ok`, `error`, `cut` (a stream that failed after its first token), `cancelled` or `abandoned`
(the caller left a stream). However the call ends (an answer, an error, a cancellation, a
stream the caller walked away from), the record reaches the observers, so every billed attempt
gets exactly one ledger row, including attempts that a strategy dropped from its trace (e.g.
the losing branches of an ensemble that were cancelled).
"""

from __future__ import annotations

import asyncio
import operator
import os
import random
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from llmswitch.observe.trace import Span

if TYPE_CHECKING:
    from llmswitch.request import Request
    from llmswitch.results import Completion

CallStatus: TypeAlias = Literal["ok", "error", "cancelled", "abandoned"]
"""How a top-level call ended."""

ATTEMPT_ID = "llmswitch.attempt_id"
"""The span attribute that names an attempt uniquely (`<trace id>-<n>`): the ledger's key."""

_CURRENT: ContextVar[CallRecord | None] = ContextVar("llmswitch_call", default=None)


# A private generator seeded from os.urandom (and again in every forked child), so neither
# `random.seed()` in user code nor a forked gateway worker ever repeats ids.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def new_trace_id() -> str:
    """A fresh trace id: 32 lowercase hex characters (an OpenTelemetry trace id's shape).

    Random like OpenTelemetry's own ids (`random.getrandbits`), not a secret: `os.urandom`
    is a system call that gives the GIL away on every call (a ledger writer thread then
    holds up the request path)."""
    while True:
        value = _IDS.getrandbits(128)
        if value:
            return f"{value:032x}"


def is_trace_id(value: str) -> bool:
    """Whether `value` has a trace id's shape (32 hex characters, not all zero)."""
    if len(value) != 32 or value == "0" * 32:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return value == value.lower()


@dataclass(slots=True, eq=False)
class CallRecord:
    """What one `Switch.complete`/`Switch.stream` did, for observers (ledger, traces)."""

    name: str
    """The model, alias or route asked for."""
    request: Request
    trace_id: str = field(default_factory=new_trace_id)
    tags: Mapping[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    attempts: list[Span] = field(default_factory=list)
    """Every attempt span registered by a provider model, in the order they were sent."""
    status: CallStatus | None = None
    """`None` while the call runs."""
    completion: Completion | None = None
    error: BaseException | None = None
    duration_ms: float = 0.0

    def register(self, span: Span) -> None:
        """Count an attempt that is about to be sent (its span is completed later)."""
        self.attempts.append(span)
        span.attributes[ATTEMPT_ID] = f"{self.trace_id}-{len(self.attempts)}"

    def succeed(self, completion: Completion) -> None:
        """The call answered."""
        self.completion = completion
        self._end("ok")

    def fail(self, error: BaseException) -> None:
        """The call raised `error` (a cancellation ends it as `cancelled`)."""
        self.error = error
        if isinstance(error, GeneratorExit):
            self._end("abandoned")
        elif isinstance(error, Exception):
            self._end("error")
        else:  # CancelledError, KeyboardInterrupt, SystemExit
            self._end("cancelled")

    def _end(self, status: CallStatus) -> None:
        self.status = status
        self.duration_ms = round((time.time() - self.started) * 1000, 3)
        if status != "ok":
            self._close_open_attempts("cancelled" if status == "cancelled" else "abandoned")

    def _close_open_attempts(self, status: Literal["cancelled", "abandoned"]) -> None:
        """An attempt still running when the call ended (a strategy that did not close its
        stream yet) is recorded as the caller left it; the provider model refines its usage
        when it is finally closed."""
        for span in self.attempts:
            if span.status == "ok" and span.duration_ms == 0.0:
                span.status = status
                span.error = {"type": status, "message": "still running when the call ended"}

    @property
    def serving(self) -> tuple[str | None, str | None]:
        """`(provider, model)` of the newest attempt sent (the one a stream is reading)."""
        if not self.attempts:
            return None, None
        a = self.attempts[-1].attributes
        return a.get("gen_ai.provider.name"), a.get("gen_ai.request.model")

    @property
    def ended(self) -> bool:
        """Whether the outcome is known."""
        return self.status is not None

    @property
    def trace(self) -> Span:
        """The call's trace tree: the answer's or the error's, else one built from the attempts."""
        if self.completion is not None and self.completion.trace is not None:
            return self.completion.trace
        found = getattr(self.error, "trace", None)
        if isinstance(found, Span):
            return found
        status = self.status or "error"
        root = Span(self.name, "step", {}, list(self.attempts), start_time=self.started,
                    duration_ms=self.duration_ms)
        if status != "ok":
            root.status = status
            root.error = {"type": status, "message": _interrupted_message(status, self.error)}
        return root

    def all_attempts(self) -> list[Span]:
        """Attempts in the trace tree, then registered ones the tree does not hold."""
        in_tree = self.trace.attempts()
        registered = self.attempts
        if len(registered) == len(in_tree) and all(map(operator.is_, registered, in_tree)):
            return in_tree  # the usual case: the tree holds every attempt sent, in order
        seen = {id(s) for s in in_tree}
        return in_tree + [s for s in registered if id(s) not in seen]


def _interrupted_message(status: str, error: BaseException | None) -> str:
    if status == "abandoned":
        return "the caller stopped reading the stream"
    if status == "cancelled":
        return "the call was cancelled" + (" (KeyboardInterrupt)"
                                           if isinstance(error, KeyboardInterrupt) else "")
    return str(error) if error is not None else "the call failed"


def current_call() -> CallRecord | None:
    """The record of the top-level call running in this context, if any."""
    return _CURRENT.get()


def interruption_status(error: BaseException) -> Literal["cancelled", "abandoned"]:
    """How an attempt interrupted by a non-`Exception` ended."""
    return "abandoned" if isinstance(error, GeneratorExit) else "cancelled"


def is_interruption(error: BaseException) -> bool:
    """A cancellation, an abandoned stream or Ctrl-C: not a failure of the provider."""
    return isinstance(error, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt))


def activate(record: CallRecord | None) -> object:
    """Make `record` current; returns a token for `deactivate`."""
    return _CURRENT.set(record)


def deactivate(token: object) -> None:
    """Restore the record that was current before `activate`."""
    _CURRENT.reset(token)  # type: ignore[arg-type]
