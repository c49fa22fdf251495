"""Tables printed by `llmswitch plan`: the dry run, the end-of-run summary, the cost report."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from llmswitch import Switch
from llmswitch.plans.check import Prepared
from llmswitch.plans.live import money
from llmswitch.plans.report import CostReport, dry_run
from llmswitch.plans.runner import PlanRun


def _table(title: str, columns: list[str], left: int = 2) -> Table:
    grid = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        grid.add_column(name, justify="left" if i < left else "right")
    return grid


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def print_dry_run(switch: Switch, prepared: Prepared, baseline: str | None,
                  as_json: bool) -> None:
    """The estimate table (or its JSON)."""
    data = dry_run(switch, prepared, baseline)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    base = data["baseline_model"] or "—"
    grid = _table(f"dry run: plan {data['plan']} (estimates; nothing was called)",
                  ["stream", "model", "input tok", "output tok", "cost", "baseline"])
    for sid, row in data["streams"].items():
        tokens_in = f"{row['input_tokens']:,}" + ("" if row["exact_input"] else "~")
        calls = f" ×≤{row['max_calls']}" if row["max_calls"] > 1 else ""
        grid.add_row(sid, row["model"], tokens_in, f"{row['output_tokens']:,}",
                     money(row["cost_usd"]) + calls, money(row["baseline_cost_usd"]))
    grid.add_row("total", "", "", "", money(data["total_cost_usd"]),
                 money(data["baseline_cost_usd"]), style="bold")
    console = Console()
    console.print(grid)
    console.print(f"baseline: every stream on {base}; saving {_pct(data['saving_share'])}",
                  highlight=False)
    console.print("~ = approximate token count; output = max_tokens, else a typical answer "
                  "length", highlight=False)
    for sid, row in data["streams"].items():
        if row["auto_reason"]:
            console.print(f"{sid}: auto → {row['model']}: {row['auto_reason']}",
                          highlight=False)


def print_summary(run: PlanRun, live: bool) -> None:
    """The end-of-run table on stdout (the live view already showed progress)."""
    grid = _table(f"plan run {run.run_id}: {run.status}",
                  ["stream", "status", "model", "in", "out", "cost", "latency"], left=3)
    for sid, entry in run.streams.items():
        calls = entry.get("calls") or []
        model = entry.get("model") or (calls[-1]["model"] if calls else None) \
            or entry.get("requested_model") or ""
        if entry.get("provider"):
            model = f"{entry['provider']}/{model}"
        if entry.get("moved_from"):
            model += f" (fallback from {entry['moved_from']})"
        latency = f"{entry['latency_ms'] / 1000:.1f}s" if entry.get("latency_ms") else ""
        grid.add_row(sid, entry["status"], model, str(entry.get("input_tokens") or 0),
                     str(entry.get("output_tokens") or 0), money(entry.get("cost_usd")), latency)
    grid.add_row("total", "", "", str(run.manifest.get("total_input_tokens", 0)),
                 str(run.manifest.get("total_output_tokens", 0)), money(run.total_cost_usd), "",
                 style="bold")
    console = Console()
    console.print(grid)
    for sid, entry in run.streams.items():
        error = entry.get("error")
        if entry["status"] in ("failed", "skipped") and error:
            console.print(f"{sid}: {error.get('message')}", highlight=False, markup=False)
    console.print(f"run folder: {run.run_dir}", highlight=False)
    if run.status == "awaiting_approval":
        waiting = [s for s, e in run.streams.items() if e["status"] == "awaiting_approval"]
        for sid in waiting:
            console.print(f"approve with: llmswitch plan approve {run.run_dir} {sid}",
                          highlight=False)
        console.print(f"then: llmswitch plan resume {run.run_dir}", highlight=False)
    elif run.status != "done":
        console.print(f"finish it with: llmswitch plan resume {run.run_dir}", highlight=False)
    else:
        console.print(f"cost report: llmswitch plan report {run.run_dir}", highlight=False)


def print_report(report: CostReport, png: str | None) -> None:
    """The cost report table."""
    kind = "estimated" if report.baseline_estimated else "measured"
    grid = _table(f"plan run {report.run_id}: cost vs all on {report.baseline_model}",
                  ["stream", "model", "in", "out", "this run", f"baseline ({kind})", "saving"])
    for line in report.streams:
        model = f"{line.provider}/{line.model}" if line.provider else (line.model or "—")
        if line.moved_from:
            model += f" (moved from {line.moved_from})"
        grid.add_row(line.stream, model, str(line.input_tokens), str(line.output_tokens),
                     money(line.actual_cost_usd), money(line.baseline_cost_usd),
                     _pct(line.saving_share))
    grid.add_row("total", "", "", "", money(report.actual_cost_usd),
                 money(report.baseline_cost_usd), _pct(report.saving_share), style="bold")
    console = Console()
    console.print(grid)
    data: dict[str, Any] = report.to_dict()
    if report.moved:
        console.print(f"moved to a fallback: {', '.join(report.moved)}", highlight=False)
    if data["check_pass_rate"] is not None:
        text = f"checks passed: {_pct(data['check_pass_rate'])}"
        if report.executed and report.executed.get("check_pass_rate") is not None:
            text += f" (baseline: {_pct(report.executed['check_pass_rate'])})"
        console.print(text, highlight=False)
    for note in report.notes:
        console.print(note, highlight=False)
    if png:
        console.print(f"chart: {png}", highlight=False)
