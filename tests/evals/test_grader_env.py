"""The command grader runs model-written code: it must not see the provider keys (or any other
variable) of the process running `router collect`, unless the user passes them explicitly."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import llmswitch.evals.collect as collect_mod
from llmswitch.cli.router import router as router_cli
from llmswitch.evals.graders import CommandGrader, GraderInputError, PromptRow, make_grader
from llmswitch.switch import Switch
from llmswitch.testing import FakeModel

KEY = "sk-proj-parent-process-key-0123456789abcdef"


def dump_command(path: Path) -> str:
    """A grader command that records what model-written code would see, and passes."""
    out = shlex.quote(str(path))
    return f"{{ env; echo CWD=$(pwd); }} > {out}"


def seen(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, _, v in pairs}


@pytest.fixture
def secret_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-parent")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-parent-secret")
    monkeypatch.setenv("MY_DB_PASSWORD", "hunter2-parent")
    monkeypatch.setenv("MY_TOOL_TOKEN", "tool-token-value")


async def test_grader_command_does_not_see_the_parents_keys(tmp_path: Path,
                                                            secret_parent: None) -> None:
    dump = tmp_path / "env.txt"
    grade = await CommandGrader(dump_command(dump)).grade(PromptRow("p1", "q", "t"), "answer")
    assert grade.quality == 1.0, grade.error
    env = seen(dump)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY",
                 "MY_DB_PASSWORD", "MY_TOOL_TOKEN"):
        assert name not in env, f"{name} leaked to the grader"
    assert KEY not in dump.read_text()
    assert env["PATH"] == os.environ["PATH"] and env["LANG"]
    home = env["HOME"]
    assert home != os.path.expanduser("~") and "llmswitch-grade-" in home
    assert env["CWD"].startswith(str(Path(home).parent)) and "llmswitch-grade-" in env["CWD"]
    assert Path(env["LLMSWITCH_ANSWER_FILE"]).name == "answer.txt"
    assert env["LLMSWITCH_PROMPT_ID"] == "p1" and env["LLMSWITCH_TASK"] == "t"
    assert not Path(home).exists()  # the temporary HOME is gone after grading


async def test_variables_passed_explicitly_reach_the_grader(tmp_path: Path,
                                                            secret_parent: None) -> None:
    dump = tmp_path / "env.txt"
    grader = make_grader("command", command=dump_command(dump),
                         env=["MY_TOOL_TOKEN", "MODE=strict", "EMPTY="])
    assert "tool-token-value" not in repr(grader)
    await grader.grade(PromptRow("p1", "q"), "answer")
    env = seen(dump)
    assert (env["MY_TOOL_TOKEN"], env["MODE"], env["EMPTY"]) == ("tool-token-value", "strict", "")
    assert "OPENAI_API_KEY" not in env


def test_bad_grader_env_items_are_input_errors(secret_parent: None) -> None:
    with pytest.raises(GraderInputError, match="NOT_SET_ANYWHERE is not set"):
        make_grader("command", command="true", env=["NOT_SET_ANYWHERE"])
    with pytest.raises(GraderInputError, match="give NAME or NAME=VALUE"):
        make_grader("command", command="true", env=["=x"])
    with pytest.raises(GraderInputError, match="for the command grader"):
        make_grader("exact", env=["MODE=strict"])


def test_cli_collect_passes_only_grader_env(tmp_path: Path, secret_parent: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    models = {"m": FakeModel(name="m", script=["an answer"])}
    monkeypatch.setattr(collect_mod, "open_switch",
                        lambda config_path: Switch({}, models=models, observers=[]))
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt_id": "q0", "prompt": "hi"}) + "\n")
    dump = tmp_path / "env.txt"
    res = CliRunner().invoke(router_cli, [
        "collect", "--prompts", str(prompts), "--models", "m", "--grader", "command",
        "--command", dump_command(dump), "--grader-env", "MY_TOOL_TOKEN",
        "--grader-env", "MODE=strict", "--out", str(tmp_path / "t.jsonl"), "--quiet"])
    assert res.exit_code == 0, res.output
    env = seen(dump)
    assert env["MY_TOOL_TOKEN"] == "tool-token-value" and env["MODE"] == "strict"
    assert "OPENAI_API_KEY" not in env and KEY not in dump.read_text()
