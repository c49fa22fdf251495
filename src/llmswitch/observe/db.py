"""The ledger's database: SQLite (default, embedded) or PostgreSQL (`postgresql://` URL, extra
`postgres`), one schema for both, versioned migrations applied on connect."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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
)
"""Each entry is one schema version's statements; append, never edit, to change the schema."""

ID_TYPES = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
            "postgres": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}


def is_postgres(url: str) -> bool:
    """Whether a ledger location is a PostgreSQL URL."""
    return url.startswith(("postgresql://", "postgres://"))


class Database:
    """A DB-API connection plus its dialect; `?` placeholders work for both."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "postgres" if is_postgres(url) else "sqlite"
        self.conn: Any = self._connect()
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
                raise ConfigError(f"cannot connect to the ledger database: {exc}".strip(),
                                  hint="check observe.ledger / $LLMSWITCH_LEDGER") from None
        path = Path(self.url.removeprefix("sqlite:///")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def sql(self, text: str) -> str:
        """Adapt `?` placeholders to the dialect."""
        return text.replace("?", "%s") if self.dialect == "postgres" else text

    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns the schema version."""
        cur = self.conn.cursor()
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
        return len(MIGRATIONS)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in one transaction (traces: keep the first row per request id)."""
        if not rows:
            return
        marks = ", ".join("?" for _ in columns)
        verb = "INSERT"
        tail = ""
        if table == "traces":
            tail = " ON CONFLICT (request_id) DO NOTHING"
        text = f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"
        cur = self.conn.cursor()
        cur.executemany(self.sql(text), [tuple(r) for r in rows])
        self.conn.commit()

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts."""
        cur = self.conn.cursor()
        cur.execute(self.sql(text), tuple(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
