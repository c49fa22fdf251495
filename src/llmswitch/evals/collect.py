"""``router collect``: build an outcome table by running candidate models on a user's prompts.

Every (prompt, model) *cell* is one call through a `Switch` (so it is priced, traced and lands in
the spend ledger), graded by a `Grader` (``evals/graders.py``). The output is an outcome table in
the JSON-lines format `load_table` reads (one line per prompt)::

    {"prompt_id", "task", "prompt", "quality": {model: q}, "cost_usd": {model: usd},
     "errors": {model: message}, "responses": {model: text}, <other fields of the prompt line>}

Writing is incremental and resumable. Each finished cell is appended (and flushed) to a hidden
journal beside the table (``.<table name>.partial``); a prompt's row is appended to the table as
soon as all its models are done. A re-run skips every cell already in the table or the journal
(``retry_errors`` re-runs failed ones), and the journal is removed once every row is complete.
A failed call is a cell with quality 0, the cost it was billed, and its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from llmswitch.errors import AuthenticationError, ConfigError, LLMSwitchError
from llmswitch.evals.graders import Grader, GraderInputError, PromptRow, grader_models
from llmswitch.evals.outputs import OutputError, prepare_output
from llmswitch.switch import Switch

RESERVED = ("prompt_id", "prompt", "task", "quality", "cost_usd", "errors", "responses",
            "grader")


class CollectError(ValueError):
    """Bad input to collection (the message says what and where); nothing was called."""


@dataclass(frozen=True)
class Cell:
    """The outcome of one model on one prompt."""

    prompt_id: str
    model: str
    quality: float
    cost_usd: float
    response: str = ""
    error: str | None = None
    failed_call: bool = False
    """True when the model call itself failed (else ``error`` is a grading error)."""
    latency_ms: float = 0.0
    unpriced: bool = False
    """The model has no known price: its cost is recorded as 0."""

    def to_json(self) -> dict[str, Any]:
        """The journal line of this cell."""
        return {"prompt_id": self.prompt_id, "model": self.model, "quality": self.quality,
                "cost_usd": self.cost_usd, "response": self.response, "error": self.error,
                "failed_call": self.failed_call}


@dataclass
class ModelStats:
    """Per-model totals of one run."""

    calls: int = 0
    failed: int = 0
    grade_errors: int = 0
    quality_sum: float = 0.0
    cost_usd: float = 0.0
    unpriced: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready totals (mean quality over this run's calls)."""
        mean = self.quality_sum / self.calls if self.calls else None
        return {"calls": self.calls, "failed": self.failed, "grade_errors": self.grade_errors,
                "mean_quality": mean, "cost_usd": round(self.cost_usd, 10),
                "unpriced": self.unpriced}


