"""The spend ledger: an observer that writes one row per attempt (and the trace) to SQLite or
PostgreSQL without slowing the request path.

Rows go into a bounded queue; one writer thread drains it in batches. A full queue drops
rows (counted in `dropped`, warned about once) rather than blocking a request. `flush()` waits
for what is queued; `close()`/`aclose()` flush and stop, so nothing is lost on a clean stop.

The queue is a `deque` (an append and a `len` on the request path, a `popleft` per item on the
writer: C calls, no locks taken in Python), not a `queue.Queue`, whose put, get and task_done
each take a Python-level lock and condition: 4.5 µs of CPU per call between the two threads.
`flush` and `close` queue a marker the writer answers once everything before it is written.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from llmswitch.calls import CallRecord, new_trace_id
from llmswitch.errors import ConfigError, LLMSwitchError
from llmswitch.observe.config import ObserveConfig
from llmswitch.observe.db import Database, describe_failure
from llmswitch.observe.records import (
    COLUMNS,
    TraceRecord,
    attempt_rows,
    content_attributes,
    served_attempt,
    tags_json,
    trace_row,
)
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import Completion

log = logging.getLogger("llmswitch.ledger")
TRACE_COLUMNS = tuple(TraceRecord.__dataclass_fields__)


class _Marker:
    """Queued by `flush` (and `close`, with `stop`): set once everything queued before it is
    written (or lost)."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


class _RowQueue(collections.deque):  # type: ignore[type-arg]
    """The ledger's queue: a deque (appends and pops are atomic) that says its length the way
    a `queue.Queue` does, for probes that read it."""

    def qsize(self) -> int:
        return len(self)


_WIDTH = len(COLUMNS)


def _flat(trace_id: str, rows: list[tuple[Any, ...]], trace: tuple[Any, ...] | None
          ) -> tuple[Any, ...]:
    """A finished call's rows as the queue holds them: ONE tuple of plain values, `(trace id,
    number of attempt rows, each attempt row's values..., the trace row's values...)`.

    The garbage collector counts every tuple made and not yet freed, and collects the young
    generation (every call in flight, at 64 concurrent) each 700 of them; the rows wait in
    the queue for up to a flush interval, so five objects per call (a row, the trace row,
    their holders) made it collect twice as often as one does: 8.7 instead of 4.8 µs of
    collection per call at 64 concurrent `Switch.complete` calls."""
    return (trace_id, len(rows), *[value for row in rows for value in row], *(trace or ()))


def _attempt_rows(batch: list[Any], built: dict[int, Any]) -> Iterator[tuple[Any, ...]]:
    """The attempt rows of a batch, made one at a time (the garbage collector counts rows
    made and not yet freed: a list of a batch's rows made it collect once per batch)."""
    for item in batch:
        if type(item) is tuple:
            for i in range(2, 2 + item[1] * _WIDTH, _WIDTH):
                yield item[i:i + _WIDTH]
        else:
            yield from built[id(item)][0]


def _trace_rows(batch: list[Any], built: dict[int, Any]) -> Iterator[tuple[Any, ...]]:
    """The trace rows of a batch (none for calls written without their trace)."""
    for item in batch:
        if type(item) is tuple:
            end = 2 + item[1] * _WIDTH
            if len(item) > end:
                yield item[end:]
        elif (trace := built[id(item)][1]) is not None:
            yield trace


class _Ended:
    """A finished call with an attempt still running (a stream or a branch not closed yet):
    its identity and its live spans, turned into rows on the writer thread, so the usage
    that attempt's provider model records when it closes is still written."""

    __slots__ = ("attempts", "duration_ms", "extra", "name", "served", "status", "tags",
                 "trace", "trace_id")

    def __init__(self, record: CallRecord, attempts: list[Span],
                 extra: dict[str, Any] | None) -> None:
        self.extra = extra
        self.trace_id = record.trace_id
        self.name = record.name
        self.tags = record.tags
        self.status = record.status
        self.duration_ms = record.duration_ms
        self.trace = record.trace
        self.attempts = attempts
        self.served = served_attempt(record)


def _rows_of(record: Any, attempts: list[Span], served: Any, extra: dict[str, Any] | None,
             traces: bool) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
    """A call's attempt rows and (when traces are kept) its trace row."""
    tags = tags_json(record.tags)
    rows = attempt_rows(record, attempts, served, tags)
    return rows, trace_row(record, extra, attempts, served, tags) if traces else None


