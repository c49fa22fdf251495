"""The one sync bridge: a private event loop on a daemon thread that runs coroutines for
synchronous callers. No copy-pasted sync twins anywhere else."""

from __future__ import annotations

import asyncio
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

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine to completion and return its result (or raise its error)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "a sync llmswitch call was made inside a running event loop; use the async API"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._ensure()).result()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async iterator from sync code."""
        sentinel = object()

        async def step() -> Any:
            try:
                return await iterator.__anext__()
            except StopAsyncIteration:
                return sentinel

        while True:
            item = self.run(step())
            if item is sentinel:
                return
            yield item

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
