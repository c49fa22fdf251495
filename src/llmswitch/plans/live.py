"""What a person sees while a plan runs: a live table of every stream in a terminal (rich),
or one line per change of a stream's status when the output is not a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from llmswitch.plans.runner import Runner

STYLES = {"done": "green", "failed": "red", "skipped": "red", "running": "cyan",
          "awaiting_approval": "yellow", "interrupted": "yellow", "pending": "dim"}
REFRESH_S = 0.25


def money(value: float | None) -> str:
    """`$0.001234`, or `—` when unknown."""
    return "—" if value is None else f"${value:.6f}"


def note(row: Mapping[str, Any], run_dir: str, sid: str) -> str:
    """The last column: fallback taken, agent step, approval hint, what a stream waits for."""
    parts = []
    if row.get("moved_from"):
        parts.append(f"fallback from {row['moved_from']}")
    if row.get("step"):
        parts.append(f"step {row['step']}")
    if row["status"] == "awaiting_approval":
        parts.append(f"approve: llmswitch plan approve {run_dir} {sid}")
    return "; ".join(parts)


def table(runner: Runner) -> Table:
    """The live table."""
    rows = runner.snapshot()
    title = f"plan {runner.plan.name} · run {runner.run_id}"
    grid = Table(title=title, title_justify="left", expand=False)
    for name, justify in (("stream", "left"), ("status", "left"), ("model", "left"),
                          ("in", "right"), ("out", "right"), ("cost", "right"),
                          ("elapsed", "right"), ("", "left")):
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    spent = 0.0
    for sid, row in rows.items():
        status = row["status"]
        elapsed = f"{row['elapsed_s']:.1f}s" if row["elapsed_s"] is not None else ""
        spent += row["cost_usd"] or 0.0
        grid.add_row(sid, f"[{STYLES.get(status, '')}]{status}[/]", str(row["model"]),
                     str(row["input_tokens"] or ""), str(row["output_tokens"] or ""),
                     money(row["cost_usd"]) if status not in ("pending", "running")
                     or row["cost_usd"] else "", elapsed,
                     note(row, str(runner.folder.path), sid))
    grid.caption = f"spent {money(spent)} · {runner.folder.path!s}"
    return grid


@contextlib.asynccontextmanager
async def watching(runner: Runner, console: Console, live: bool) -> AsyncIterator[None]:
    """Show the run while the body runs: a live table, or a line per status change."""
    if live:
        with Live(get_renderable=lambda: table(runner), console=console,
                  refresh_per_second=1 / REFRESH_S, transient=False):
            yield
        return
    seen: dict[str, str] = {}
    started = time.monotonic()
    task = asyncio.create_task(_lines(runner, console, seen, started))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _print_changes(runner, console, seen, started)


async def _lines(runner: Runner, console: Console, seen: dict[str, str], started: float
                 ) -> None:
    while True:
        _print_changes(runner, console, seen, started)
        await asyncio.sleep(REFRESH_S)


def _print_changes(runner: Runner, console: Console, seen: dict[str, str], started: float
                   ) -> None:
    for sid, row in runner.snapshot().items():
        status = row["status"]
        if seen.get(sid) == status or status == "pending":
            seen[sid] = status
            continue
        seen[sid] = status
        extra = note(row, str(runner.folder.path), sid)
        cost = f" {money(row['cost_usd'])}" if status in ("done", "failed") else ""
        console.print(f"[{time.monotonic() - started:6.1f}s] {sid}: {status} on {row['model']}"
                      f"{cost}{' (' + extra + ')' if extra else ''}", highlight=False,
                      markup=False)
