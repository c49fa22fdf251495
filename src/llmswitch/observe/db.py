"""The ledger's database: SQLite (default, embedded) or PostgreSQL (`postgresql://` URL, extra
`postgres`), one schema for both, versioned migrations applied on connect."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence, Sized
from pathlib import Path
from typing import Any

from llmswitch.errors import ConfigError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS attempts (
            id {id},
            ts DOUBLE PRECISION NOT NULL,
            request_id TEXT NOT NULL,
            route TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            provider TEXT,
            model TEXT,
            status TEXT NOT NULL,
            error_type TEXT,
            http_status INTEGER,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cached_input_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION,
            ttft_ms DOUBLE PRECISION,
            retry_wait_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            served INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS attempts_ts ON attempts (ts)",
        "CREATE INDEX IF NOT EXISTS attempts_request ON attempts (request_id)",
        """CREATE TABLE IF NOT EXISTS traces (
            request_id TEXT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            route TEXT NOT NULL,
            status TEXT NOT NULL,
            provider TEXT,
            model TEXT,
            cost_usd DOUBLE PRECISION,
            duration_ms DOUBLE PRECISION,
            trace_json TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS traces_ts ON traces (ts)",
    ),
    (
        "ALTER TABLE attempts ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0",
    ),
    (
        # One row per attempt, keyed: a batch written again after a failure adds nothing.
        "ALTER TABLE attempts ADD COLUMN attempt_id TEXT",
        "ALTER TABLE attempts ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE attempts ADD COLUMN key_id TEXT",
        "ALTER TABLE attempts ADD COLUMN run_id TEXT",
        "ALTER TABLE attempts ADD COLUMN tags TEXT",
        "CREATE UNIQUE INDEX IF NOT EXISTS attempts_attempt_id ON attempts (attempt_id)",
        "CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key_id, ts)",
        "CREATE INDEX IF NOT EXISTS attempts_run ON attempts (run_id)",
        "ALTER TABLE traces ADD COLUMN key_id TEXT",
        "ALTER TABLE traces ADD COLUMN run_id TEXT",
        "ALTER TABLE traces ADD COLUMN tags TEXT",
        "CREATE INDEX IF NOT EXISTS traces_key ON traces (key_id, ts)",
        "CREATE INDEX IF NOT EXISTS traces_run ON traces (run_id)",
    ),
    (
        # The dashboard's latency and time-to-first-token percentiles per model: one indexed
        # ORDER BY ... OFFSET each instead of sorting the ledger (docs/dashboard.md).
        "CREATE INDEX IF NOT EXISTS attempts_ok_latency ON attempts "
        "(provider, model, latency_ms, ts, status) WHERE status = 'ok'",
        "CREATE INDEX IF NOT EXISTS attempts_ok_ttft ON attempts "
        "(provider, model, ttft_ms, ts, status) WHERE status = 'ok'",
    ),
    (
        # The key and run indexes hold only tagged rows: a library ledger (no gateway key, no
        # plan run) no longer pays four index inserts per call for NULLs nobody looks up
        # (3-11 µs of the writer's CPU per call, benchmarks/ledger_write.py). `key_id = ?`
        # and `run_id = ?` imply NOT NULL, so SQLite and PostgreSQL still use them.
        "DROP INDEX IF EXISTS attempts_key",
        "CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key_id, ts) "
        "WHERE key_id IS NOT NULL",
        "DROP INDEX IF EXISTS attempts_run",
        "CREATE INDEX IF NOT EXISTS attempts_run ON attempts (run_id) WHERE run_id IS NOT NULL",
        "DROP INDEX IF EXISTS traces_key",
        "CREATE INDEX IF NOT EXISTS traces_key ON traces (key_id, ts) WHERE key_id IS NOT NULL",
        "DROP INDEX IF EXISTS traces_run",
        "CREATE INDEX IF NOT EXISTS traces_run ON traces (run_id) WHERE run_id IS NOT NULL",
    ),
)
"""Each entry is one schema version's statements; append, never edit, to change the schema."""

ID_TYPES = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
            "postgres": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}


def is_postgres(url: str) -> bool:
    """Whether a ledger location is a PostgreSQL URL."""
    return url.startswith(("postgresql://", "postgres://"))


