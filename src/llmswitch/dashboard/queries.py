"""What each page shows, computed from the ledger: sums from the hourly rollup (SQL GROUP BY),
percentiles and request lists from indexed SQL, savings re-priced with the catalog.

Pure functions of a `LedgerReader`/`Rollup` and plain values; they run in a worker thread.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch import Catalog, ModelCard, Usage, cost_usd
from llmswitch.dashboard.ledger import LedgerReader
from llmswitch.dashboard.rollup import HOUR, INDEX, Cell, Rollup

PERIODS: dict[str, float | None] = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400,
                                    "90d": 90 * 86400, "all": None}
DEFAULT_PERIOD = "all"
GROUPS = ("model", "route", "provider", "key")
TOP_SERIES = 8
PAGE_SIZE = 50
STATUSES = ("ok", "error", "cut", "cancelled", "abandoned")
_HEX = re.compile(r"^[0-9a-f]{6,32}$")


def since_of(period: str, now: float) -> float | None:
    """The start of a period (to the hour), `None` for all time."""
    span = PERIODS.get(period)
    return None if span is None else math.floor((now - span) / HOUR) * HOUR


def group_of(cell: Cell, by: str, key_names: Mapping[str, str] | None = None) -> str:
    """A cell's label when grouped by model, route, provider or key."""
    if by == "model":
        return cell.model_id
    if by == "provider":
        return cell.provider or "?"
    if by == "key":
        if cell.key_id is None:
            return "(no key)"
        return (key_names or {}).get(cell.key_id, cell.key_id)
    return cell.route


# -- overview ---------------------------------------------------------------------------------
@dataclass
class Series:
    """A stacked chart's data: bucket starts, and per group one value per bucket."""

    buckets: list[float]
    bucket_s: int
    groups: dict[str, list[float]]


