"""The plans page: every plan run in the ledger (rows tagged `run_id`/`stream_id`), joined with
its run folder's `run.json` when the folder is found, with each stream's models, attempts,
tokens and cost, and the run against the single-model baseline re-priced from its own token
counts (as `llmswitch plan report` does: default baseline = the dearest model it used)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from llmswitch import Catalog, Usage, cost_usd
from llmswitch.dashboard.html import Markup, h, pct, table, usd, when
from llmswitch.dashboard.ledger import LedgerReader
from llmswitch.dashboard.queries import card_for, plan_runs, run_attempts

MAX_FOLDERS = 500
N = TypeVar("N", int, float)


def find_run_folders(dirs: Iterable[Path]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Run id -> (folder, manifest) for the run folders directly inside `dirs` (newest
    `MAX_FOLDERS` by modification time), baseline runs inside them included."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    manifests: list[Path] = []
    for d in dirs:
        if d.is_dir():
            manifests += [p for p in d.glob("*/run.json")] + list(d.glob("*/baseline/run.json"))
    manifests.sort(key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
    for path in manifests[:MAX_FOLDERS]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("run_id"), str):
            found.setdefault(data["run_id"], (path.parent, data))
    return found


@dataclass
class StreamLine:
    """One stream of a run."""

    stream: str
    models: list[str] = field(default_factory=list)
    served: str | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    baseline_usd: float | None = None
    traces: list[str] = field(default_factory=list)
    status: str | None = None


@dataclass
class RunView:
    """One run, from the ledger and (when found) its folder."""

    run_id: str
    started: float | None
    cost_usd: float
    attempts: int
    answers: int
    folder: str | None = None
    status: str | None = None
    baseline: str | None = None
    baseline_usd: float | None = None
    streams: list[StreamLine] = field(default_factory=list)

    @property
    def saving_share(self) -> float | None:
        """`1 - actual / baseline`."""
        if self.baseline_usd is None or self.baseline_usd <= 0:
            return None
        return 1 - self.cost_usd / self.baseline_usd


def _streams(rows: Sequence[Mapping[str, Any]]) -> dict[str, StreamLine]:
    out: dict[str, StreamLine] = {}
    for r in rows:
        line = out.setdefault(str(r["stream_id"] or "?"), StreamLine(str(r["stream_id"] or "?")))
        model = f"{r['provider'] or '?'}/{r['model'] or '?'}"
        if model not in line.models:
            line.models.append(model)
        line.attempts += 1
        if r["status"] != "ok":
            line.errors.append(f"{model}: {r['error_type'] or r['status']}")
        if r["served"]:
            line.served = model
        line.usage = line.usage + Usage(int(r["input_tokens"] or 0), int(r["output_tokens"] or 0),
                                        int(r["cached_input_tokens"] or 0),
                                        int(r["cache_write_tokens"] or 0),
                                        int(r["reasoning_tokens"] or 0))
        line.cost_usd += float(r["cost_usd"] or 0)
        if r["request_id"] not in line.traces:
            line.traces.append(str(r["request_id"]))
    return out


def _baseline(catalog: Catalog, lines: Iterable[StreamLine], chosen: str | None
              ) -> tuple[str | None, Any]:
    lines = list(lines)
    if chosen:
        card = card_for(catalog, chosen)
        return (card.id, card) if card is not None and card.priced else (chosen, None)
    best: tuple[float, str, Any] | None = None
    total = sum((s.usage for s in lines), Usage())
    for model_id in sorted({m for s in lines for m in s.models}):
        card = card_for(catalog, model_id)
        if card is not None and card.priced:
            cost = cost_usd(card, total) or 0.0
            if best is None or cost > best[0]:
                best = (cost, card.id, card)
    return (best[1], best[2]) if best else (None, None)


def run_view(reader: LedgerReader, catalog: Catalog, run_id: str,
             folders: Mapping[str, tuple[Path, dict[str, Any]]],
             baseline: str | None = None) -> RunView | None:
    """One run with its streams (`None` when neither the ledger nor a folder knows it)."""
    rows = run_attempts(reader, run_id)
    folder = folders.get(run_id)
    if not rows and folder is None:
        return None
    lines = _streams(rows)
    manifest = folder[1] if folder else {}
    streams = manifest.get("streams")
    for sid, value in (streams.items() if isinstance(streams, Mapping) else ()):
        entry = value if isinstance(value, Mapping) else {}  # a run.json edited by hand
        line = lines.setdefault(str(sid), StreamLine(str(sid)))
        line.status = _text(entry.get("status"))
        reason = _reason(entry.get("error"))
        if reason and reason not in line.errors:
            line.errors.append(reason)  # a deadline, a rejected output: only run.json knows
        if not rows and entry.get("model"):
            line.served = f"{entry.get('provider')}/{entry.get('model')}"
            line.models = [line.served]
            line.usage = Usage(_number(entry.get("input_tokens"), int),
                               _number(entry.get("output_tokens"), int))
            line.cost_usd = _number(entry.get("cost_usd"), float)
    name, card = _baseline(catalog, lines.values(), baseline)
    for line in lines.values():
        line.baseline_usd = cost_usd(card, line.usage) if card is not None else None
    known = [s.baseline_usd for s in lines.values() if s.baseline_usd is not None]
    return RunView(run_id=run_id, started=min((float(r["ts"]) for r in rows), default=None),
                   cost_usd=sum(s.cost_usd for s in lines.values()), attempts=len(rows),
                   answers=sum(1 for r in rows if r["served"]),
                   folder=str(folder[0]) if folder else None,
                   status=_text(manifest.get("status")),
                   baseline=name, baseline_usd=sum(known) if known else None,
                   streams=list(lines.values()))


def _reason(error: Any) -> str | None:
    """`type: message` of a stream's error in run.json."""
    if isinstance(error, Mapping):
        kind, message = error.get("type"), error.get("message")
        return ": ".join(str(p) for p in (kind, message) if p) or None
    return str(error) if error else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any, kind: Callable[[Any], N]) -> N:
    """A count or amount from a run.json (0 when it is not a number)."""
    try:
        out = kind(value or 0)
    except (TypeError, ValueError, OverflowError):
        return kind(0)
    return out if math.isfinite(out) else kind(0)