def _count(item: Any) -> int:
    """Attempt rows a queued call stands for (at least one, for the drop count)."""
    return max(1, item[1] if type(item) is tuple else len(item.attempts))


def queued_trace_id(item: Any) -> str:
    """The trace id of a queued call (a `_flat` tuple or an `_Ended`)."""
    return item[0] if type(item) is tuple else item.trace_id  # type: ignore[no-any-return]


class LedgerFullWarning(UserWarning):
    """The ledger's queue was full and rows were dropped."""


class Ledger:
    """Records every attempt of every request (an `Observer` for `Switch`)."""

    _gathers = True
    """The writer waits (up to `flush_interval`) for a batch to fill; `False`: it writes
    whatever is queued as soon as it is queued (`CommitLedger`)."""

    def __init__(self, url: str, config: ObserveConfig | None = None) -> None:
        self.url = url
        self.config = config or ObserveConfig(ledger=url)
        self._queue = _RowQueue()
        """Calls (`_flat` tuples, `_Ended`s) and `_Marker`s, oldest first."""
        self._markers = 0
        """Markers queued and not reached yet: the writer does not wait to gather then."""
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        """Wakes the writer: a full batch, `flush` or `close` (any row: `_gathers` False)."""
        self._closed = False
        self.dropped = 0
        """Attempt rows lost: queue full, or a batch that could not be written twice."""
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None

    # -- the request path: never blocks ---------------------------------------------------
    def on_end(self, record: CallRecord) -> None:
        """Queue the rows of a finished call: every attempt that reached a provider, whatever
        way the call ended (answered, failed, cancelled, or a stream the caller abandoned)."""
        if (record.status == "error" and not record.attempts
                and getattr(record.error, "trace", None) is None):
            return  # refused before any provider call (unknown model, bad request): no spend
        extra = None
        if self.config.content:
            text = record.completion.text if record.completion is not None else None
            extra = content_attributes(record.request, text)
        self._record(record, extra)

    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """Queue the rows of a request that was answered (for callers without a `Switch`)."""
        record = CallRecord(name, request, completion.trace_id or new_trace_id())
        record.succeed(completion)
        self.on_end(record)

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """Queue the rows of a request that failed (for callers without a `Switch`)."""
        if not isinstance(error, LLMSwitchError) or error.trace is None:
            return
        record = CallRecord(name, request, error.trace_id or new_trace_id())
        record.fail(error)
        self.on_end(record)

    def stats(self) -> dict[str, Any]:
        """Rows written and dropped so far, failed batches, and the last write error."""
        return {"written": self.written, "dropped": self.dropped, "failures": self.failures,
                "last_error": self.last_error}

    def ping(self) -> None:
        """Check that the ledger's database answers (opened as the writer opens it, one
        query); a `ConfigError` naming the ledger (no password) when it does not. Blocking:
        call it from a thread in async code (the gateway's `/readyz` does)."""
        try:
            db = Database(self.url)
            try:
                db.query("SELECT 1 AS one")
            finally:
                db.close()
        except Exception as exc:  # driver errors may quote a DSN: describe_failure scrubs
            raise ConfigError(describe_failure(self.url, exc)) from None

    def _record(self, record: CallRecord, extra: dict[str, Any] | None) -> bool:
        """Queue a finished call's rows; whether they were queued (not: closed, queue full)."""
        if self._closed:
            return False
        # A call whose attempts have all finished is queued as its rows (one tuple of plain
        # values: `_flat`), not its spans, request or answer, which a queue holding up to a
        # flush interval of calls would keep alive for the garbage collector to walk again
        # and again. A call with an attempt still running (a stream closed after its call
        # ended) is queued with its live spans, so the usage its provider model records on
        # closing is still written.
        if self._thread is None:
            self._ensure_writer()
        attempts = record.all_attempts()
        item: tuple[Any, ...] | _Ended | None = None
        if all(span.duration_ms for span in attempts):  # all finished: nothing will change
            try:
                rows, trace = _rows_of(record, attempts, served_attempt(record), extra,
                                       self.config.traces)
                item = _flat(record.trace_id, rows, trace)
            except Exception:  # odd attributes of a custom model: the writer counts it lost
                item = None
        if item is None:
            item = _Ended(record, attempts, extra)
        pending = self._queue
        if len(pending) < self.config.queue_size:
            pending.append(item)
            # Appended before the check, and the writer clears the event before it drains:
            # a row is never left behind by a skipped `set`.
            if ((len(pending) >= self.config.batch_size or not self._gathers)
                    and not self._wake.is_set()):
                self._wake.set()
            return True
        else:
            count = _count(item)
            self.dropped += count
            if self.dropped == count:
                warnings.warn(f"the spend ledger's queue is full ({self.config.queue_size}); "
                              "rows are being dropped (is the database reachable?)",
                              LedgerFullWarning, stacklevel=3)
            return False

    # -- the writer thread ----------------------------------------------------------------
    def _ensure_writer(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llmswitch-ledger",
                                                daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def _run(self) -> None:
        db: Database | None = None
        stop = False
        while not stop:
            batch, marker = self._next_batch()
            try:
                if batch:
                    db = self._write_with_retry(db, batch)
            finally:
                if marker is not None:
                    with self._lock:
                        self._markers -= 1
                    stop = marker.stop
                    marker.done.set()
        if db is not None:
            db.close()

    def _write_with_retry(self, db: Database | None, batch: list[Any]) -> Database | None:
        """Write a batch, reconnecting once on failure; never raises (the writer must live).

        The batch is one transaction and attempt rows are keyed by attempt id, so a retry after
        a failure half-way never writes a row twice."""
        for attempt in (1, 2):
            try:
                db = db or Database(self.url)
                self._write(db, batch)
                return db
            except Exception as exc:
                if db is not None:
                    with contextlib.suppress(Exception):
                        db.close()
                    db = None
                if attempt == 2:
                    self._lost(batch, exc)
        return db

    def _lost(self, batch: list[Any], exc: Exception) -> None:
        rows = sum(_count(item) for item in batch)
        self.failures += 1
        self.dropped += rows
        message = describe_failure(self.url, exc)
        if message != self.last_error:  # say it once per distinct cause, not once per batch
            log.error("llmswitch ledger: %s; spend is NOT being recorded (%d row(s) dropped so "
                      "far; Ledger.stats() counts them)", message, self.dropped)
        self.last_error = message

    def _next_batch(self) -> tuple[list[Any], _Marker | None]:
        """Up to `batch_size` queued calls, and the marker that ended the batch (if any).

        Rows gather for up to one flush interval, so a steady trickle of requests is written
        in a few large transactions, and without waking up per row: each wake-up would cost
        the request path a thread switch (a GIL handoff). A `CommitLedger` waits only while
        nothing is queued."""
        pending = self._queue
        size = self.config.batch_size
        want = size if self._gathers else 1
        if len(pending) < want and not self._markers:
            self._wake.wait(self.config.flush_interval)
        self._wake.clear()  # before draining: a row appended after this sets it again
        batch: list[Any] = []
        while len(batch) < size:
            try:
                item = pending.popleft()
            except IndexError:
                break
            if type(item) is _Marker:
                return batch, item
            batch.append(item)
        return batch, None

    def _write(self, db: Database, batch: list[Any]) -> None:
        # Calls queued with live spans: what attempt_rows and trace_row read of a CallRecord.
        built = {id(item): _rows_of(item, item.attempts, item.served, item.extra,
                                    self.config.traces)
                 for item in batch if type(item) is not tuple}
        db.write([("attempts", COLUMNS, _attempt_rows(batch, built)),
                  ("traces", TRACE_COLUMNS, _trace_rows(batch, built))])
        self.written += sum(item[1] if type(item) is tuple else len(built[id(item)][0])
                            for item in batch)

    # -- shutdown ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            marker = self._mark(_Marker())
            while not marker.done.wait(1.0) and thread.is_alive():
                pass

    def _mark(self, marker: _Marker) -> _Marker:
        with self._lock:
            self._markers += 1
        self._queue.append(marker)
        self._wake.set()
        return marker

    def close(self) -> None:
        """Flush and stop the writer (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._mark(_Marker(stop=True))
            thread.join()
        atexit.unregister(self.close)

    async def aclose(self) -> None:
        """`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)
