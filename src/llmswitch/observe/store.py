"""Reading the ledger database: attempt rows for reports, and the local trace store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.observe.db import Database, is_postgres


class LedgerStore:
    """Read access to a ledger (SQLite path or PostgreSQL URL). Close it when done."""

    def __init__(self, url: str) -> None:
        if not is_postgres(url) and not Path(url).expanduser().exists():
            raise ConfigError(f"no ledger at {url}",
                              hint="run a request first, or point --config / observe.ledger / "
                                   "$LLMSWITCH_LEDGER at the ledger")
        self.db = Database(url, readonly=True)

    def attempts(self, since: float | None = None) -> list[dict[str, Any]]:
        """Attempt rows, oldest first (optionally only those at or after `since`, epoch s)."""
        where, params = ("WHERE ts >= ?", (since,)) if since is not None else ("", ())
        return self.db.query(f"SELECT * FROM attempts {where} ORDER BY ts, id", params)

    def requests(self, since: float | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest stored traces' summaries (without the tree), newest first."""
        where, params = ("WHERE ts >= ?", (since,)) if since is not None else ("", ())
        return self.db.query(
            "SELECT request_id, ts, route, status, provider, model, cost_usd, duration_ms "
            f"FROM traces {where} ORDER BY ts DESC LIMIT {int(limit)}", params)

    def trace(self, request_id: str) -> dict[str, Any] | None:
        """One stored trace tree (the `chat --json` trace shape), by id or unique id prefix."""
        rows = self.db.query("SELECT request_id, trace_json FROM traces WHERE request_id LIKE ?",
                             (request_id + "%",))
        if len(rows) != 1:
            return None
        data: dict[str, Any] = json.loads(rows[0]["trace_json"])
        return data

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
