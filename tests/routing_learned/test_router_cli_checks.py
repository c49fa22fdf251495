"""`llmswitch router train|eval`: option ranges, early output checks, CV minimum, help, errors.

Regression tests for the QA findings on the router CLI (each case failed before its fix).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import llmswitch.training.train as train_mod
from llmswitch.cli.main import cli
from llmswitch.cli.router import router as router_cli


def table(tmp_path: Path, rows: int, name: str = "table.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(
        json.dumps({"prompt_id": str(i), "task": f"t{i % 2}", "prompt": f"question {i}",
                    "quality": {"a": i % 2, "b": 1}, "cost_usd": {"a": 0.001, "b": 0.01}}) + "\n"
        for i in range(rows)))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="llmswitch")


def one_error(result: Result, *needles: str) -> str:
    """Exit 1 and exactly one lowercase `error: ...` line on stderr holding every needle."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Error:" not in result.stderr and "Errno" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def usage(result: Result, option: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"Invalid value for '{option}'" in result.stderr, result.stderr


@pytest.mark.parametrize(("option", "value"), [
    ("--lambda", "-5"), ("--lambda", "nan"), ("--lambda", "inf"), ("--lambda", "-inf"),
    ("--target-cost", "0"), ("--target-cost", "-1"), ("--target-cost", "nan"),
    ("--min-quality", "1.5"), ("--min-quality", "-0.1"), ("--min-quality", "nan"),
])
def test_lambda_and_calibration_targets_are_range_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: str
) -> None:
    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("trained despite an invalid option")

    monkeypatch.setattr(train_mod, "train_from_table", never)
    usage(run("router", "train", "--data", str(table(tmp_path, 24)), "--out",
              str(tmp_path / "r.npz"), "--kind", "knn", "--folds", "2", option, value), option)
    assert not (tmp_path / "r.npz").exists()


@pytest.mark.parametrize(("option", "value", "stored"), [
    ("--lambda", "0", 0.0), ("--lambda", "150", 150.0),
])
def test_valid_lambda_is_stored(tmp_path: Path, option: str, value: str, stored: float) -> None:
    out = tmp_path / "r.npz"
    result = run("router", "train", "--data", str(table(tmp_path, 24)), "--out", str(out),
                 "--kind", "knn", "--folds", "2", "--quiet", option, value)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["lambda"] == stored


def test_min_quality_bounds_are_accepted(tmp_path: Path) -> None:
    result = run("router", "train", "--data", str(table(tmp_path, 24)), "--out",
                 str(tmp_path / "r.npz"), "--kind", "knn", "--folds", "2", "--quiet",
                 "--min-quality", "1")
    assert result.exit_code == 0, result.stderr