def _series(per_bucket: Mapping[tuple[str, int], float], totals: Mapping[str, float],
            first_hour: int, last_hour: int, since: float | None, now: float | None) -> Series:
    """Cost per time bucket per group (hours up to three days, else days); the top groups by
    cost keep their name, the rest are summed as `other`."""
    first = first_hour * HOUR if since is None else since
    last = last_hour * HOUR if now is None else now
    size = HOUR if last - first <= 3 * 86400 else 86400
    start = math.floor(first / size) * size
    count = int((last - start) // size) + 1
    ranked = sorted(totals, key=lambda g: (-totals[g], g))
    keep = set(ranked[:TOP_SERIES]) if len(ranked) > TOP_SERIES + 1 else set(ranked)
    groups: dict[str, list[float]] = {g: [0.0] * count for g in ranked if g in keep}
    if len(keep) < len(ranked):
        groups["other"] = [0.0] * count
    for (g, hour), cost in per_bucket.items():
        i = int((hour * HOUR - start) // size)
        if 0 <= i < count:
            groups[g if g in keep else "other"][i] += cost
    return Series([start + i * size for i in range(count)], size, groups)


@dataclass
class ModelStats:
    """One model's line of the overview."""

    model: str
    attempts: int = 0
    served: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    timed: list[int] = field(default_factory=lambda: [0, 0])
    """Successful attempts with a latency, and with a time to first token."""
    latency: dict[str, float | None] = field(default_factory=dict)
    ttft: dict[str, float | None] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """Failed attempts / attempts."""
        return self.errors / self.attempts if self.attempts else 0.0


def percentiles(reader: LedgerReader, model_id: str, column: str, since: float | None,
                qs: Sequence[int] = (50, 95), count: int | None = None
                ) -> dict[str, float | None]:
    """Exact percentiles (linear interpolation, as `llmswitch report`) of `latency_ms` or
    `ttft_ms` over a model's successful attempts. Each is one indexed `ORDER BY ... OFFSET`
    (the `attempts_ok_latency` and `attempts_ok_ttft` covering indexes), not a sort."""
    if column not in ("latency_ms", "ttft_ms"):
        raise ValueError(column)
    provider, _, model = model_id.partition("/")
    where = (f"provider = ? AND model = ? AND status = 'ok' AND {column} IS NOT NULL"
             + (" AND ts >= ?" if since is not None else ""))
    params: list[Any] = [provider, model] + ([since] if since is not None else [])
    if count is None:  # the rollup knows it for hour-aligned periods
        rows = reader.query(f"SELECT COUNT(*) AS n FROM attempts WHERE {where}", params)
        count = int(rows[0]["n"]) if rows else 0
    n = count
    out: dict[str, float | None] = {}
    for q in qs:
        if n == 0:
            out[f"p{q}"] = None
            continue
        rank = (n - 1) * q / 100
        lo = math.floor(rank)
        got = reader.query(f"SELECT {column} AS v FROM attempts WHERE {where} "
                           f"ORDER BY {column} LIMIT 2 OFFSET {int(lo)}", params)
        values = [float(r["v"]) for r in got]
        if not values:
            out[f"p{q}"] = None
            continue
        hi = values[1] if len(values) > 1 else values[0]
        out[f"p{q}"] = values[0] + (hi - values[0]) * (rank - lo)
    return out


@dataclass
class Overview:
    """Everything the overview page shows."""

    period: str
    by: str
    series: Series
    models: list[ModelStats]
    errors: dict[str, int]
    groups: list[tuple[str, float, int]]
    requests: int
    attempts: int
    failed_requests: int
    cost_usd: float


_ATT, _REQ, _SRV, _COST = (INDEX[m] for m in ("attempts", "requests", "served", "cost_usd"))
_IN, _OUT = INDEX["input_tokens"], INDEX["output_tokens"]
_OK_LAT, _OK_TTFT = INDEX["ok_latency"], INDEX["ok_ttft"]


def overview(reader: LedgerReader, rollup: Rollup, period: str, by: str, now: float,
             key_names: Mapping[str, str] | None = None) -> Overview:
    """The overview of a period, spend grouped `by` model, route, provider or key (one pass
    over the hourly sums, then the percentiles per model)."""
    since = since_of(period, now)
    cells = rollup.cells(since)
    stats: dict[str, ModelStats] = {}
    groups: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    per_bucket: dict[tuple[str, int], float] = defaultdict(float)
    errors: dict[str, int] = defaultdict(int)
    requests = served = attempts = 0
    for c in cells:
        s = c.sums
        n, cost = int(s[_ATT]), s[_COST]
        m = stats.get(c.model_id)
        if m is None:
            m = stats[c.model_id] = ModelStats(c.model_id)
        m.attempts += n
        m.served += int(s[_SRV])
        m.cost_usd += cost
        m.input_tokens += int(s[_IN])
        m.output_tokens += int(s[_OUT])
        m.timed[0] += int(s[_OK_LAT])
        m.timed[1] += int(s[_OK_TTFT])
        if c.status != "ok":
            m.errors += n
            errors[c.error_type or c.status] += n
        g = group_of(c, by, key_names)
        total = groups[g]
        total[0] += cost
        total[1] += n
        per_bucket[g, c.hour] += cost
        requests += int(s[_REQ])
        served += int(s[_SRV])
        attempts += n
    for m in stats.values():
        m.latency = percentiles(reader, m.model, "latency_ms", since, count=m.timed[0])
        m.ttft = percentiles(reader, m.model, "ttft_ms", since, count=m.timed[1])
    series = _series(per_bucket, {g: v[0] for g, v in groups.items()},
                     min((c.hour for c in cells), default=0),
                     max((c.hour for c in cells), default=0), since, now) if cells else Series(
        [], HOUR, {})
    return Overview(
        period=period, by=by, series=series,
        models=sorted(stats.values(), key=lambda s: (-s.cost_usd, -s.attempts, s.model)),
        errors=dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        groups=sorted(((g, v[0], int(v[1])) for g, v in groups.items()),
                      key=lambda t: (-t[1], -t[2], t[0])),
        requests=requests, attempts=attempts, failed_requests=max(0, requests - served),
        cost_usd=sum(v[0] for v in groups.values()))


# -- savings ----------------------------------------------------------------------------------
def card_for(catalog: Catalog, model_id: str) -> ModelCard | None:
    """The catalog card of a ledger model (`provider/model`, else the bare name as alias)."""
    return catalog.get(model_id) or catalog.lookup(model_id.partition("/")[2])


_SERVED = tuple(INDEX[m] for m in ("served_input", "served_output", "served_cached",
                                    "served_cache_write", "served_reasoning"))


def served_usage(cells: Iterable[Cell]) -> Usage:
    """Token counts of the answers served (one attempt per answered request)."""
    sums = [0, 0, 0, 0, 0]
    for c in cells:
        for i, j in enumerate(_SERVED):
            sums[i] += int(c.sums[j])
    return Usage(*sums)


@dataclass
class SavingsLine:
    """One route or plan run: who answered, what it cost, what the baseline would have."""

    name: str
    answers: dict[str, int]
    actual_usd: float
    baseline_usd: float | None

    @property
    def saved_usd(self) -> float | None:
        """Baseline minus actual (negative: the mix cost more)."""
        return None if self.baseline_usd is None else self.baseline_usd - self.actual_usd

    @property
    def saving_share(self) -> float | None:
        """`1 - actual / baseline`."""
        if self.baseline_usd is None or self.baseline_usd <= 0:
            return None
        return 1 - self.actual_usd / self.baseline_usd


@dataclass
class Savings:
    """The savings page: per route and per plan run, against one baseline model."""

    period: str
    baseline: str | None
    baseline_priced: bool
    routes: list[SavingsLine]
    runs: list[SavingsLine]
    choices: list[str]
    used: list[str]


@dataclass
class _Acc:
    answers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cost: float = 0.0
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])

    def add(self, c: Cell) -> None:
        s = c.sums
        self.cost += s[_COST]
        if s[_SRV]:
            self.answers[c.model_id] += int(s[_SRV])
            for i, j in enumerate(_SERVED):
                self.usage[i] += int(s[j])

    def line(self, name: str, card: ModelCard | None) -> SavingsLine:
        answers = dict(sorted(self.answers.items(), key=lambda kv: -kv[1]))
        baseline = cost_usd(card, Usage(*self.usage)) if card is not None else None
        return SavingsLine(name, answers, self.cost, baseline)