@dataclass
class CollectSummary:
    """What a run did. Readable after an interruption too (``interrupted`` is then True)."""

    out: str
    prompts: int = 0
    models: list[str] = field(default_factory=list)
    planned: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    grade_errors: int = 0
    cost_usd: float = 0.0
    grader_cost_usd: float = 0.0
    rows: int = 0
    complete: bool = False
    interrupted: bool = False
    per_model: dict[str, ModelStats] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``llmswitch router collect --json``)."""
        return {"out": self.out, "prompts": self.prompts, "models": self.models,
                "planned": self.planned, "skipped": self.skipped, "done": self.done,
                "failed": self.failed, "grade_errors": self.grade_errors,
                "cost_usd": round(self.cost_usd, 10),
                "grader_cost_usd": round(self.grader_cost_usd, 10), "rows": self.rows,
                "complete": self.complete, "interrupted": self.interrupted,
                "per_model": {m: s.to_dict() for m, s in self.per_model.items()},
                "notes": self.notes}


class Progress(Protocol):
    """Receives progress (the CLI draws a rich progress bar)."""

    def start(self, total: int, skipped: int) -> None:
        """Collection of ``total`` cells begins (``skipped`` were already done)."""

    def advance(self, cell: Cell) -> None:
        """One cell finished."""


# ----------------------------------------------------------------------------------------------
# reading prompts
# ----------------------------------------------------------------------------------------------


def read_prompts(path: str | Path) -> list[PromptRow]:
    """Read a prompts JSONL file; raise `CollectError` naming the file and line of a problem.

    Each line: ``{"prompt": str, "prompt_id"?: str, "task"?: str, "reference"?: str | [str],
    "test"?: str, ...}``. A missing ``prompt_id`` is derived from the prompt text (stable across
    runs, so resuming works).
    """
    p = Path(path)
    if p.is_dir():
        raise CollectError(f"prompts file {str(p)!r} is a directory, not a JSON-lines file")
    if not p.is_file():
        raise CollectError(f"prompts file {str(p)!r} does not exist")
    rows: list[PromptRow] = []
    seen: dict[str, int] = {}
    try:
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    row = _prompt_row(p, lineno, line)
                    if row.prompt_id in seen:
                        raise CollectError(
                            f"{p}:{lineno}: prompt_id {row.prompt_id!r} already used on line "
                            f"{seen[row.prompt_id]}"
                        )
                    seen[row.prompt_id] = lineno
                    rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectError(f"{p}: cannot read ({exc})") from None
    if not rows:
        raise CollectError(f"{p}: no prompts (expected one JSON object per line)")
    return rows


def _prompt_row(path: Path, lineno: int, line: str) -> PromptRow:
    where = f"{path}:{lineno}"
    try:
        data = json.loads(line.rstrip())
    except json.JSONDecodeError as exc:
        raise CollectError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise CollectError(f"{where}: expected a JSON object, got {type(data).__name__}")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise CollectError(f"{where}: 'prompt' must be a non-empty string")
    pid = data.get("prompt_id", data.get("id"))
    if pid is None:
        pid = "p-" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:12]
    if not isinstance(pid, (str, int)) or isinstance(pid, bool) or not str(pid):
        raise CollectError(f"{where}: 'prompt_id' must be a non-empty string")
    task = data.get("task", "default")
    if not isinstance(task, str) or not task:
        raise CollectError(f"{where}: 'task' must be a non-empty string")
    test = data.get("test")
    if test is not None and not isinstance(test, str):
        raise CollectError(f"{where}: 'test' must be a string")
    extras = {k: v for k, v in data.items() if k not in (*RESERVED, "id")}
    return PromptRow(str(pid), prompt, task, data.get("reference"), test, lineno, extras)


# ----------------------------------------------------------------------------------------------
# the table on disk: complete rows + a journal of finished cells
# ----------------------------------------------------------------------------------------------


def journal_path(out: str | Path) -> Path:
    """The hidden journal of finished cells beside the table ``out``."""
    p = Path(out)
    return p.with_name(f".{p.name}.partial")


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Records of a JSONL file we wrote, and whether a torn last line (a hard kill) was dropped."""
    if not path.exists():
        return [], False
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectError(f"{path}: cannot read ({exc})") from None
    records, torn = [], False
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if lineno == len(lines) and not line.endswith("\n"):
                torn = True
                continue
            raise CollectError(
                f"{path}:{lineno}: invalid JSON ({exc.msg}); is this an outcome table written "
                "by `router collect`? Move it away or choose another --out"
            ) from None
        if not isinstance(record, dict) or "prompt_id" not in record:
            raise CollectError(f"{path}:{lineno}: not an outcome-table row (no prompt_id)")
        records.append(record)
    return records, torn


