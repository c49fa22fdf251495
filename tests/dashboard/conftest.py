"""Ledger locations for the dashboard tests: a tmp SQLite file, and PostgreSQL when
`LLMSWITCH_TEST_POSTGRES_DSN` is set (`.ci/postgres.sh` starts one). The PostgreSQL tests use
a database of their own beside the DSN's, so they never drop another suite's tables."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_ENV = "LLMSWITCH_TEST_POSTGRES_DSN"
DATABASE = "llmswitch_dashboard_test"
TABLES = "attempts, traces, llmswitch_schema, gateway_keys, llmswitch_keys_schema"


def dashboard_dsn(dsn: str) -> str:
    """A DSN for this suite's own database (created if missing), emptied."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (extra postgres)")
    parts = urlsplit(dsn)
    ours = urlunsplit(parts._replace(path=f"/{DATABASE}"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (DATABASE,)).fetchone()
        if not found:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(ours, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLES}")
    return ours


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        pytest.skip(f"PostgreSQL ledger tests need {PG_ENV} (run .ci/postgres.sh)")
    return dashboard_dsn(dsn)
