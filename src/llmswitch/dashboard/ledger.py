"""Read-only access to the ledger database for the dashboard: one connection opened on first
use (a SQLite ledger that does not exist yet reads as empty), used by one thread at a time,
reopened after a failure. Queries run off the event loop (`run`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from llmswitch.errors import ConfigError
from llmswitch.observe import Database, is_postgres, sqlite_path

T = TypeVar("T")


class LedgerReader:
    """Queries over a ledger (SQLite path or PostgreSQL URL), never writing to it."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._db: Database | None = None
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgres`."""
        return "postgres" if self.url and is_postgres(self.url) else "sqlite"

    def exists(self) -> bool:
        """Whether there is a ledger to read (a SQLite file is created by its first write)."""
        if self.url is None:
            return False
        return is_postgres(self.url) or sqlite_path(self.url).is_file()

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts; no rows when there is no ledger yet. Every text the
        dashboard passes is compared for equality (or a prefix), and the ledger holds no text
        with a NUL (PostgreSQL refuses it), so such a parameter matches no row."""
        if any(isinstance(p, str) and "\x00" in p for p in params):
            return []
        with self._lock:
            db = self._open()
            if db is None:
                return []
            try:
                return db.query(text, params)
            except Exception as exc:
                self._close()  # PostgreSQL: the failed transaction is unusable
                if _missing_table(exc):
                    return []  # a database the ledger has not written to yet
                raise

    async def run(self, work: Callable[[LedgerReader], T]) -> T:
        """`work(self)` in a worker thread (queries block; the gateway's loop must not)."""
        return await asyncio.to_thread(work, self)

    def _open(self) -> Database | None:
        if self._db is None:
            if not self.exists():
                return None
            assert self.url is not None
            try:
                self._db = Database(self.url, readonly=True)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"cannot read the ledger: {type(exc).__name__}") from None
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    def close(self) -> None:
        """Close the connection (reopened on the next query)."""
        with self._lock:
            self._close()

    def where(self) -> str:
        """Where the ledger is, for the page footer (a PostgreSQL URL without its password)."""
        if self.url is None:
            return "(ledger turned off)"
        if is_postgres(self.url):
            from llmswitch.scrub import redact_url

            return redact_url(self.url)
        return str(Path(sqlite_path(self.url)))


def _missing_table(exc: Exception) -> bool:
    text = str(exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def hour_expr(dialect: str, column: str = "ts") -> str:
    """The hour bucket (epoch hours, an integer) of an epoch-seconds column. SQLite's CAST
    truncates, PostgreSQL's rounds, hence FLOOR there."""
    if dialect == "postgres":
        return f"CAST(FLOOR({column} / 3600) AS BIGINT)"
    return f"CAST({column} / 3600 AS INTEGER)"


def tag_expr(dialect: str, name: str) -> str:
    """A tag's value from the `tags` JSON column (`name` is a fixed identifier)."""
    if not name.isidentifier():
        raise ValueError(name)
    if dialect == "postgres":
        return f"(CAST(tags AS json) ->> '{name}')"
    return f"json_extract(tags, '$.{name}')"
