"""``llmswitch router``: train learned routers on outcome tables and evaluate them offline.

```
llmswitch router train --data TABLE [--kind auto|cascade|knn|ridge|logistic|mf|ensemble] --out FILE
llmswitch router eval  --data TABLE --router FILE [--json] [--plot FILE.png] [--task T]
llmswitch router eval  --data TABLE --kind KIND [--folds 5]      # cross-validated, no router file
llmswitch router collect --prompts FILE --models a,b,c --grader exact --out TABLE.jsonl
```
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from llmswitch.cli.output import config_option

KIND_CHOICES = ("auto", "knn", "ridge", "logistic", "mf", "ensemble", "cascade")
DATA_HELP = ("Outcome table: a .jsonl, .jsonl.gz or .parquet file, or a folder holding one "
             "outcomes_* table.")


class RouterError(click.ClickException):
    """A one-line `error: ...` on stderr and exit status 1, like every llmswitch command."""

    def show(self, file: Any = None) -> None:
        """Print the message the llmswitch way."""
        click.echo(f"error: {self.format_message()}", err=True)


def _fail(exc: Exception) -> click.ClickException:
    return RouterError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _finite(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    """Reject nan and infinities, which every FloatRange lets through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _writable_parent(path: str, option: str) -> None:
    """Create the folder of an output file now, before any slow work, or fail clearly."""
    from llmswitch.evals.outputs import OutputError, prepare_output

    try:
        prepare_output(path, option)
    except OutputError as exc:
        raise RouterError(str(exc)) from None


def _need_router_extra() -> None:
    missing = []
    for module in ("numpy", "scipy", "sklearn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise RouterError(
            f"learned routers need {', '.join(missing)}: pip install 'llmswitch[router]'"
        )


def _load(data: str, task: str | None, responses: str | None) -> Any:
    from llmswitch.evals.table import TableError, load_table

    try:
        table = load_table(data, responses=responses)
        return table.for_task(task) if task else table
    except TableError as exc:
        raise _fail(exc) from None


PLOT_FORMATS = (".png", ".svg", ".pdf")


def _check_task(task: str | None) -> None:
    if task is not None and not task.strip():
        raise click.BadParameter("must name a task, not be empty", param_hint="'--task'")


class _Progress:
    """Progress of `router train`/`eval` on stderr: rich bars on a terminal, one status line per
    step otherwise, nothing with ``quiet`` (--json). Use as a context manager."""

    def __init__(self, quiet: bool, console: Any = None) -> None:
        from rich.console import Console

        self.console = console if console is not None else Console(stderr=True)
        self.quiet = quiet
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}
        self.totals: dict[str, int | None] = {}
        if not quiet and self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console)

    def __enter__(self) -> _Progress:
        if self.bars is not None:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """Report ``done`` of ``total`` units of ``stage`` (no counts: a stage starts)."""
        if self.quiet:
            return
        if self.bars is None:
            if total is None:
                self.console.print(f"[dim]{stage}[/dim]")
            elif done is not None and done < total:
                self.console.print(f"[dim]{stage}: {done + 1}/{total}[/dim]")
            return
        for other, task in self.tasks.items():  # a new stage means the open ones are over
            if other != stage:
                end = self.totals[other] or 1
                self.bars.update(task, completed=end, total=end)
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(stage, total=total)
        self.totals[stage] = total
        self.bars.update(self.tasks[stage], completed=done or 0, total=total)


@click.group(name="router", context_settings={"help_option_names": ["-h", "--help"]})
def router() -> None:
    """Learned cost-quality routers: `collect` an outcome table from your own prompts, `train`
    a router on it, and `eval` routers offline (zero model calls)."""


@router.command("train")
@click.option("--data", required=True, help=DATA_HELP)
@click.option(
    "--kind",
    type=click.Choice(KIND_CHOICES),
    default="auto",
    show_default=True,
    help="Router kind; auto picks by cross-validation on the table.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Router file to write (.npz); its folder is created.",
)
@click.option("--task", default=None, help="Train on the rows of one task only.")
@click.option(
    "--responses",
    default=None,
    help="Recorded responses (default: responses_<split>.parquet beside the table).",
)
@click.option(
    "--folds",
    default=5,
    show_default=True,
    type=click.IntRange(2, 20),
    help="Cross-validation folds.",
)
@click.option(
    "--lambda",
    "lam",
    type=click.FloatRange(min=0),
    default=None,
    callback=_finite,
    help="Default λ (quality per USD, ≥ 0) stored in the file.",
)
@click.option(
    "--target-cost",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    callback=_finite,
    help="Calibrate λ to this mean cost per request (USD, > 0).",
)
@click.option(
    "--min-quality",
    type=click.FloatRange(0, 1),
    default=None,
    callback=_finite,
    help="Calibrate λ to this mean predicted quality (0-1).",
)
@click.option("--quiet", is_flag=True,
              help="No progress output; print the summary as one JSON line instead of text.")
def train(
    data: str,
    kind: str,
    out: str,
    task: str | None,
    responses: str | None,
    folds: int,
    lam: float | None,
    target_cost: float | None,
    min_quality: float | None,
    quiet: bool,
) -> None:
    """Train a router on an outcome table and save it."""
    _need_router_extra()
    from llmswitch.training.train import TrainError, train_from_table

    if sum(x is not None for x in (lam, target_cost, min_quality)) > 1:
        raise RouterError("give at most one of --lambda, --target-cost, --min-quality")
    _check_task(task)
    _writable_parent(out, "--out")
    table = _load(data, task, responses)
    try:
        with _Progress(quiet) as progress:
            summary = train_from_table(
                table,
                kind,
                out,
                folds=folds,
                lam=lam,
                target_cost=target_cost,
                min_quality=min_quality,
                progress=progress,
            )
    except (TrainError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(summary) if quiet else _train_text(summary, out))


