"""The spend ledger: an observer that writes one row per attempt (and the trace) to SQLite or
PostgreSQL without slowing the request path.

Rows go into a bounded queue; one writer thread drains it in batches. A full queue drops
rows (counted in `dropped`, warned about once) rather than blocking a request. `flush()` waits
for what is queued; `close()`/`aclose()` flush and stop, so nothing is lost on a clean stop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import queue
import threading
import warnings
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
_STOP = object()
TRACE_COLUMNS = tuple(TraceRecord.__dataclass_fields__)


class _Rows:
    """A finished call's rows, built when it ended (every attempt had finished)."""

    __slots__ = ("rows", "trace", "trace_id")

    def __init__(self, trace_id: str, rows: tuple[tuple[Any, ...], ...],
                 trace: tuple[Any, ...] | None) -> None:
        self.trace_id = trace_id
        self.rows = rows
        self.trace = trace


class _Ended:
    """A finished call with an attempt still running (a stream or a branch not closed yet):
    its identity and its live spans, turned into rows on the writer thread, so the usage
    that attempt's provider model records when it closes is still written."""

    __slots__ = ("attempts", "duration_ms", "name", "served", "status", "tags", "trace",
                 "trace_id")

    def __init__(self, record: CallRecord, attempts: list[Span]) -> None:
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
    return max(1, len(item.rows if type(item) is _Rows else item.attempts))


class LedgerFullWarning(UserWarning):
    """The ledger's queue was full and rows were dropped."""


class Ledger:
    """Records every attempt of every request (an `Observer` for `Switch`)."""

    def __init__(self, url: str, config: ObserveConfig | None = None) -> None:
        self.url = url
        self.config = config or ObserveConfig(ledger=url)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.config.queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        """Cuts the writer's gathering wait short: a full batch, `flush` or `close`."""
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

    def _record(self, record: CallRecord, extra: dict[str, Any] | None) -> None:
        if self._closed:
            return
        # A call whose attempts have all finished is queued as its rows: a few tuples and a
        # string, not its spans, request or answer, which a queue holding up to a flush
        # interval of calls would keep alive for the garbage collector to walk again and
        # again (at 64 concurrent calls each young-generation collection also walks every
        # call in flight). A call with an attempt still running (a stream closed after its
        # call ended) is queued with its live spans, so the usage its provider model records
        # on closing is still written.
        self._ensure_writer()
        attempts = record.all_attempts()
        item: _Rows | _Ended
        if all(span.duration_ms for span in attempts):  # all finished: nothing will change
            rows, trace = _rows_of(record, attempts, served_attempt(record), extra,
                                   self.config.traces)
            item, extra = _Rows(record.trace_id, tuple(rows), trace), None
        else:
            item = _Ended(record, attempts)
        try:
            self._queue.put_nowait((item, extra))
            if self._queue.qsize() >= self.config.batch_size:
                self._wake.set()
        except queue.Full:
            count = _count(item)
            self.dropped += count
            if self.dropped == count:
                warnings.warn(f"the spend ledger's queue is full ({self.config.queue_size}); "
                              "rows are being dropped (is the database reachable?)",
                              LedgerFullWarning, stacklevel=3)

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
            batch, stop = self._next_batch()
            if not batch:
                continue
            try:
                db = self._write_with_retry(db, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
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
        rows = sum(_count(item) for item, _ in batch)
        self.failures += 1
        self.dropped += rows
        message = describe_failure(self.url, exc)
        if message != self.last_error:  # say it once per distinct cause, not once per batch
            log.error("llmswitch ledger: %s; spend is NOT being recorded (%d row(s) dropped so "
                      "far; Ledger.stats() counts them)", message, self.dropped)
        self.last_error = message

    def _next_batch(self) -> tuple[list[Any], bool]:
        batch: list[Any] = []
        try:
            first = self._queue.get(timeout=self.config.flush_interval)
        except queue.Empty:
            return batch, False
        if first is _STOP:
            self._queue.task_done()
            return batch, True
        batch.append(first)
        # Let rows gather for up to one flush interval, so a steady trickle of requests is
        # written in a few large transactions, and without waking up per row: each wake-up
        # would cost the request path a thread switch (a GIL handoff).
        if self._queue.qsize() < self.config.batch_size - 1:
            self._wake.wait(self.config.flush_interval)
        self._wake.clear()
        while len(batch) < self.config.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.task_done()
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, db: Database, batch: list[Any]) -> None:
        rows: list[tuple[Any, ...]] = []
        traces: list[tuple[Any, ...]] = []
        for item, extra in batch:
            if type(item) is _Rows:
                rows.extend(item.rows)
                trace = item.trace
            else:  # what attempt_rows and trace_row read of a CallRecord, with live spans
                more, trace = _rows_of(item, item.attempts, item.served, extra,
                                       self.config.traces)
                rows.extend(more)
            if trace is not None:
                traces.append(trace)
        db.write([("attempts", COLUMNS, rows), ("traces", TRACE_COLUMNS, traces)])
        self.written += len(rows)

    # -- shutdown ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
            self._queue.join()

    def close(self) -> None:
        """Flush and stop the writer (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            thread.join()
        atexit.unregister(self.close)

    async def aclose(self) -> None:
        """`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)