def _number(value: Any) -> float:
    """A JSON number as float; TypeError for anything else (strings, booleans, null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _table_cells(path: Path, lineno: int, record: Mapping[str, Any]) -> list[Cell]:
    """The cells of an existing table row; CollectError if it is not shaped like ours."""
    pid = str(record["prompt_id"])
    fields = {k: record.get(k) or {} for k in ("quality", "cost_usd", "responses", "errors")}
    bad = [k for k, v in fields.items() if not isinstance(v, dict)]
    if bad:
        raise CollectError(f"{path}: row {lineno}: {bad[0]!r} must be an object {{model: value}}")
    try:
        return [Cell(pid, model, _number(q), _number(fields["cost_usd"].get(model) or 0.0),
                     str(fields["responses"].get(model) or ""), fields["errors"].get(model))
                for model, q in fields["quality"].items()]
    except TypeError as exc:
        raise CollectError(f"{path}: row {lineno}: quality and cost must be numbers ({exc})"
                           ) from None


class TableStore:
    """The output table and its journal: what is done, and incremental, flushed writes.

    Rows and journal cells record the ``grader`` that scored them; resuming with another grader
    is refused, since the table would mix two scales."""

    def __init__(self, out: str | Path, models: Sequence[str], grader: str = "") -> None:
        self.out = Path(out)
        self.journal = journal_path(self.out)
        self.models = list(models)
        self.grader = grader
        self.rows: dict[str, dict[str, Any]] = {}
        self.cells: dict[tuple[str, str], Cell] = {}
        self._dirty = False
        self._handles: dict[Path, IO[str]] = {}
        self._load()

    def _load(self) -> None:
        records, torn = _read_jsonl(self.out)
        self._dirty = torn
        for lineno, record in enumerate(records, 1):
            self.rows[str(record["prompt_id"])] = record
            for cell in _table_cells(self.out, lineno, record):
                self.cells[(cell.prompt_id, cell.model)] = cell
        journal, _ = _read_jsonl(self.journal)
        for lineno, j in enumerate(journal, 1):
            try:
                cell = Cell(str(j["prompt_id"]), str(j["model"]), _number(j["quality"]),
                            _number(j["cost_usd"]), str(j.get("response") or ""),
                            j.get("error"), bool(j.get("failed_call")))
            except (KeyError, TypeError, ValueError):
                raise CollectError(f"{self.journal}: record {lineno} is not a cell of "
                                   "`router collect`; delete the file to start over") from None
            self.cells[(cell.prompt_id, cell.model)] = cell
        self._check_grader([*records, *journal])
        extra = sorted({m for r in records for m in r.get("quality") or {}} - set(self.models))
        if extra:
            raise CollectError(
                f"{self.out} already holds results for {', '.join(extra)}, not in --models; "
                "add them to --models (only missing cells are run) or choose another --out"
            )

    def _check_grader(self, records: Sequence[Mapping[str, Any]]) -> None:
        used = sorted({str(r["grader"]) for r in records if r.get("grader")} - {self.grader})
        if self.grader and used:
            raise CollectError(
                f"{self.out} was graded with --grader {used[0]}, not {self.grader}: resuming "
                f"would mix two scales; re-run with --grader {used[0]} or choose another --out")

    def done(self, prompt_id: str, model: str, retry_errors: bool) -> bool:
        """Whether this cell is finished (and, with ``retry_errors``, did not fail)."""
        cell = self.cells.get((prompt_id, model))
        return cell is not None and not (retry_errors and cell.error)

    def add(self, row: PromptRow, cell: Cell) -> None:
        """Record a finished cell; append the prompt's row once all its models are done."""
        self.cells[(cell.prompt_id, cell.model)] = cell
        self._append(self.journal, {**cell.to_json(), "grader": self.grader})
        if all((row.prompt_id, m) in self.cells for m in self.models):
            record = self.record(row)
            if row.prompt_id in self.rows:
                self._dirty = True  # an existing row gained models or was retried: rewrite
            else:
                self._append(self.out, record)
            self.rows[row.prompt_id] = record

    def record(self, row: PromptRow) -> dict[str, Any]:
        """The table row of a prompt whose cells are all done."""
        cells = [self.cells[(row.prompt_id, m)] for m in self.models]
        return {
            "prompt_id": row.prompt_id, "task": row.task, "prompt": row.prompt,
            "quality": {c.model: c.quality for c in cells},
            "cost_usd": {c.model: c.cost_usd for c in cells},
            "errors": {c.model: c.error for c in cells if c.error},
            "responses": {c.model: c.response for c in cells},
            **({"grader": self.grader} if self.grader else {}),
            **({"reference": row.reference} if row.reference is not None else {}),
            **({"test": row.test} if row.test is not None else {}),
            **dict(row.extras),
        }

    def _append(self, path: Path, record: Mapping[str, Any]) -> None:
        try:
            handle = self._handles.get(path)
            if handle is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
                    self._dirty = True  # torn last line: the final rewrite drops it
                handle = self._handles[path] = path.open("a", encoding="utf-8")
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
        except OSError as exc:
            raise CollectError(f"cannot write {path}: {exc.strerror or exc}; cells finished "
                               "so far are kept, re-run to resume") from None

    def finish(self, prompts: Sequence[PromptRow]) -> bool:
        """Close files, rewrite the table if needed (prompt-file order), and drop the journal once
        every prompt has a complete row. Return whether every prompt has one."""
        for handle in self._handles.values():
            with contextlib.suppress(OSError):  # a failed write already raised CollectError
                handle.close()
        self._handles.clear()
        complete = True
        for row in prompts:
            if all((row.prompt_id, m) in self.cells for m in self.models):
                if row.prompt_id not in self.rows:  # completed by journal cells of an earlier run
                    self.rows[row.prompt_id] = self.record(row)
                    self._dirty = True
            else:
                complete = False
        if self._dirty:
            order = {row.prompt_id: i for i, row in enumerate(prompts)}
            records = sorted(self.rows.values(),
                             key=lambda r: order.get(str(r["prompt_id"]), len(order)))
            tmp = self.out.with_name(f".{self.out.name}.tmp")
            try:
                with tmp.open("w", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
                os.replace(tmp, self.out)
            except OSError as exc:
                raise CollectError(f"cannot write {self.out}: {exc.strerror or exc}; the "
                                   f"finished cells are kept in {self.journal}") from None
            self._dirty = False
        if complete and self.journal.exists():
            self.journal.unlink(missing_ok=True)
        return complete

    def ragged(self) -> list[str]:
        """Prompt ids of rows lacking a model (rows of prompts no longer in the prompts file)."""
        return [pid for pid, r in self.rows.items()
                if not set(r.get("quality") or {}) >= set(self.models)]


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------


def check_inputs(
    switch: Switch, rows: Sequence[PromptRow], models: Sequence[str], grader: Grader
) -> None:
    """Resolve every model (and the judge) and check every prompt, before any call."""
    if not models:
        raise CollectError("--models needs at least one model name")
    duplicates = sorted({m for m in models if list(models).count(m) > 1})
    if duplicates:
        raise CollectError(f"--models lists {', '.join(duplicates)} more than once")
    for name in (*models, *grader_models(grader)):
        try:
            switch.model(name)
        except LLMSwitchError as exc:
            raise CollectError(f"model {name!r}: {exc}") from None
    for row in rows:
        try:
            grader.check(row)
        except GraderInputError as exc:
            raise CollectError(f"prompts {exc}") from None


def check_out(out: str | Path, prompts: str | Path | None = None) -> None:
    """``--out`` must be a ``.jsonl`` file other than the prompts file."""
    if Path(out).suffix.lower() != ".jsonl":
        raise CollectError(f"--out {str(out)!r} must end in .jsonl (collect writes JSON lines, "
                           "which router train/eval read)")
    if prompts is not None and Path(out).resolve() == Path(prompts).resolve():
        raise CollectError("--out is the --prompts file; writing the table would overwrite it")


async def collect_outcomes(
    switch: Switch,
    prompts: Sequence[PromptRow] | str | Path,
    models: Sequence[str],
    grader: Grader,
    out_path: str | Path,
    *,
    concurrency: int = 4,
    settings: Mapping[str, Any] | None = None,
    system: str | None = None,
    retry_errors: bool = False,
    progress: Progress | None = None,
    summary: CollectSummary | None = None,
) -> CollectSummary:
    """Run every missing (prompt, model) cell through ``switch``, grade it, and write the table.

    ``prompts`` is a JSONL path or parsed rows; ``models`` are names the switch resolves (models,
    aliases or routes); ``settings`` are request settings (``max_tokens``, ``temperature``…).
    Input problems raise `CollectError` before the first call. ``summary`` (filled in place) stays
    readable if the run is cancelled (Ctrl-C): every finished cell is already on disk.
    """
    if concurrency < 1:
        raise CollectError("--concurrency must be at least 1")
    check_out(out_path, prompts if isinstance(prompts, (str, Path)) else None)
    rows = read_prompts(prompts) if isinstance(prompts, (str, Path)) else list(prompts)
    check_inputs(switch, rows, models, grader)
    try:
        prepare_output(out_path, "--out")
    except OutputError as exc:
        raise CollectError(str(exc)) from None
    store = TableStore(out_path, models, grader.name)
    summary = summary if summary is not None else CollectSummary(str(out_path))
    summary.prompts, summary.models = len(rows), list(models)
    summary.per_model = {m: ModelStats() for m in models}
    plan = [(row, m) for row in rows for m in models if not store.done(row.prompt_id, m,
                                                                        retry_errors)]
    summary.planned, summary.skipped = len(plan), len(rows) * len(models) - len(plan)
    if progress is not None:
        progress.start(len(plan), summary.skipped)
    queue: asyncio.Queue[tuple[PromptRow, str]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    run = _Runner(switch, grader, dict(settings or {}), system)

    async def worker() -> None:
        while not queue.empty():
            row, model = queue.get_nowait()
            cell, grader_cost = await run.cell(row, model)
            store.add(row, cell)
            _count(summary, cell, grader_cost)
            if progress is not None:
                progress.advance(cell)

    tasks = [asyncio.ensure_future(worker())
             for _ in range(min(concurrency, max(1, len(plan))))]
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        summary.interrupted = True
        raise
    finally:
        for task in tasks:  # a failed write stops the other workers too
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        summary.complete = store.finish(rows)
        summary.rows = len(store.rows)
        _notes(summary, store)
    return summary


@dataclass
class _Runner:
    switch: Switch
    grader: Grader
    settings: dict[str, Any]
    system: str | None

    async def cell(self, row: PromptRow, model: str) -> tuple[Cell, float]:
        """Call ``model`` on ``row`` and grade the answer: the cell and the grading cost."""
        started = time.perf_counter()
        try:
            completion = await self.switch.complete(
                model, row.prompt, system=self.system,
                metadata={"llmswitch.collect": row.prompt_id}, **self.settings)
        except (AuthenticationError, ConfigError) as exc:  # every call would fail alike
            raise CollectError(f"model {model!r}: {exc}; collection stopped, finished "
                               "cells are kept: fix it and re-run to resume") from None
        except Exception as exc:  # any other failure is a recorded cell, never the end
            ours = isinstance(exc, LLMSwitchError)
            billed = exc.cost_usd if isinstance(exc, LLMSwitchError) else None
            message = str(exc) if ours else f"{type(exc).__name__}: {exc}"
            ms = (time.perf_counter() - started) * 1000
            return Cell(row.prompt_id, model, 0.0, billed or 0.0, "", message, True, ms), 0.0
        ms = (time.perf_counter() - started) * 1000
        cost = completion.cost_usd
        text = completion.text or ""
        try:
            grade = await self.grader.grade(row, text)
        except Exception as exc:  # a grader bug must not lose the (billed) answer
            return Cell(row.prompt_id, model, 0.0, cost or 0.0, text,
                        f"grader {self.grader.name} crashed: {type(exc).__name__}: {exc}",
                        False, ms), 0.0
        quality = min(1.0, max(0.0, grade.quality))
        return Cell(row.prompt_id, model, quality, cost or 0.0, text, grade.error, False, ms,
                    unpriced=cost is None), grade.cost_usd


def _count(summary: CollectSummary, cell: Cell, grader_cost: float) -> None:
    stats = summary.per_model[cell.model]
    stats.calls += 1
    stats.quality_sum += cell.quality
    stats.cost_usd += cell.cost_usd
    summary.done += 1
    summary.cost_usd += cell.cost_usd
    summary.grader_cost_usd += grader_cost
    if cell.failed_call:
        stats.failed += 1
        summary.failed += 1
    elif cell.error:
        stats.grade_errors += 1
        summary.grade_errors += 1
    if cell.unpriced:
        stats.unpriced += 1


def _notes(summary: CollectSummary, store: TableStore) -> None:
    unpriced = [m for m, s in summary.per_model.items() if s.unpriced]
    if unpriced:
        summary.notes.append(
            f"no known price for {', '.join(unpriced)}: cost recorded as 0; give the model a "
            "price in llmswitch.yaml (models: <name>: input_price/output_price) and re-run "
            "with a new --out")
    ragged = store.ragged()
    if ragged:
        summary.notes.append(
            f"{len(ragged)} row(s) of {store.out} (e.g. {ragged[0]!r}) are not in the prompts "
            "file and lack some models: add them back to --prompts to fill them, or the table "
            "will not load")
    if not summary.complete:
        summary.notes.append(
            f"unfinished: re-run the same command to resume (finished cells are kept in "
            f"{store.journal})")


# ----------------------------------------------------------------------------------------------
# the command (``llmswitch router collect``)
# ----------------------------------------------------------------------------------------------


def open_switch(config_path: str | None) -> Switch:
    """The `Switch` the command calls through (tests replace this to inject fake models)."""
    try:
        return Switch(config_path)
    except LLMSwitchError as exc:
        raise CollectError(f"config: {exc}") from None


class _Bar:
    """A rich progress bar on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        self.bar = RichProgress(
            TextColumn("collect"), BarColumn(), MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}  ${task.fields[cost]:.4f}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
            disable=not console.is_terminal)
        self.task = self.bar.add_task("collect", total=None, failed=0, cost=0.0, start=False)
        self.failed, self.cost = 0, 0.0

    def start(self, total: int, skipped: int) -> None:
        self.bar.update(self.task, total=total)
        self.bar.start_task(self.task)
        self.bar.start()

    def advance(self, cell: Cell) -> None:
        self.failed += bool(cell.error)
        self.cost += cell.cost_usd
        self.bar.update(self.task, advance=1, failed=self.failed, cost=self.cost)

    def stop(self) -> None:
        self.bar.stop()


def run_collect(
    prompts: str,
    models: list[str],
    grader: str,
    out: str,
    config_path: str | None,
    concurrency: int,
    *,
    command: str | None = None,
    judge: str | None = None,
    timeout: float = 30.0,
    grader_env: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
    system: str | None = None,
    retry_errors: bool = False,
    quiet: bool = False,
) -> CollectSummary:
    """The CLI driver: build the switch and grader, collect with a progress bar, and return the
    summary (``interrupted`` set on Ctrl-C, with every finished cell kept)."""
    from llmswitch.evals.graders import make_grader

    check_out(out, prompts)
    rows = read_prompts(prompts)  # bad input fails before the config is even loaded
    switch = open_switch(config_path)
    try:
        grade = make_grader(grader, command=command, judge=judge, switch=switch, timeout=timeout,
                            env=grader_env)
    except GraderInputError as exc:
        raise CollectError(str(exc)) from None
    summary = CollectSummary(out)
    bar = None if quiet else _Bar()

    async def main() -> None:
        try:
            await collect_outcomes(switch, rows, models, grade, out, concurrency=concurrency,
                                   settings=settings, system=system, retry_errors=retry_errors,
                                   progress=bar, summary=summary)
        finally:
            await switch.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if bar is not None:
            bar.stop()
    return summary


def render_summary(summary: CollectSummary) -> str:
    """The summary as a few lines of text."""
    state = ("interrupted" if summary.interrupted else "complete" if summary.complete
             else "incomplete")
    lines = [
        f"{summary.out}: {summary.rows} rows ({state}); {summary.done} calls made, "
        f"{summary.skipped} skipped (already done), {summary.failed} failed, "
        f"{summary.grade_errors} grading errors; models ${summary.cost_usd:.6f}"
        + (f", grader ${summary.grader_cost_usd:.6f}" if summary.grader_cost_usd else ""),
    ]
    width = max((len(m) for m in summary.per_model), default=5)
    for model, stats in summary.per_model.items():
        if stats.calls:
            lines.append(
                f"  {model:<{width}}  calls {stats.calls:>4}  failed {stats.failed:>3}  "
                f"mean quality {stats.quality_sum / stats.calls:.3f}  ${stats.cost_usd:.6f}")
    lines.extend(f"note: {n}" for n in summary.notes)
    return "\n".join(lines)
