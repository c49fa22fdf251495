"""`llmswitch plan run | resume | approve | report`: run workflow plans and prove what they saved.

Exit codes: 0 every stream done; 1 a stream failed (the others that could finish did, and
their outputs are kept) or a checkpoint still awaits approval; 2 a bad plan or bad
arguments (nothing was spent); 130 interrupted (resumable with `plan resume`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from llmswitch import Switch
from llmswitch.cli.output import config_option, error_json, json_option
from llmswitch.errors import LLMSwitchError

T = TypeVar("T")
EXIT_OK, EXIT_FAILED, EXIT_BAD, EXIT_INTERRUPTED = 0, 1, 2, 130


class PlanCommand(click.Command):
    """A command whose usage errors exit 2 (bad arguments: nothing was spent), as JSON with
    `--json`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse; a usage error is printed and exits 2."""
        wants_json = "--json" in args  # (the parser consumes `args`)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage(exc, wants_json)


class PlanGroup(click.Group):
    """The `plan` group: an unknown subcommand is a usage error (exit 2)."""

    command_class = PlanCommand

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        """Find the subcommand; an unknown one exits 2."""
        wants_json = "--json" in args
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            _usage(exc, wants_json)


def _usage(exc: click.UsageError, as_json: bool) -> NoReturn:
    if as_json:
        from llmswitch.errors import BadRequestError

        _bad(BadRequestError(exc.format_message()), True)
    exc.show()
    sys.exit(EXIT_BAD)


@click.group(cls=PlanGroup)
def plan() -> None:
    """Run plans: streams of work, each on its own model, in parallel where independent.

    Exit codes: 0 all streams done; 1 a stream failed (or a checkpoint awaits approval);
    2 a bad plan or bad arguments (nothing spent); 130 interrupted (resumable).
    """


def _bad(error: BaseException, as_json: bool) -> NoReturn:
    """A bad plan, input or argument: say so and exit 2 (nothing was spent)."""
    if as_json:
        click.echo(json.dumps(error_json(error), ensure_ascii=False))
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(EXIT_BAD)


def _guard(as_json: bool, action: Callable[[], T]) -> T:
    try:
        return action()
    except LLMSwitchError as exc:
        _bad(exc, as_json)


def _inputs(pairs: tuple[str, ...], as_json: bool) -> dict[str, str]:
    from llmswitch.plans import PlanError

    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            _bad(PlanError(f"--input {pair!r}: write NAME=VALUE (or NAME=@FILE)"), as_json)
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                _bad(PlanError(f"--input {name}: cannot read {value[1:]}: {exc}"), as_json)
            except UnicodeDecodeError:  # a binary file is not a prompt
                _bad(PlanError(f"--input {name}: {value[1:]} is not UTF-8 text"), as_json)
        out[name] = value
    return out


def _switch(config_path: str | None, plan_config: Path | None, as_json: bool) -> Switch:
    path = config_path or (str(plan_config) if plan_config else None)
    return _guard(as_json, lambda: Switch(path))


def _toolbox(ref: str | None, as_json: bool) -> Any:
    if ref is None:
        return None
    from llmswitch.plans.tools import load_toolbox

    return _guard(as_json, lambda: load_toolbox(ref))


def _execute(switch: Switch, work: Coroutine[Any, Any, T]) -> T:
    async def main() -> T:
        async with switch:
            return await work

    return asyncio.run(main())


run_options = [
    click.option("--concurrency", type=click.IntRange(min=1), default=None,
                 help="Streams running at once (default: the plan's, else 8)."),
    click.option("--yes", "approve", is_flag=True,
                 help="Approve every checkpoint (checkpoint: approve) without asking."),
    click.option("--tools", "tools_ref", default=None, metavar="MODULE:NAME",
                 help="A Toolbox for agent streams (a module or .py file, then its name)."),
    click.option("--approval-timeout", type=click.FloatRange(min=0), default=3600.0,
                 show_default=True, help="Seconds to wait for `plan approve` before stopping."),
    config_option,
    json_option,
]


def _with(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def wrap(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return wrap


@plan.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "input_pairs", multiple=True, metavar="NAME=VALUE",
              help="A plan input (repeatable); NAME=@FILE reads the value from a file.")
@click.option("--out", "out", default=None, metavar="DIR",
              help="The run folder itself (default: runs/<run id>); new or empty.")
@click.option("--dry-run", is_flag=True,
              help="Estimate tokens and cost per stream and for one model; call nothing.")
@click.option("--baseline", default=None, metavar="MODEL",
              help="With --dry-run: the single model to compare with.")
@_with(run_options)
def run_cmd(file: str, input_pairs: tuple[str, ...], out: str | None, dry_run: bool,
            baseline: str | None, concurrency: int | None, approve: bool,
            tools_ref: str | None, approval_timeout: float, config_path: str | None,
            as_json: bool) -> None:
    """Run the plan FILE: every stream on its model, independent streams in parallel.

    Prints a live table in a terminal; with --json, the run manifest (also RUN_DIR/run.json).
    """
    from llmswitch.plans import Plan, prepare, start_run

    inputs = _inputs(input_pairs, as_json)
    the_plan = _guard(as_json, lambda: Plan.load(file))
    switch = _switch(config_path, the_plan.config, as_json)
    tools = _toolbox(tools_ref, as_json)
    prepared = _guard(as_json, lambda: prepare(switch, the_plan, inputs, tools=tools))
    if dry_run:
        from llmswitch.cli.plan_show import print_dry_run

        _guard(as_json, lambda: print_dry_run(switch, prepared, baseline, as_json))
        return
    runner = _guard(as_json, lambda: start_run(
        switch, the_plan, prepared=prepared, run_dir=out, concurrency=concurrency, tools=tools,
        approve=approve, approval_timeout=approval_timeout))
    _drive(switch, runner, as_json)


@plan.command("resume")
@click.argument("run_dir", type=click.Path(file_okay=False))
@_with(run_options)
def resume_cmd(run_dir: str, concurrency: int | None, approve: bool, tools_ref: str | None,
               approval_timeout: float, config_path: str | None, as_json: bool) -> None:
    """Finish a stopped or crashed run in RUN_DIR. Streams that finished are kept (never run
    or paid for again); the others run now."""
    from llmswitch.plans.rundir import RunFolder
    from llmswitch.plans.runner import open_run

    folder = _guard(as_json, lambda: RunFolder.open(Path(run_dir)))
    saved = folder.manifest.get("config")
    plan_config = Path(saved) if saved and Path(saved).is_file() else None
    switch = _switch(config_path, plan_config, as_json)
    tools = _toolbox(tools_ref, as_json)
    runner = _guard(as_json, lambda: open_run(
        switch, run_dir, concurrency=concurrency, tools=tools, approve=approve,
        approval_timeout=approval_timeout))
    _drive(switch, runner, as_json)


def _drive(switch: Switch, runner: Any, as_json: bool) -> None:
    from llmswitch.cli.plan_show import print_summary
    from llmswitch.plans.live import watching

    console = Console(stderr=True)
    live = console.is_terminal and not as_json and sys.stdout.isatty()

    async def work() -> Any:
        if as_json:
            return await runner.run()
        async with watching(runner, console, live):
            return await runner.run()

    try:
        result = _execute(switch, work())
    except KeyboardInterrupt:
        if as_json:
            click.echo(json.dumps(runner.folder.manifest, ensure_ascii=False, default=str))
        click.echo(f"interrupted: finished streams are kept; continue with "
                   f"`llmswitch plan resume {runner.folder.path}`", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # do not wait for worker threads (a local model mid-answer)
    if as_json:
        click.echo(json.dumps(result.manifest, ensure_ascii=False, default=str))
    else:
        print_summary(result, live)
    sys.exit(EXIT_OK if result.status == "done" else EXIT_FAILED)


@plan.command("approve")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("stream")
@click.option("--reject", is_flag=True, help="Reject the output instead (the stream fails; "
              "`plan resume` runs it again).")
@click.option("--note", default="", help="A note kept with the decision.")
def approve_cmd(run_dir: str, stream: str, reject: bool, note: str) -> None:
    """Approve (or --reject) STREAM's output in RUN_DIR, so the streams after it can run."""
    from llmswitch.plans import PlanError
    from llmswitch.plans.rundir import RunFolder

    folder = _guard(False, lambda: RunFolder.open(Path(run_dir)))
    entries = folder.manifest["streams"]
    if stream not in entries:
        _bad(PlanError(f"{folder.path}: no stream {stream!r} (streams: {', '.join(entries)})"),
             False)
    entry = entries[stream]
    if entry.get("checkpoint") != "approve":
        _bad(PlanError(f"stream {stream!r} has no checkpoint: nothing to approve"), False)
    if entry["status"] == "done":
        click.echo(f"{stream} is already approved and done")
        return
    if entry["status"] != "awaiting_approval":
        _bad(PlanError(f"stream {stream!r} has nothing to approve yet (it is "
                       f"{entry['status']})", hint="approve it once its output is written "
                       "and the run waits for it (status awaiting_approval)"), False)
    folder.record_approval(stream, not reject, note)
    verb = "rejected" if reject else "approved"
    if folder.holder() is not None:
        click.echo(f"{verb} {stream}; the running plan continues")
    else:
        click.echo(f"{verb} {stream}; continue the run with "
                   f"`llmswitch plan resume {folder.path}`")