def default_baseline(catalog: Catalog, answers: Mapping[str, int], usage: Usage) -> str | None:
    """The used model that prices every served answer highest (as `plan report` chooses; a
    tie goes to the model that answered most)."""
    best: tuple[float, str] | None = None
    for model_id in sorted(answers, key=lambda m: (-answers[m], m)):
        card = card_for(catalog, model_id)
        if card is None or not card.priced:
            continue
        cost = cost_usd(card, usage) or 0.0
        if best is None or cost > best[0]:
            best = (cost, card.id)
    return best[1] if best else None


def savings(rollup: Rollup, catalog: Catalog, period: str, baseline: str | None,
            now: float) -> Savings:
    """Share of answers per model and money saved against `baseline` (default: the dearest
    model used), re-priced from the served answers' recorded token counts."""
    routes: dict[str, _Acc] = defaultdict(_Acc)
    runs: dict[str, _Acc] = defaultdict(_Acc)
    everything = _Acc()
    for c in rollup.cells(since_of(period, now)):
        routes[c.route].add(c)
        everything.add(c)
        if c.run_id is not None:
            runs[c.run_id].add(c)
    used = sorted(everything.answers)
    name = baseline or default_baseline(catalog, everything.answers, Usage(*everything.usage))
    card = card_for(catalog, name) if name else None
    priced = card if card is not None and card.priced else None

    def lines(accs: Mapping[str, _Acc]) -> list[SavingsLine]:
        out = [acc.line(n, priced) for n, acc in accs.items()]
        return sorted(out, key=lambda line: (-line.actual_usd, line.name))

    return Savings(period, card.id if card is not None else name, priced is not None,
                   lines(routes), lines(runs), sorted(c.id for c in catalog if c.priced), used)


