"""The one sync bridge: a private event loop on a daemon thread that runs coroutines for
synchronous callers. No copy-pasted sync twins anywhere else."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class SyncBridge:
    """Runs coroutines and async iterators from synchronous code."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="llmswitch-sync", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _check_no_loop() -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        raise RuntimeError(
            "a sync llmswitch call was made inside a running event loop; use the async API"
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to completion and return its result (or raise its error)."""
        try:
            self._check_no_loop()
        except RuntimeError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async iterator from sync code.

        One task on the bridge's loop drives the whole iteration (so deadlines and cleanup
        inside the iterator behave as in async code) and hands items over through a queue.
        """
        items: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                async for item in iterator:
                    items.put(("item", item))
            except BaseException as exc:
                items.put(("error", exc))
                if not isinstance(exc, Exception):
                    raise
            else:
                items.put(("end", None))

        self._check_no_loop()
        future = asyncio.run_coroutine_threadsafe(pump(), self._ensure())
        try:
            while True:
                kind, value = items.get()
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            if not future.done():
                future.cancel()

    def close(self, final: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run `final` on the loop (e.g. closing clients), then stop the thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            if final is not None:
                final.close()
            return
        if final is not None:
            asyncio.run_coroutine_threadsafe(final, loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