CONFLICT_KEYS = {"attempts": "attempt_id", "traces": "request_id"}
"""Rows already present (same key) are skipped, so writing a batch twice changes nothing."""
_MIGRATION_LOCK = 0x11A5_0001  # PostgreSQL advisory lock: one replica migrates at a time


class Database:
    """A DB-API connection plus its dialect; `?` placeholders work for both.

    `readonly=True` (reports, trace lookups) neither creates folders or files nor migrates,
    so a reader needs no CREATE rights.
    """

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self.dialect = "postgres" if is_postgres(url) else "sqlite"
        self.conn: Any = self._connect()
        if not readonly:
            self.migrate()

    def _connect(self) -> Any:
        if self.dialect == "postgres":
            try:
                import psycopg
            except ImportError:
                raise ConfigError(
                    "a PostgreSQL ledger needs psycopg",
                    hint="pip install 'llmswitch[postgres]'") from None
            try:
                return psycopg.connect(self.url, autocommit=False)
            except psycopg.Error as exc:
                from llmswitch.scrub import url_scrubber  # libpq may quote the password

                detail = url_scrubber(self.url).text(str(exc))
                raise ConfigError(f"cannot connect to the ledger database: {detail}".strip(),
                                  hint="check observe.ledger / $LLMSWITCH_LEDGER") from None
        path = sqlite_path(self.url)
        if self.readonly:
            return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   check_same_thread=False, timeout=30)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def sql(self, text: str) -> str:
        """Adapt `?` placeholders to the dialect."""
        return text.replace("?", "%s") if self.dialect == "postgres" else text

    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns the schema version.

        Several processes may start at once (gateway replicas): the check and the migration
        run under one lock (PostgreSQL advisory lock, SQLite write transaction)."""
        cur = self.conn.cursor()
        try:
            if self.dialect == "postgres":
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            else:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute("CREATE TABLE IF NOT EXISTS llmswitch_schema (version INTEGER NOT NULL)")
            cur.execute("SELECT MAX(version) FROM llmswitch_schema")
            row = cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    cur.execute(statement.replace("{id}", ID_TYPES[self.dialect]))
                cur.execute(self.sql("INSERT INTO llmswitch_schema (version) VALUES (?)"),
                            (version,))
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return len(MIGRATIONS)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in one transaction (rows whose key is already stored are skipped)."""
        self.write([(table, columns, rows)])

    def write(self, tables: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> None:
        """Insert rows into several tables in ONE transaction: all of them or none.

        `rows` may be any iterable (the ledger's writer passes generators, so a batch's rows
        are made one at a time rather than all held at once)."""
        cur = self.conn.cursor()
        try:
            for table, columns, rows in tables:
                if isinstance(rows, Sized) and not len(rows):
                    continue
                marks = ", ".join("?" for _ in columns)
                key = CONFLICT_KEYS.get(table)
                tail = f" ON CONFLICT ({key}) DO NOTHING" if key else ""
                text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"
                cur.executemany(self.sql(text), rows)
            self.conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            raise

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts."""
        cur = self.conn.cursor()
        cur.execute(self.sql(text), tuple(params))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        if self.dialect == "postgres":
            self.conn.rollback()  # end the read transaction: later reads see new rows
        return rows

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def sqlite_path(url: str) -> Path:
    """The file of a SQLite ledger location (a path or a `sqlite:///` URL)."""
    return Path(url.removeprefix("sqlite:///")).expanduser()


def describe_failure(url: str, exc: BaseException) -> str:
    """What went wrong opening or writing a ledger, in words a user can act on (a DSN's
    password, which a driver may quote, is scrubbed)."""
    if is_postgres(url):
        from llmswitch.scrub import redact_url, url_scrubber

        detail = url_scrubber(url).text(str(exc))
        return f"cannot write to the PostgreSQL ledger {redact_url(url)}: {detail}"
    path = sqlite_path(url)
    blocker = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), None)
    if blocker is not None:
        return (f"cannot create the ledger at {path}: {blocker} is a file, not a folder "
                "(set observe.ledger or $LLMSWITCH_LEDGER to another path)")
    if path.is_dir():
        return f"cannot open the ledger at {path}: it is a folder, not a file"
    if isinstance(exc, PermissionError) or "readonly" in str(exc) or "read-only" in str(exc):
        return f"cannot write the ledger at {path}: permission denied ({exc})"
    return f"cannot write the ledger at {path}: {exc}"
