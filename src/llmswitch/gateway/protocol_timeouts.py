"""uvicorn's HTTP/1.1 protocol (httptools) with a head timeout against slow-loris clients.

uvicorn closes a keep-alive connection that stays idle (`timeout_keep_alive`, our
`gateway.idle_timeout`), but a client that opens a connection and sends its request head a
byte at a time, or never, holds it forever. `HeadTimeoutProtocol` arms a timer when a
connection opens and when each request begins; when the head is not complete within
`gateway.header_timeout` seconds the connection is closed. Imported only by `serve`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadTimeoutProtocol(HttpToolsProtocol):
    """Closes a connection whose request head does not arrive within the timeout."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_open = False
    """A request's head began and is not complete yet."""

    def connection_made(self, transport: Any) -> None:
        """Start the clock for the first request's head."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Parse; a head this data began but did not finish starts the clock."""
        super().data_received(data)
        if self._head_open and self._head_timer is None and not self.transport.is_closing():
            self._arm()

    def on_message_begin(self) -> None:
        """A request begins (a kept-alive connection's next one too)."""
        super().on_message_begin()
        self._head_open = True

    def on_headers_complete(self) -> None:
        """The head arrived in time."""
        self._head_open = False
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing left to time."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            timeout = float(getattr(self.config, "llmswitch_header_timeout", 10.0))
            self._head_timer = self.loop.call_later(timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
