"""The ledger summed per hour, model, route, key, plan run, status and error type: what the
overview, savings, keys and plans pages add up. The database does the summing (one GROUP BY,
the same SQL for SQLite and PostgreSQL); this process keeps the sums of settled hours, so a
page reads only the rows of the last hour or two instead of the whole ledger.

An hour is settled one hour after it ends (`SETTLE_S`): a row is written when its call ends
and stamped with the call's start, so rows can arrive late (a long stream, rows imported or
backdated). Settled hours are summed once, up to the highest row id seen then; each page adds
the rows written since (by id: an index range, whatever their time) to the hours they belong
to. Everything is summed again from scratch every `REBUILD_S` (6 h), which also picks up rows
deleted, or committed out of id order by another PostgreSQL writer.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from llmswitch.dashboard.ledger import LedgerReader, hour_expr

DIMS = ("hour", "provider", "model", "route", "key_id", "run_id", "status", "error_type")
MEASURES = ("attempts", "requests", "served", "cost_usd", "unpriced", "input_tokens",
            "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
            "served_input", "served_output", "served_cached", "served_cache_write",
            "served_reasoning", "ok_latency", "ok_ttft")
_SUMS = (
    "COUNT(*)", "SUM(CASE WHEN attempt = 1 THEN 1 ELSE 0 END)", "SUM(served)",
    "SUM(COALESCE(cost_usd, 0))",
    "SUM(CASE WHEN cost_usd IS NULL AND status = 'ok' THEN 1 ELSE 0 END)",
    "SUM(input_tokens)", "SUM(output_tokens)", "SUM(cached_input_tokens)",
    "SUM(cache_write_tokens)", "SUM(reasoning_tokens)",
    "SUM(CASE WHEN served = 1 THEN input_tokens ELSE 0 END)",
    "SUM(CASE WHEN served = 1 THEN output_tokens ELSE 0 END)",
    "SUM(CASE WHEN served = 1 THEN cached_input_tokens ELSE 0 END)",
    "SUM(CASE WHEN served = 1 THEN cache_write_tokens ELSE 0 END)",
    "SUM(CASE WHEN served = 1 THEN reasoning_tokens ELSE 0 END)",
    "SUM(CASE WHEN status = 'ok' AND latency_ms IS NOT NULL THEN 1 ELSE 0 END)",
    "SUM(CASE WHEN status = 'ok' AND ttft_ms IS NOT NULL THEN 1 ELSE 0 END)",
)
INDEX = {m: i for i, m in enumerate(MEASURES)}
"""Position of each measure in `Cell.sums` (hot loops index the tuple directly)."""
SETTLE_S = 3600
REBUILD_S = 6 * 3600
HOUR = 3600


@dataclass(frozen=True, slots=True)
class Cell:
    """The sums of one combination of dimensions in one hour."""

    hour: int
    provider: str | None
    model: str | None
    route: str
    key_id: str | None
    run_id: str | None
    status: str
    error_type: str | None
    sums: tuple[float, ...]
    model_id: str
    """`provider/model` as the ledger names it (`?` for a missing part)."""

    def get(self, measure: str) -> float:
        """One measure by name (see `MEASURES`)."""
        return self.sums[INDEX[measure]]


Key = tuple[object, ...]


def _select(dialect: str, ids: bool = False) -> str:
    cols = ", ".join(f"{expr} AS {name}" for expr, name in zip(_SUMS, MEASURES, strict=True))
    return (f"SELECT {hour_expr(dialect)} AS hour, provider, model, route, key_id, run_id, "
            f"status, error_type, {cols} FROM attempts WHERE ts >= ? AND ts < ? "
            + ("AND id > ? AND id <= ? " if ids else "") + "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8")


class Rollup:
    """Hourly sums of a ledger, kept for settled hours and recomputed for recent ones."""

    def __init__(self, reader: LedgerReader, clock: Callable[[], float] = time.time) -> None:
        self.reader = reader
        self.clock = clock
        self._settled: dict[Key, list[float]] = {}
        self._cells: list[Cell] = []  # the settled sums as cells, by hour
        self._hours: list[int] = []
        self._until = 0.0  # settled sums cover ts < _until (an hour boundary)
        self._seen = 0  # ... and the rows with id <= _seen
        self._built = -math.inf
        self._lock = threading.Lock()

    def _sum(self, start: float, end: float, into: dict[Key, list[float]],
             ids: tuple[int, int] | None = None) -> int:
        """Add the sums of rows with `start <= ts < end` (and `ids[0] < id <= ids[1]`) into
        `into`; returns how many groups there were."""
        sql = _select(self.reader.dialect, ids is not None)
        rows = self.reader.query(sql, (start, end, *(ids or ())))
        for row in rows:
            key = tuple(row[d] for d in DIMS)
            values = [float(row[m] or 0) for m in MEASURES]
            have = into.get(key)
            if have is None:
                into[key] = values
            else:
                for i, v in enumerate(values):
                    have[i] += v
        return len(rows)

    def cells(self, since: float | None = None) -> list[Cell]:
        """Every cell from the hour holding `since` (all when `None`), up to now."""
        now = self.clock()
        boundary = math.floor((now - SETTLE_S) / HOUR) * HOUR
        with self._lock:
            if now - self._built >= REBUILD_S:
                self._settled, self._until, self._seen, self._built = {}, -1e18, 0, now
            self._settle(boundary)
            live: dict[Key, list[float]] = {}
            self._sum(self._until, 1e18, live)
            start = 0 if since is None else bisect.bisect_left(self._hours,
                                                               math.floor(since / HOUR))
            out = self._cells[start:]
        first = -math.inf if since is None else math.floor(since / HOUR)
        out.extend(_cell(key, v) for key, v in live.items() if _hour(key) >= first)
        return out

    def _settle(self, boundary: float) -> None:
        """Add newly settled hours (rows up to the current top id) and the rows written since
        the last call that belong to hours already settled."""
        top = _top_id(self.reader)
        changed = 0
        if top < self._seen:  # the ledger was emptied or replaced: start again
            self._settled, self._until, self._seen, changed = {}, -1e18, 0, 1
        if top > self._seen:  # late rows for settled hours (the new hours are summed below)
            changed += self._sum(-1e18, self._until, self._settled, (self._seen, top))
        if boundary > self._until:
            changed += self._sum(self._until, boundary, self._settled, (-1, top)) or 1
            self._until = boundary
        self._seen = top
        if not changed:
            return
        self._cells = sorted((_cell(k, v) for k, v in self._settled.items()),
                             key=lambda c: c.hour)
        self._hours = [c.hour for c in self._cells]


def _top_id(reader: LedgerReader) -> int:
    rows = reader.query("SELECT MAX(id) AS id FROM attempts")
    return int(rows[0]["id"] or 0) if rows else 0


def _hour(key: Key) -> int:
    return int(str(key[0]))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _cell(key: Key, values: list[float]) -> Cell:
    provider, model = _text(key[1]), _text(key[2])
    return Cell(hour=_hour(key), provider=provider, model=model, route=str(key[3]),
                key_id=_text(key[4]), run_id=_text(key[5]), status=str(key[6]),
                error_type=_text(key[7]), sums=tuple(values),
                model_id=f"{provider or '?'}/{model or '?'}")


def total(cells: Iterable[Cell], measure: str) -> float:
    """The sum of one measure over cells."""
    i = INDEX[measure]
    return sum(c.sums[i] for c in cells)
