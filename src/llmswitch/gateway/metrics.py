"""Gateway metrics in the Prometheus text format, cheap on the request path.

Recording a request is a handful of dict updates (no locks: one event loop per worker).
`GET /metrics` renders the counters and histograms of every worker: with `--workers N`,
`llmswitch serve` gives the workers a shared folder (`$LLMSWITCH_METRICS_DIR`) where each one
writes its snapshot (at most once a second, and when it stops); the worker that answers the
scrape adds the others' latest snapshots to its own live figures. Counters of a worker that
exited stay in the sum (counters never go down). Gauges (in-flight requests, breaker state,
ledger queue) are per worker, labelled `worker="<pid>"`.

Why not `prometheus_client`: its multiprocess mode writes an mmap'd file on every increment
and takes a lock per labelled child; recording one request with it cost several times more
(benchmarks/gateway/metrics_cost.py, figures in docs/performance.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS_DIR_ENV = "LLMSWITCH_METRICS_DIR"
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

# Seconds. LLM calls span milliseconds (a cache, a refusal) to minutes (long answers).
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                      10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                   10.0, 30.0)

REQUEST_LABELS = ("api", "route", "model", "key", "status")
CALL_LABELS = ("route", "model", "key")

HELP: dict[str, tuple[str, str]] = {
    "llmswitch_gateway_requests_total": (
        "counter", "Requests answered, by API, route (the model name asked for), model "
        "(the provider/model that served), key id and HTTP status."),
    "llmswitch_gateway_errors_total": (
        "counter", "Failed requests by error type (the error table's kind: a library "
        "error type such as rate_limited, or a gateway refusal such as unauthenticated)."),
    "llmswitch_gateway_input_tokens_total": (
        "counter", "Input tokens billed (the ledger's figures), by route, model and key."),
    "llmswitch_gateway_output_tokens_total": (
        "counter", "Output tokens billed (the ledger's figures), by route, model and key."),
    "llmswitch_gateway_cost_usd_total": (
        "counter", "Cost in USD billed (the ledger's figures), by route, model and key."),
    "llmswitch_gateway_request_duration_seconds": (
        "histogram", "Whole request time in the gateway (to the last byte), by route, model "
        "and key."),
    "llmswitch_gateway_time_to_first_token_seconds": (
        "histogram", "Streams: request received to the first event sent, by route, model "
        "and key."),
    "llmswitch_gateway_in_flight_requests": (
        "gauge", "Requests being answered now, per worker."),
    "llmswitch_gateway_breaker_state": (
        "gauge", "Circuit breaker of a route target, per worker: 0 closed, 1 half-open, "
        "2 open."),
    "llmswitch_ledger_rows_written_total": (
        "counter", "Ledger rows written, per worker."),
    "llmswitch_ledger_rows_dropped_total": (
        "counter", "Ledger rows lost (queue full or database unreachable), per worker."),
    "llmswitch_ledger_write_failures_total": (
        "counter", "Ledger batches that could not be written, per worker."),
}
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(slots=True)
class Histogram:
    """Counts per bucket (the last one is +Inf), and the sum."""

    counts: list[int]
    total: float = 0.0


@dataclass
class Metrics:
    """One worker's counters and histograms (labels are tuples, in the order of the
    `*_LABELS` constants)."""

    requests: dict[tuple[str, ...], int] = field(default_factory=dict)
    errors: dict[tuple[str, ...], int] = field(default_factory=dict)
    input_tokens: dict[tuple[str, ...], int] = field(default_factory=dict)
    output_tokens: dict[tuple[str, ...], int] = field(default_factory=dict)
    cost_usd: dict[tuple[str, ...], float] = field(default_factory=dict)
    latency: dict[tuple[str, ...], Histogram] = field(default_factory=dict)
    ttft: dict[tuple[str, ...], Histogram] = field(default_factory=dict)

    def observe(self, api: str, route: str, model: str, key: str, status: int,
                error: str | None, seconds: float, ttft: float | None,
                input_tokens: int, output_tokens: int, cost: float | None) -> None:
        """Record one answered request."""
        labels = (api, route, model, key, _STATUS.get(status) or str(status))
        self.requests[labels] = self.requests.get(labels, 0) + 1
        if error is not None:
            self.errors[(error,)] = self.errors.get((error,), 0) + 1
        call = (route, model, key)
        if input_tokens:
            self.input_tokens[call] = self.input_tokens.get(call, 0) + input_tokens
        if output_tokens:
            self.output_tokens[call] = self.output_tokens.get(call, 0) + output_tokens
        if cost is not None:
            self.cost_usd[call] = self.cost_usd.get(call, 0.0) + cost
        _add(self.latency, call, LATENCY_BUCKETS, seconds)
        if ttft is not None:
            _add(self.ttft, call, TTFT_BUCKETS, ttft)

    # -- snapshots (one worker's figures as JSON) -------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The figures as a JSON-able object."""
        return {
            "requests": _pairs(self.requests), "errors": _pairs(self.errors),
            "input_tokens": _pairs(self.input_tokens),
            "output_tokens": _pairs(self.output_tokens), "cost_usd": _pairs(self.cost_usd),
            "latency": [[list(k), h.counts, h.total] for k, h in self.latency.items()],
            "ttft": [[list(k), h.counts, h.total] for k, h in self.ttft.items()],
        }

    def merge(self, snapshot: Mapping[str, Any]) -> None:
        """Add another worker's snapshot to these figures."""
        for name in ("requests", "errors", "input_tokens", "output_tokens", "cost_usd"):
            target: dict[tuple[str, ...], Any] = getattr(self, name)
            for labels, value in snapshot.get(name, ()):
                key = tuple(labels)
                target[key] = target.get(key, 0) + value
        for name in ("latency", "ttft"):
            hists: dict[tuple[str, ...], Histogram] = getattr(self, name)
            for labels, counts, total in snapshot.get(name, ()):
                key = tuple(labels)
                h = hists.get(key)
                if h is None:
                    hists[key] = Histogram(list(counts), float(total))
                else:
                    h.counts = [a + b for a, b in zip(h.counts, counts, strict=True)]
                    h.total += total

    def copy(self) -> Metrics:
        """An independent copy (to merge other workers into)."""
        out = Metrics()
        out.merge(self.snapshot())
        return out

    # -- rendering --------------------------------------------------------------------------
    def render(self, gauges: Sequence[Gauge] = ()) -> bytes:
        """The Prometheus text exposition (format 0.0.4)."""
        lines: list[str] = []
        _family(lines, "llmswitch_gateway_requests_total", REQUEST_LABELS, self.requests)
        _family(lines, "llmswitch_gateway_errors_total", ("type",), self.errors)
        _family(lines, "llmswitch_gateway_input_tokens_total", CALL_LABELS, self.input_tokens)
        _family(lines, "llmswitch_gateway_output_tokens_total", CALL_LABELS,
                self.output_tokens)
        _family(lines, "llmswitch_gateway_cost_usd_total", CALL_LABELS, self.cost_usd)
        _histogram(lines, "llmswitch_gateway_request_duration_seconds", LATENCY_BUCKETS,
                   self.latency)
        _histogram(lines, "llmswitch_gateway_time_to_first_token_seconds", TTFT_BUCKETS,
                   self.ttft)
        by_name: dict[str, dict[tuple[str, ...], float]] = {}
        names: dict[str, tuple[str, ...]] = {}
        for g in gauges:
            names.setdefault(g.name, tuple(g.labels))
            by_name.setdefault(g.name, {})[tuple(g.labels.values())] = g.value
        for name, values in by_name.items():
            _family(lines, name, names[name], values)
        lines.append("")
        return "\n".join(lines).encode()


