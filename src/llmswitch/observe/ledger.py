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
import time
import warnings
from dataclasses import asdict
from typing import Any

from llmswitch.errors import LLMSwitchError
from llmswitch.observe.config import ObserveConfig
from llmswitch.observe.db import Database
from llmswitch.observe.records import (
    COLUMNS,
    TraceRecord,
    attempt_rows,
    content_attributes,
    new_request_id,
    trace_record,
)
from llmswitch.request import Request
from llmswitch.results import Completion

log = logging.getLogger("llmswitch.ledger")
_STOP = object()
TRACE_COLUMNS = tuple(TraceRecord.__dataclass_fields__)


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
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.failures = 0

    # -- the request path: never blocks ---------------------------------------------------
    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """Queue the rows of a request that was answered."""
        extra = content_attributes(request, completion.text) if self.config.content else None
        self._record(name, completion.trace, True, extra)

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """Queue the rows of a request that failed (its billed attempts included)."""
        trace = error.trace if isinstance(error, LLMSwitchError) else None
        if trace is None:
            return
        extra = content_attributes(request, None) if self.config.content else None
        self._record(name, trace, False, extra)

    def _record(self, name: str, trace: Any, ok: bool, extra: dict[str, Any] | None) -> None:
        if self._closed:
            return
        # Only a reference is queued here; rows and trace JSON are built on the writer thread,
        # so the request path pays for a queue put and nothing else.
        item = (name, trace, ok, extra)
        self._ensure_writer()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            count = len(trace.attempts()) if trace is not None else 1
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
        """Write a batch, reconnecting once on failure; never raises (the writer must live)."""
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
                    self.failures += 1
                    log.warning("llmswitch ledger: could not write %d request(s): %s",
                                len(batch), exc)
        return db

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
        # Gather for up to one flush interval, so a steady trickle of requests is written in a
        # few large transactions instead of one small commit each.
        until = time.monotonic() + self.config.flush_interval
        while len(batch) < self.config.batch_size:
            remaining = until - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else (
                    self._queue.get_nowait())
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
        for name, trace, ok, extra in batch:
            request_id = new_request_id()
            rows.extend(attempt_rows(name, trace, request_id, ok))
            if self.config.traces:
                traces.append(tuple(asdict(trace_record(name, trace, request_id, extra)).values()))
        db.insert("attempts", COLUMNS, rows)
        db.insert("traces", TRACE_COLUMNS, traces)
        self.written += len(rows)

    # -- shutdown ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Flush and stop the writer (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join()
        atexit.unregister(self.close)

    async def aclose(self) -> None:
        """`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)
