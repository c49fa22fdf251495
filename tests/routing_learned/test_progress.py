"""`router train` and `router eval` show progress: rich bars on a terminal, status lines when
stderr is not one, nothing with --json/--quiet."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from llmswitch.cli.router import _Progress
from llmswitch.cli.router import router as router_cli

TABLE = Path(__file__).resolve().parents[1] / "data" / "routing" / "outcomes_sample.parquet"


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100, color_system=None), out


def test_a_terminal_gets_one_bar_per_stage_each_finished() -> None:
    console, out = _terminal()
    with _Progress(quiet=False, console=console) as progress:
        progress("training knn on 50 prompts")
        for fold in range(6):
            progress("cross-validating knn (5 folds)", min(fold, 5), 5)
    text = out.getvalue()
    assert "cross-validating knn (5 folds)" in text
    assert "5/5" in text
    assert "training knn on 50 prompts" in text
    assert "1/1" in text  # the uncounted stage is closed when the next one starts


def test_quiet_prints_nothing_even_on_a_terminal() -> None:
    console, out = _terminal()
    with _Progress(quiet=True, console=console) as progress:
        progress("cross-validating knn (5 folds)", 0, 5)
    assert out.getvalue() == ""


def test_not_a_terminal_gets_status_lines() -> None:
    out = io.StringIO()
    with _Progress(quiet=False, console=Console(file=out, force_terminal=False)) as progress:
        for fold in range(6):
            progress("cross-validating knn (5 folds)", fold, 5)
    lines = out.getvalue().splitlines()
    assert lines == [f"cross-validating knn (5 folds): {i}/5" for i in range(1, 6)]


def test_cli_train_and_eval_report_cross_validation_progress(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.npz"
    res = runner.invoke(router_cli, ["train", "--data", str(TABLE), "--kind", "knn", "--out",
                                     str(out), "--folds", "3"])
    assert res.exit_code == 0, res.stderr
    assert "cross-validating knn (3 folds): 3/3" in res.stderr
    res = runner.invoke(router_cli, ["eval", "--data", str(TABLE), "--kind", "ridge", "--folds",
                                     "3"])
    assert res.exit_code == 0, res.stderr
    assert "cross-validating ridge (3 folds): 1/3" in res.stderr
    res = runner.invoke(router_cli, ["eval", "--data", str(TABLE), "--kind", "ridge", "--folds",
                                     "3", "--json"])
    assert res.exit_code == 0 and res.stderr == ""