def _train_text(summary: dict[str, Any], out: str) -> str:
    lines = [
        f"trained {summary['kind']} router on {summary['n_train']} prompts "
        f"({len(summary['models'])} models) → {out}",
        f"λ = {summary['lambda']:.6g} per USD",
    ]
    for row in summary.get("selection", []):
        share = row["cost_share_at_95"]
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        lines.append(
            f"  cv {row['kind']:<9} {params:<24} AIQ {row['aiq']:.4f}  cost share at 95%: "
            f"{'—' if share is None else f'{share:.1%}'}"
        )
    return "\n".join(lines)


@router.command("eval")
@click.option("--data", required=True, help=DATA_HELP)
@click.option("--router", "router_file", default=None, help="Router file from `router train`.")
@click.option(
    "--kind",
    type=click.Choice(KIND_CHOICES),
    default=None,
    help="Without --router: cross-validate this kind on the table instead.",
)
@click.option("--task", default=None, help="Evaluate on the rows of one task only.")
@click.option("--responses", default=None, help="Recorded responses for cascade routers.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2, 20),
              help="Cross-validation folds (with --kind).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (see docs/routing.md)."
)
@click.option(
    "--plot",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the cost-quality plot (.png; .svg and .pdf work too).",
)
def eval_cmd(
    data: str,
    router_file: str | None,
    kind: str | None,
    task: str | None,
    responses: str | None,
    folds: int,
    as_json: bool,
    plot: str | None,
) -> None:
    """Replay a router over a table (zero model calls) and report cost and quality."""
    _need_router_extra()
    from llmswitch.training.evaluate import EvalError, evaluate_file, evaluate_kind

    if (router_file is None) == (kind is None):
        raise RouterError("give either --router FILE or --kind KIND (cross-validation)")
    _check_task(task)
    if router_file is not None and Path(router_file).is_dir():
        raise RouterError(f"--router: {router_file} is a directory, not a router file")
    if plot:
        if Path(plot).suffix.lower() not in PLOT_FORMATS:
            raise click.BadParameter(f"{plot!r} must end in {', '.join(PLOT_FORMATS)}",
                                     param_hint="'--plot'")
        if importlib.util.find_spec("matplotlib") is None:
            raise RouterError("--plot needs matplotlib: pip install 'llmswitch[plot]'")
        _writable_parent(plot, "--plot")
    table = _load(data, task, responses)
    try:
        if router_file is not None:
            report = evaluate_file(table, router_file)
        else:
            assert kind is not None
            with _Progress(as_json) as progress:
                report = evaluate_kind(table, kind, folds, progress=progress)
    except (EvalError, ValueError) as exc:
        raise _fail(exc) from None
    if plot:
        from llmswitch.evals.plots import PlotError, plot_report

        try:
            plot_report(report, Path(plot))
        except PlotError as exc:
            raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=1))
    else:
        from llmswitch.training.evaluate import render_text

        render_text(report, sys.stdout)


eval_cmd.name = "eval"


@router.command("collect")
@click.option(
    "--prompts",
    required=True,
    help="JSONL: {prompt, prompt_id?, task?, reference?, test?} per line.",
)
@click.option(
    "--models", required=True, help="Comma-separated models, aliases or routes to run."
)
@click.option(
    "--grader",
    default="exact",
    show_default=True,
    help="exact | contains | command (with --command) | judge (with --judge).",
)
@click.option("--command", "grade_command", default=None,
              help="Command grader: shell command, exit 0 = pass; answer on stdin.")
@click.option("--judge", default=None, help="Judge grader: the model that scores 0-1.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Seconds per grader command.")
@click.option("--grader-env", "grader_env", multiple=True, metavar="NAME[=VALUE]",
              help="Pass a variable to the command grader (repeatable); it otherwise gets only "
                   "PATH, LANG and a temporary HOME: no keys.")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False),
    help="Outcome table to write (.jsonl); its folder is created."
)
@config_option
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Answer limit.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None)
@click.option("--system", default=None, help="A system prompt for every call.")
@click.option("--retry-errors", is_flag=True, help="Re-run cells that failed in earlier runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def collect(
    prompts: str,
    models: str,
    grader: str,
    grade_command: str | None,
    judge: str | None,
    timeout: float,
    grader_env: tuple[str, ...],
    out: str,
    config_path: str | None,
    concurrency: int,
    max_tokens: int | None,
    temperature: float | None,
    system: str | None,
    retry_errors: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Build an outcome table by running candidate models on your prompts and grading the answers.

    Resumable: cells (prompt, model) already in --out are skipped. Every call goes through
    llmswitch, so it is priced and lands in the spend ledger. Failed calls are recorded with
    quality 0; the exit status is non-zero only for bad input (130 when interrupted).
    """
    from llmswitch.evals.collect import CollectError, render_summary, run_collect

    settings = {k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature))
                if v is not None}
    try:
        summary = run_collect(
            prompts,
            [m.strip() for m in models.split(",") if m.strip()],
            grader,
            out,
            config_path,
            concurrency,
            command=grade_command,
            judge=judge,
            timeout=timeout,
            grader_env=grader_env,
            settings=settings,
            system=system,
            retry_errors=retry_errors,
            quiet=quiet or as_json,
        )
    except CollectError as exc:
        raise _fail(exc) from None
    click.echo(json.dumps(summary.to_dict(), indent=1) if as_json else render_summary(summary))
    if summary.interrupted:
        sys.exit(130)
