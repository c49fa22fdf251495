"""The ledger's key and run indexes hold tagged rows only (schema version 5), and the lookups
the gateway and dashboard make by key and by run still use them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from llmswitch.observe.db import MIGRATIONS, Database

TAGGED = ("attempts_key", "attempts_run", "traces_key", "traces_run")


def _old_ledger(path: Path, versions: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE llmswitch_schema (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:versions], start=1):
        for statement in statements:
            conn.execute(statement.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
        conn.execute("INSERT INTO llmswitch_schema VALUES (?)", (version,))
    conn.execute("INSERT INTO attempts (ts, request_id, route, attempt, status, key_id, run_id) "
                 "VALUES (1.0, 'r1', 'x', 1, 'ok', 'k1', 'run1'), "
                 "(2.0, 'r2', 'x', 1, 'ok', NULL, NULL)")
    conn.commit()
    conn.close()


def _plan(db: Database, sql: str, params: tuple[object, ...]) -> str:
    return " ".join(str(r["detail"]) for r in db.query("EXPLAIN QUERY PLAN " + sql, params))


def test_an_older_ledger_gets_partial_key_and_run_indexes(tmp_path: Path) -> None:
    path = tmp_path / "v4.sqlite"
    _old_ledger(path, 4)
    db = Database(str(path))
    try:
        defs = {r["name"]: r["sql"] for r in db.query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
        assert all("IS NOT NULL" in defs[name] for name in TAGGED), defs
        rows = db.query("SELECT request_id FROM attempts WHERE key_id = ?", ("k1",))
        assert [r["request_id"] for r in rows] == ["r1"]
    finally:
        db.close()


def test_lookups_by_key_and_run_use_the_partial_indexes(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "l.sqlite"))
    try:
        lookups = {
            "attempts_key": ("SELECT MAX(ts) AS last FROM attempts WHERE key_id = ?", ("k",)),
            "attempts_run": ("SELECT ts FROM attempts WHERE run_id = ? ORDER BY ts, id", ("r",)),
            "traces_key": ("SELECT request_id FROM traces WHERE key_id = ? AND ts >= ? "
                           "ORDER BY ts DESC", ("k", 0.0)),
            "traces_run": ("SELECT request_id FROM traces WHERE run_id = ?", ("r",)),
        }
        for index, (sql, params) in lookups.items():
            assert f"INDEX {index} " in _plan(db, sql, params), index
        runs = ("SELECT run_id, MIN(ts) FROM attempts WHERE run_id IS NOT NULL GROUP BY run_id")
        assert "INDEX attempts_run " in _plan(db, runs, ())
    finally:
        db.close()