# -- requests ---------------------------------------------------------------------------------
@dataclass
class RequestFilter:
    """The requests page's search and filters."""

    q: str = ""
    status: str = ""
    route: str = ""
    key: str = ""
    period: str = "all"
    before: str = ""

    def where(self, since: float | None) -> tuple[list[str], list[Any]]:
        """SQL conditions on attempt rows (a request matches when one of its attempts does)."""
        conds: list[str] = []
        params: list[Any] = []
        q = self.q.strip()
        if q:
            alts = ["(provider || '/' || model) = ?", "model = ?", "route = ?", "key_id = ?",
                    "error_type = ?", "run_id = ?"]
            params += [q] * len(alts)
            if _HEX.match(q.lower()):
                alts.append("request_id LIKE ?")
                params.append(q.lower() + "%")
            conds.append("(" + " OR ".join(alts) + ")")
        if self.status in STATUSES:
            conds.append("status = ?")
            params.append(self.status)
        if self.route:
            conds.append("route = ?")
            params.append(self.route)
        if self.key:
            conds.append("key_id = ?")
            params.append(self.key)
        if since is not None:
            conds.append("ts >= ?")
            params.append(since)
        return conds, params


@dataclass
class RequestRow:
    """One request in the list."""

    trace_id: str
    ts: float
    key_id: str | None
    route: str
    models: list[str]
    status: str
    error_type: str | None
    cost_usd: float
    latency_ms: float | None
    attempts: int


def _cursor(value: str) -> tuple[float, int] | None:
    """An `Older requests` cursor (`<ts>:<row id>`); `None` (the first page) for anything
    else, such as numbers no database column can hold."""
    ts, _, rid = value.partition(":")
    try:
        at, row = float(ts), int(rid)
    except ValueError:
        return None
    return (at, row) if math.isfinite(at) and abs(row) < 2**63 else None


def request_rows(attempts: Sequence[Mapping[str, Any]]) -> RequestRow:
    """A request's summary from its attempt rows (in attempt order)."""
    first = attempts[0]
    served = next((a for a in attempts if a["served"]), None)
    last = served or attempts[-1]
    ends = [float(a["ts"]) + float(a["latency_ms"] or 0) / 1000 for a in attempts]
    return RequestRow(
        trace_id=str(first["request_id"]), ts=float(first["ts"]), key_id=first["key_id"],
        route=str(first["route"]),
        models=list(dict.fromkeys(f"{a['provider'] or '?'}/{a['model'] or '?'}"
                                  for a in attempts)),
        status="ok" if served else str(last["status"]),
        error_type=None if served else last["error_type"],
        cost_usd=sum(float(a["cost_usd"] or 0) for a in attempts),
        latency_ms=(max(ends) - float(first["ts"])) * 1000 if ends else None,
        attempts=len(attempts))