def all_runs(reader: LedgerReader, catalog: Catalog,
             folders: Mapping[str, tuple[Path, dict[str, Any]]]) -> list[RunView]:
    """Every run the ledger or a folder knows, newest first, each with its baseline."""
    ids = [str(r["run_id"]) for r in plan_runs(reader)]
    ids += [rid for rid in folders if rid not in ids]
    views = [run_view(reader, catalog, rid, folders) for rid in ids]
    return sorted((v for v in views if v is not None),
                  key=lambda v: -(v.started or 0))


def plans_page(mount: str, runs: Sequence[RunView]) -> Markup:
    """Every run: status, streams, models, cost against its single-model baseline."""
    rows = []
    for v in runs:
        models = sorted({s.served or (s.models[-1] if s.models else "-") for s in v.streams})
        rows.append([h("a", {"href": f"{mount}/plans/{quote(v.run_id)}"}, v.run_id),
                     when(v.started), v.status or "-", len(v.streams), ", ".join(models),
                     v.attempts, usd(v.cost_usd), v.baseline or "-", usd(v.baseline_usd),
                     pct(v.saving_share), v.folder or "-"])
    return h("div", None, table(
        ["run", "started (UTC)", "status", "streams", "models", "attempts", "cost",
         "baseline model", "baseline cost", "saving", "run folder"], rows,
        caption=f"{len(runs)} plan run(s)") if rows else h(
        "p", {"class": "empty"}, "No plan runs recorded (llmswitch plan run tags every call "
        "with its run id)."))


def run_page(mount: str, v: RunView, choices: Sequence[str]) -> Markup:
    """One run: per stream, the models that served it, attempts and errors, tokens, cost,
    and the same stream priced on the baseline model."""
    rows = [[s.stream, s.status or "-", s.served or "-", " → ".join(s.models),
             s.attempts, "; ".join(s.errors) or "-", s.usage.input_tokens,
             s.usage.output_tokens, usd(s.cost_usd), usd(s.baseline_usd),
             pct(1 - s.cost_usd / s.baseline_usd if s.baseline_usd else None),
             h("span", None, [h("a", {"href": f"{mount}/requests/{quote(t)}",
                                      "class": "trace"}, t[:12]) for t in s.traces[:5]])]
            for s in v.streams]
    picker = h("form", {"method": "get", "action": f"{mount}/plans/{quote(v.run_id)}",
                        "class": "inline"},
               h("label", {"for": "baseline"}, "Baseline model"),
               h("select", {"id": "baseline", "name": "baseline"},
                 [h("option", {"value": c, "selected": c == v.baseline}, c) for c in choices]),
               h("button", {"type": "submit"}, "Compare"))
    facts = [("run id", v.run_id), ("status", v.status or "-"), ("run folder", v.folder or "-"),
             ("started (UTC)", when(v.started)), ("cost", usd(v.cost_usd)),
             (f"on {v.baseline or 'baseline'}", usd(v.baseline_usd)),
             ("saving", pct(v.saving_share))]
    return h("div", None,
             h("dl", {"class": "facts"}, [h("div", None, h("dt", None, k), h("dd", None, val))
                                          for k, val in facts]),
             picker,
             h("p", {"class": "note"}, "Baseline: every stream on one model, re-priced from "
               "this run's token counts (an estimate)."),
             table(["stream", "status", "served by", "models tried", "attempts", "errors",
                    "input tokens", "output tokens", "cost", "baseline cost", "saving",
                    "traces"], rows, caption="Streams"))


def grouped_by_stream(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Attempt rows per stream id (for tests and the JSON endpoint)."""
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        out[str(r["stream_id"] or "?")].append(r)
    return out