def test_train_creates_nested_out_folders(tmp_path: Path) -> None:
    out = tmp_path / "routers" / "v1" / "mine.npz"
    result = run("router", "train", "--data", str(table(tmp_path, 24)), "--out", str(out),
                 "--kind", "knn", "--folds", "2", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert out.is_file()


def test_unwritable_out_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(train_mod, "train_from_table", lambda *a, **k: calls.append(a))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    data = str(table(tmp_path, 24))
    one_error(run("router", "train", "--data", data, "--out", str(blocker / "sub" / "r.npz")),
              "--out", "cannot create the folder", str(blocker))
    one_error(run("router", "train", "--data", data, "--out", str(blocker / "r.npz")), "--out")
    assert calls == []


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs procfs")
def test_out_in_a_read_only_system_folder(tmp_path: Path) -> None:
    # /proc refuses new files even for root, where permission bits would say yes
    one_error(run("router", "train", "--data", str(table(tmp_path, 24)), "--out",
                  "/proc/r.npz"), "--out", "cannot write in /proc")


def test_eval_plot_folder_is_created_and_checked_first(tmp_path: Path) -> None:
    data = str(table(tmp_path, 24))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(run("router", "eval", "--data", data, "--kind", "knn", "--folds", "2",
                  "--plot", str(blocker / "p.png")), "--plot")
    plot = tmp_path / "plots" / "curve.png"
    result = run("router", "eval", "--data", data, "--kind", "knn", "--folds", "2", "--json",
                 "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    assert plot.stat().st_size > 0


@pytest.mark.parametrize(("rows", "folds", "ok"), [(3, 5, False), (9, 5, False), (10, 5, True),
                                                   (3, 2, False), (4, 2, True)])
def test_cross_validation_needs_two_prompts_per_fold(
    tmp_path: Path, rows: int, folds: int, ok: bool
) -> None:
    result = run("router", "eval", "--data", str(table(tmp_path, rows)), "--kind", "knn",
                 "--folds", str(folds), "--json")
    if ok:
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["cross_validation"]["folds"] == folds
    else:
        one_error(result, f"table has {rows} prompts", f"need at least {2 * folds}",
                  f"{folds} folds", "--folds")


def test_cross_validation_minimum_counts_the_task_rows(tmp_path: Path) -> None:
    one_error(run("router", "eval", "--data", str(table(tmp_path, 12)), "--kind", "knn",
                  "--task", "t0"), "table has 6 prompts", "need at least 10")


def test_router_that_is_a_directory(tmp_path: Path) -> None:
    line = one_error(run("router", "eval", "--data", str(table(tmp_path, 4)), "--router",
                         str(tmp_path)), "--router", "is a directory")
    assert "does not exist" not in line


@pytest.mark.parametrize("args", [
    ("router", "train", "--data", "none.jsonl", "--out", "r.npz", "--lambda", "1",
     "--min-quality", "0.5"),
    ("router", "eval", "--data", "none.jsonl"),
    ("router", "eval", "--data", "none.jsonl", "--kind", "knn"),
])
def test_errors_print_lowercase_like_every_command(args: tuple[str, ...]) -> None:
    one_error(run(*args))


def test_router_group_alone_keeps_the_error_format() -> None:
    result = CliRunner().invoke(router_cli, ["eval", "--data", "none.jsonl"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


def test_help_texts() -> None:
    group = run("router", "--help").stdout
    assert "collect" in group.split("Commands:")[0]  # the description, not only the list
    for command in ("train", "eval"):
        text = " ".join(run("router", command, "--help").stdout.split())
        assert ".jsonl, .jsonl.gz or .parquet file, or a folder" in text
    evaluate = " ".join(run("router", "eval", "--help").stdout.split())
    assert "--folds INTEGER RANGE Cross-validation folds" in evaluate
    collect = " ".join(run("router", "collect", "--help").stdout.split())
    chat = " ".join(run("chat", "--help").stdout.split())
    config_help = chat[chat.index("--config"):].split(" --")[0]
    assert config_help in collect


def test_short_help_flag_after_direct_group_use(monkeypatch: pytest.MonkeyPatch) -> None:
    # click (>= 8.1.8) caches a command's help option on first use: invoking the group directly
    # (as tests and library users do) must not leave `llmswitch router ... -h` unknown
    commands = [router_cli, *router_cli.commands.values()]
    for command in commands:
        monkeypatch.setattr(command, "_help_option", None)  # as in a fresh process
    for command in commands[1:]:
        assert CliRunner().invoke(router_cli, [command.name or "", "--help"]).exit_code == 0
    assert CliRunner().invoke(router_cli, ["--help"]).exit_code == 0
    for args in (("router",), ("router", "train"), ("router", "eval"), ("router", "collect")):
        result = run(*args, "-h")
        assert result.exit_code == 0 and result.stdout.startswith("Usage: llmswitch"), args


def test_docs_learned_route_example_runs(tmp_path: Path) -> None:
    """docs/routing.md: collect is documented as written, and its `strategy: learned` example
    (a `targets:` mapping of table model -> model) loads and routes."""
    import re

    import yaml

    from llmswitch.switch import Switch
    from llmswitch.testing import FakeModel

    doc = (Path(__file__).parents[2] / "docs" / "routing.md").read_text()
    assert "not written" not in doc and "llmswitch router collect" in doc
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "strategy: learned" in b)
    config = yaml.safe_load(re.sub(r"^  ", "", block, flags=re.M))
    route = config["routes"]["smart"]
    assert isinstance(route["targets"], dict)
    models = list(route["targets"])
    rows = [{"prompt_id": str(i), "task": "t", "prompt": f"question {i}",
             "quality": {models[0]: 1, models[1]: i % 2},
             "cost_usd": {models[0]: 0.01, models[1]: 0.001}} for i in range(12)]
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / route["router"]
    assert run("router", "train", "--data", str(data), "--kind", "knn", "--folds", "2",
               "--out", str(out), "--quiet").exit_code == 0
    route["router"] = str(out)
    fakes = {name: FakeModel(name=name, script=[name]) for name in route["targets"].values()}
    switch = Switch(config, models=dict(fakes), observers=[])
    answer = switch.complete_sync("smart", "question 3")
    assert answer.text in route["targets"].values()


def test_plot_name_and_empty_task_are_usage_errors_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmswitch.training.evaluate as report_mod

    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("evaluated despite an invalid option")

    monkeypatch.setattr(report_mod, "evaluate_kind", never)
    data = str(table(tmp_path, 24))
    usage(run("router", "eval", "--data", data, "--kind", "knn", "--plot",
              str(tmp_path / "curve.txt")), "--plot")
    usage(run("router", "eval", "--data", data, "--kind", "knn", "--task", " "), "--task")


def test_target_cost_calibrates_a_lambda_that_meets_it(tmp_path: Path) -> None:
    from llmswitch.evals.table import load_table
    from llmswitch.routing.learned import choose
    from llmswitch.training.crossval import oof_predictions

    data = table(tmp_path, 40)
    out = tmp_path / "r.npz"
    result = run("router", "train", "--data", str(data), "--out", str(out), "--kind", "ridge",
                 "--folds", "2", "--quiet", "--target-cost", "0.006")
    assert result.exit_code == 0, result.stderr
    lam = json.loads(result.stdout)["lambda"]
    q, c = oof_predictions(load_table(data), "ridge", {"alpha": 3.0, "task_weight": 1.0}, 2)
    chosen = choose(q, c, lam)
    assert c[range(len(c)), chosen].mean() <= 0.006
    # the smallest such λ, not "always the cheapest" (which would be λ ≈ 1e9 / median cost)
    assert lam < 1e3 and c[range(len(c)), choose(q, c, lam * 0.9)].mean() > 0.006
