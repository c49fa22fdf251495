"""Spend and reliability reports from ledger rows: per model, provider or route; cost over
time as a table, a terminal bar chart, or a PNG (extra `plot`). Pure except `save_png`."""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

GroupBy = Literal["model", "provider", "route"]
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: float | None = None) -> float:
    """Epoch seconds from `7d`, `12h`, `30m` or an ISO date/time (UTC when no zone)."""
    now = time.time() if now is None else now
    m = _SINCE.match(value)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"--since: {value!r} is neither a duration (7d, 12h, 30m) nor an "
                         "ISO date (2026-11-01)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; `None` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _key(row: Mapping[str, Any], by: GroupBy) -> str:
    if by == "model":
        return f"{row.get('provider') or '?'}/{row.get('model') or '?'}"
    return str(row.get(by) or "?")


def summarize(rows: Iterable[Mapping[str, Any]], by: GroupBy = "model") -> list[dict[str, Any]]:
    """Per group: calls (attempts), errors, requests served, tokens, cost, latency p50/p95.
    Sorted by cost, highest first. Latency percentiles are over successful attempts."""
    groups: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        key = _key(row, by)
        g = groups.setdefault(key, {by: key, "calls": 0, "errors": 0, "served": 0,
                                    "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
                                    "unpriced_calls": 0})
        g["calls"] += 1
        g["errors"] += row.get("status") == "error"
        g["served"] += int(row.get("served") or 0)
        g["input_tokens"] += int(row.get("input_tokens") or 0)
        g["output_tokens"] += int(row.get("output_tokens") or 0)
        if row.get("cost_usd") is None:
            g["unpriced_calls"] += row.get("status") == "ok"
        else:
            g["cost_usd"] += float(row["cost_usd"])
        if row.get("status") == "ok" and row.get("latency_ms") is not None:
            latencies[key].append(float(row["latency_ms"]))
    for key, g in groups.items():
        g["cost_usd"] = round(g["cost_usd"], 8)
        g["error_rate"] = round(g["errors"] / g["calls"], 4) if g["calls"] else 0.0
        p50, p95 = percentile(latencies[key], 50), percentile(latencies[key], 95)
        g["latency_p50_ms"] = round(p50, 1) if p50 is not None else None
        g["latency_p95_ms"] = round(p95, 1) if p95 is not None else None
    return sorted(groups.values(), key=lambda g: (-g["cost_usd"], -g["calls"]))


def bucket_seconds(start: float, end: float) -> int:
    """A readable bucket for a time span: hours up to three days, else days."""
    return 3600 if end - start <= 3 * 86400 else 86400


def cost_series(rows: Iterable[Mapping[str, Any]], bucket: int | None = None
                ) -> list[tuple[float, float]]:
    """(bucket start, cost) pairs in time order, empty buckets included."""
    items = [(float(r["ts"]), float(r.get("cost_usd") or 0.0)) for r in rows]
    if not items:
        return []
    start, end = min(t for t, _ in items), max(t for t, _ in items)
    size = bucket or bucket_seconds(start, end)
    first = math.floor(start / size) * size
    totals: dict[float, float] = defaultdict(float)
    for t, cost in items:
        totals[first + math.floor((t - first) / size) * size] += cost
    n = int((max(totals) - first) // size) + 1
    return [(first + i * size, round(totals.get(first + i * size, 0.0), 8)) for i in range(n)]


def _label(ts: float, size: int) -> str:
    fmt = "%Y-%m-%d %H:00" if size < 86400 else "%Y-%m-%d"
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def render_table(summary: Sequence[Mapping[str, Any]], by: GroupBy) -> str:
    """A plain-text table of a summary."""
    head = (by, "calls", "errors", "served", "in_tok", "out_tok", "cost_usd", "p50_ms",
            "p95_ms")
    lines = [[str(g[by]), str(g["calls"]), str(g["errors"]), str(g["served"]),
              str(g["input_tokens"]), str(g["output_tokens"]), f"{g['cost_usd']:.6f}",
              _num(g["latency_p50_ms"]), _num(g["latency_p95_ms"])] for g in summary]
    total_cost = sum(g["cost_usd"] for g in summary)
    total_calls = sum(g["calls"] for g in summary)
    total_errors = sum(g["errors"] for g in summary)
    lines.append(["total", str(total_calls), str(total_errors), "", "", "",
                  f"{total_cost:.6f}", "", ""])
    widths = [max(len(r[i]) for r in [list(head), *lines]) for i in range(len(head))]
    out = [_row(head, widths), _row(["-" * w for w in widths], widths)]
    out += [_row(r, widths) for r in lines]
    return "\n".join(out)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    first = cells[0].ljust(widths[0])
    rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join([first, *rest]).rstrip()


def render_terminal_chart(series: Sequence[tuple[float, float]], width: int = 40) -> str:
    """Cost over time as horizontal bars."""
    if not series:
        return "(no spend recorded)"
    size = int(series[1][0] - series[0][0]) if len(series) > 1 else 86400
    top = max(c for _, c in series) or 1.0
    return "\n".join(f"{_label(t, size)}  {'█' * round(c / top * width):<{width}} ${c:.6f}"
                     for t, c in series)


def save_png(series: Sequence[tuple[float, float]], path: str, title: str = "Cost over time"
             ) -> None:
    """Write the cost series as a PNG bar chart (needs matplotlib: extra `plot`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from llmswitch.errors import ConfigError

        raise ConfigError("--chart FILE.png needs matplotlib",
                          hint="pip install 'llmswitch[plot]', or use --chart-terminal") from None
    size = int(series[1][0] - series[0][0]) if len(series) > 1 else 86400
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([_label(t, size) for t, _ in series], [c for _, c in series], color="#4c72b0")
    ax.set_ylabel("USD")
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
