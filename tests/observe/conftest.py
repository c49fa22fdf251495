"""Ledger locations for the observe tests: a tmp SQLite file, and PostgreSQL when
`LLMSWITCH_TEST_POSTGRES_DSN` is set (`.ci/postgres.sh` starts one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PG_ENV = "LLMSWITCH_TEST_POSTGRES_DSN"


def reset_postgres(dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (extra postgres)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS attempts, traces, llmswitch_schema")


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        pytest.skip(f"PostgreSQL ledger tests need {PG_ENV} (run .ci/postgres.sh)")
    reset_postgres(dsn)
    return dsn