def find_requests(reader: LedgerReader, filt: RequestFilter, now: float,
                  limit: int = PAGE_SIZE) -> tuple[list[RequestRow], str | None]:
    """The newest requests matching the filter, and the cursor of the next (older) page.
    Walks the `ts` index newest first, so a page costs the same however large the ledger."""
    conds, params = filt.where(since_of(filt.period, now))
    cursor = _cursor(filt.before) if filt.before else None
    ids: list[str] = []
    last: tuple[float, int] | None = None
    more = False
    for _ in range(20):
        where = list(conds)
        page_params = list(params)
        if cursor is not None:
            where.append("(ts < ? OR (ts = ? AND id < ?))")
            page_params += [cursor[0], cursor[0], cursor[1]]
        sql = ("SELECT id, request_id, ts FROM attempts"
               + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY ts DESC, id DESC LIMIT {limit * 4}")
        rows = reader.query(sql, page_params)
        for r in rows:
            if r["request_id"] not in ids:
                if len(ids) == limit:
                    more = True
                    break
                ids.append(r["request_id"])
            last = (float(r["ts"]), int(r["id"]))
        if more or len(rows) < limit * 4:
            break
        cursor = last
    if not ids:
        return [], None
    found = attempts_of(reader, ids)
    out = [request_rows(found[i]) for i in ids if found.get(i)]
    return out, (f"{last[0]!r}:{last[1]}" if more and last else None)


def attempts_of(reader: LedgerReader, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every attempt row of these requests, in attempt order."""
    marks = ", ".join("?" for _ in ids)
    rows = reader.query(f"SELECT * FROM attempts WHERE request_id IN ({marks}) "
                        "ORDER BY request_id, attempt, id", list(ids))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["request_id"]].append(r)
    return out


@dataclass
class RequestDetail:
    """One request: its attempt rows, its stored trace tree, and its tags."""

    trace_id: str
    attempts: list[dict[str, Any]]
    trace: dict[str, Any] | None
    summary: RequestRow | None
    tags: dict[str, str]


def request_detail(reader: LedgerReader, trace_id: str) -> RequestDetail | None:
    """A request by its trace id (`None` when the ledger has neither rows nor a trace)."""
    attempts = attempts_of(reader, [trace_id]).get(trace_id, [])
    rows = reader.query("SELECT trace_json, tags FROM traces WHERE request_id = ?", (trace_id,))
    if not attempts and not rows:
        return None
    trace = json.loads(rows[0]["trace_json"]) if rows else None
    raw_tags = (attempts[0]["tags"] if attempts else rows[0]["tags"]) or "{}"
    try:
        tags = {str(k): str(v) for k, v in json.loads(raw_tags).items()}
    except (ValueError, AttributeError):
        tags = {}
    return RequestDetail(trace_id, attempts, trace if isinstance(trace, dict) else None,
                         request_rows(attempts) if attempts else None, tags)


# -- keys -------------------------------------------------------------------------------------
def key_usage(reader: LedgerReader, rollup: Rollup, starts: Mapping[str, float]
              ) -> dict[str, dict[str, Any]]:
    """Per key id: spend and requests since its period start (`starts`, hour-aligned: UTC
    days and months) from the hourly sums, and its last use (one index lookup per key)."""
    out: dict[str, dict[str, Any]] = {k: {"spent_usd": 0.0, "requests": 0, "last": None}
                                      for k in starts}
    for c in rollup.cells(min(starts.values(), default=0.0)):
        entry = out.get(c.key_id) if c.key_id is not None else None
        if entry is not None and c.hour * HOUR >= starts[str(c.key_id)]:
            entry["spent_usd"] += c.sums[_COST]
            entry["requests"] += int(c.sums[_REQ])
    for key_id, entry in out.items():
        rows = reader.query("SELECT MAX(ts) AS last FROM attempts WHERE key_id = ?", (key_id,))
        entry["last"] = rows[0]["last"] if rows else None
    return out


# -- plans ------------------------------------------------------------------------------------
def plan_runs(reader: LedgerReader, limit: int = 200) -> list[dict[str, Any]]:
    """Plan runs in the ledger, newest first: first and last call, attempts, answers, cost."""
    return reader.query(
        "SELECT run_id, MIN(ts) AS started, MAX(ts) AS last, COUNT(*) AS attempts, "
        "SUM(served) AS answers, SUM(COALESCE(cost_usd, 0)) AS cost_usd FROM attempts "
        f"WHERE run_id IS NOT NULL GROUP BY run_id ORDER BY MIN(ts) DESC LIMIT {int(limit)}")


def run_attempts(reader: LedgerReader, run_id: str) -> list[dict[str, Any]]:
    """Every attempt of one plan run with its stream id (from the row's tags)."""
    from llmswitch.dashboard.ledger import tag_expr

    return reader.query(
        f"SELECT {tag_expr(reader.dialect, 'stream_id')} AS stream_id, ts, request_id, "
        "provider, model, status, error_type, served, cost_usd, input_tokens, output_tokens, "
        "cached_input_tokens, cache_write_tokens, reasoning_tokens, latency_ms "
        "FROM attempts WHERE run_id = ? ORDER BY ts, id", (run_id,))