@plan.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--baseline", default=None, metavar="MODEL",
              help="Compare with this one model (default: the most expensive model used).")
@click.option("--png", "png", default=None, metavar="FILE",
              help="Write a bar chart (needs the 'plot' extra).")
@click.option("--execute-baseline", is_flag=True,
              help="Really run the plan on the baseline model (RUN_DIR/baseline) and report "
              "both measured costs.")
@click.option("--tools", "tools_ref", default=None, metavar="MODULE:NAME",
              help="With --execute-baseline: the Toolbox for agent streams.")
@config_option
@json_option
def report_cmd(run_dir: str, baseline: str | None, png: str | None, execute_baseline: bool,
               tools_ref: str | None, config_path: str | None, as_json: bool) -> None:
    """Cost of the run in RUN_DIR beside the same plan on one model, per stream and in total."""
    from llmswitch.cli.plan_show import print_report
    from llmswitch.plans.report import build_report, save_chart
    from llmswitch.plans.report import execute_baseline as run_baseline
    from llmswitch.plans.rundir import RunFolder

    folder = _guard(as_json, lambda: RunFolder.open(Path(run_dir)))
    saved = folder.manifest.get("config")
    switch = _switch(config_path, Path(saved) if saved and Path(saved).is_file() else None,
                     as_json)
    report = _guard(as_json, lambda: build_report(switch, run_dir, baseline))
    if png:
        _guard(as_json, _check_plot)
    if execute_baseline:
        tools = _toolbox(tools_ref, as_json)
        _guard(as_json, lambda: _execute(switch, run_baseline(switch, report, tools=tools)))
    if png:
        _guard(as_json, lambda: save_chart(report, png))
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print_report(report, png)


def _check_plot() -> None:
    import importlib.util

    from llmswitch.errors import ConfigError

    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("--png needs matplotlib, which is in the 'plot' extra",
                          hint="pip install 'llmswitch[plot]'")

