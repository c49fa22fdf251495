"""Fixtures shared by the gateway tests: Redis and PostgreSQL for keys, limits and replicas
(see state_servers.py)."""

from tests.gateway.state_servers import (  # noqa: F401
    ledger_db,
    pg_dsn,
    redis_server,
    redis_url,
)
