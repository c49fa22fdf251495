"""The durable ledger: a `Ledger` that commits each call's rows promptly and says when, so
a caller (the gateway's `gateway.durable_ledger: true`) can answer a request only once its rows
are committed, and a process killed at any moment (SIGKILL included) has lost no row of a
request it answered.

The ordinary ledger batches rows off the request path and writes them every
`observe.flush_interval` (0.5 s), so a crash loses up to that much. `CommitLedger` is the same
ledger with two changes: its writer commits whatever is queued at once (group commit: no
waiting to gather a batch, but every request queued during one commit shares the next), and
it resolves a future per call when that call's rows are committed (`committed`). Cost: one
commit's latency per answer (see docs/gateway.md for measurements); throughput stays with
group commit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Iterable
from typing import Any

from llmswitch.calls import CallRecord
from llmswitch.observe.config import ObserveConfig
from llmswitch.observe.db import Database
from llmswitch.observe.ledger import Ledger, queued_trace_id

log = logging.getLogger("llmswitch.ledger")


class LedgerNotWritten(Exception):
    """A call's rows could not be committed (queue full, ledger closed, database error)."""


class CommitLedger(Ledger):
    """A ledger that commits each call's rows promptly and says when (`committed`)."""

    _gathers = False  # the writer commits whatever is queued at once (group commit)

    def __init__(self, url: str, config: ObserveConfig | None = None) -> None:
        super().__init__(url, config)
        self._waiters: dict[str, concurrent.futures.Future[None]] = {}
        self._waiters_lock = threading.Lock()
        self._failed: dict[str, BaseException] = {}
        """Calls whose rows could not be written, kept (the newest `queue_size`) for a
        `committed` that comes after the failure was known (a full queue, a closed ledger)."""

    # -- the request path -------------------------------------------------------------------
    def _record(self, record: CallRecord, extra: dict[str, Any] | None) -> bool:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._waiters_lock:
            self._waiters[record.trace_id] = future
        queued = False
        try:
            queued = super()._record(record, extra)
        finally:  # not queued (or raised): its waiter hears it now, never hangs
            if not queued:
                self._resolve([record.trace_id], LedgerNotWritten(
                    "the ledger is closed" if self._closed else "the ledger's queue is full"))
        return queued

    async def committed(self, trace_id: str, timeout: float = 10.0) -> bool:
        """Wait (at most `timeout` s) until the call's rows are committed. True when they are
        (or the call wrote none); False, logged, when they could not be."""
        with self._waiters_lock:
            future = self._waiters.get(trace_id)
            failed = self._failed.pop(trace_id, None)
        try:
            if failed is not None:
                raise failed
            if future is None:
                return True
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except Exception as exc:  # LedgerNotWritten, a database error, TimeoutError
            log.error("llmswitch ledger: the rows of request %s were not committed before its "
                      "answer (%s)", trace_id, exc or type(exc).__name__)
            return False
        return True

    # -- the writer thread ------------------------------------------------------------------
    def _write(self, db: Database, batch: list[Any]) -> None:
        super()._write(db, batch)
        self._resolve(queued_trace_id(item) for item in batch)

    def _lost(self, batch: list[Any], exc: Exception) -> None:
        super()._lost(batch, exc)
        self._resolve((queued_trace_id(item) for item in batch), LedgerNotWritten(str(exc)))

    def _resolve(self, trace_ids: Iterable[str], error: BaseException | None = None) -> None:
        for trace_id in trace_ids:
            with self._waiters_lock:
                future = self._waiters.pop(trace_id, None)
                if error is not None and future is not None:
                    self._failed[trace_id] = error
                    if len(self._failed) > self.config.queue_size:
                        del self._failed[next(iter(self._failed))]
            if future is not None and not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