@dataclass(frozen=True, slots=True)
class Gauge:
    """One sample of a per-worker figure, read at scrape time."""

    name: str
    labels: dict[str, str]
    value: float


_STATUS = {code: str(code) for code in (200, 400, 401, 402, 403, 404, 405, 413, 415, 422, 429,
                                        499, 500, 502, 503, 504)}


def _add(hists: dict[tuple[str, ...], Histogram], key: tuple[str, ...],
         buckets: tuple[float, ...], value: float) -> None:
    h = hists.get(key)
    if h is None:
        h = hists[key] = Histogram([0] * (len(buckets) + 1))
    h.counts[bisect_left(buckets, value)] += 1
    h.total += value


def _pairs(values: Mapping[tuple[str, ...], Any]) -> list[list[Any]]:
    return [[list(k), v] for k, v in values.items()]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _header(lines: list[str], name: str) -> None:
    kind, text = HELP[name]
    lines.append(f"# HELP {name} {text}")
    lines.append(f"# TYPE {name} {kind}")


def _family(lines: list[str], name: str, labels: Sequence[str],
            values: Mapping[tuple[str, ...], float]) -> None:
    _header(lines, name)
    for key in sorted(values):
        lines.append(f"{name}{_labels(labels, key)} {_number(values[key])}")


def _histogram(lines: list[str], name: str, buckets: tuple[float, ...],
               hists: Mapping[tuple[str, ...], Histogram]) -> None:
    _header(lines, name)
    for key in sorted(hists):
        h = hists[key]
        running = 0
        for bound, count in zip((*buckets, float("inf")), h.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f"{name}_bucket{_labels((*CALL_LABELS, 'le'), (*key, le))} {running}")
        lines.append(f"{name}_sum{_labels(CALL_LABELS, key)} {h.total!r}")
        lines.append(f"{name}_count{_labels(CALL_LABELS, key)} {running}")


class SharedMetrics:
    """A worker's link to the other workers' figures (a folder of snapshots, one file per
    worker process), or nothing with a single worker."""

    def __init__(self, folder: str | os.PathLike[str] | None, pid: int | None = None) -> None:
        self.folder = Path(folder) if folder else None
        self.pid = pid or os.getpid()
        self._last = 0.0

    def publish(self, metrics: Metrics, gauges: Sequence[Gauge] = (), *,
                force: bool = False, min_interval: float = 1.0) -> None:
        """Write this worker's snapshot (atomically: temp file, rename), at most once per
        `min_interval` seconds unless `force`."""
        if self.folder is None:
            return
        now = time.monotonic()
        if not force and now - self._last < min_interval:
            return
        self._last = now
        data = metrics.snapshot()
        data["gauges"] = [[g.name, g.labels, g.value] for g in gauges]
        data["pid"] = self.pid
        path = self.folder / f"worker-{self.pid}.json"
        tmp = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(data, separators=(",", ":")))
            tmp.replace(path)

    def gather(self, metrics: Metrics, gauges: Sequence[Gauge]) -> tuple[Metrics, list[Gauge]]:
        """These live figures plus every other worker's last snapshot."""
        if self.folder is None:
            return metrics, list(gauges)
        total = metrics.copy()
        out = list(gauges)
        for path in sorted(self.folder.glob("worker-*.json")):
            if path.name == f"worker-{self.pid}.json":
                continue
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced right now, or unreadable: skip this scrape
            total.merge(data)
            alive = _alive(int(data.get("pid", 0)))
            out.extend(Gauge(n, dict(labels), float(v)) for n, labels, v in data.get("gauges", ())
                       if alive or n.endswith("_total"))
        return total, out


def _alive(pid: int) -> bool:
    """Whether a worker process still runs (a dead worker's gauges are not reported)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
