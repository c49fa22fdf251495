"""Fixtures for the keys/limits tests: a Redis server and a PostgreSQL database of their own.

- Redis: `$LLMSWITCH_TEST_REDIS_URL` (`.ci/redis.sh` starts one), else a `redis-server` this
  session starts on 127.0.0.1 at a free port (Debian's `redis-server` package), else the tests
  skip, saying so. Each test gets the database emptied.
- PostgreSQL: `$LLMSWITCH_TEST_POSTGRES_DSN` (`.ci/postgres.sh`), in a database of its own
  (`llmswitch_gw_keys`) so the ledger tests that drop tables elsewhere do not collide.

Import the fixtures into a test module: `from tests.gateway.state_servers import ...`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_ENV = "LLMSWITCH_TEST_REDIS_URL"
PG_ENV = "LLMSWITCH_TEST_POSTGRES_DSN"
PG_DB = "llmswitch_gw_keys"
TABLES = "attempts, traces, llmswitch_schema, gateway_keys, llmswitch_keys_schema"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ping(url: str) -> bool:
    redis = pytest.importorskip("redis", reason="the redis client is missing (extra gateway)")
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("redis", reason="the redis client is missing (extra gateway)")
    url = os.environ.get(REDIS_ENV)
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(f"Redis tests need redis-server (apt-get install redis-server) or {REDIS_ENV}"
                    " (run .ci/redis.sh)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
         "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        until = time.monotonic() + 15
        while not _ping(url):
            if proc.poll() is not None or time.monotonic() > until:
                pytest.skip(f"redis-server did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The test Redis, emptied."""
    import redis

    client = redis.Redis.from_url(redis_server, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server


def pg_base_dsn() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def pg_dsn() -> str:
    """A PostgreSQL database for these tests, with no llmswitch tables in it."""
    base = pg_base_dsn()
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (run .ci/postgres.sh)")
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (extra postgres)")
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {PG_DB}")
    dsn = base.rsplit("/", 1)[0] + "/" + PG_DB
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLES}")
    return dsn


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger location: a SQLite file, and a PostgreSQL database when one is available."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn
