"""Odd but legal plans, found by trying the contract as a demanding user would: unicode
names, bad arguments through the Python API, prompts no model can hold, resumed totals and
the report's exact saving share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmswitch import Completion, OverloadedError, Switch, Usage
from llmswitch.plans import Plan, PlanError, prepare, resume_plan, run_plan
from llmswitch.plans.report import build_report, dry_run
from llmswitch.plans.templates import Output, parse, render
from llmswitch.testing import FakeModel
from tests.plans.support import upstream, write_config

NO_LEDGER = {"observe": {"ledger": False}}


def make_plan(streams: dict[str, Any], **top: Any) -> Plan:
    return Plan.from_dict({"streams": streams, **top}, "edges.yaml")


def test_unicode_names_of_streams_inputs_and_json_fields() -> None:
    tpl = parse("{{ inputs.thème }} {{ streams.données.output }} {{ streams.数据.json.名前 }}",
                "t")
    outputs = {"données": Output("D"), "数据": Output("{}", {"名前": "ünï"})}
    assert render(tpl, {"thème": "café"}, outputs) == "café D ünï"
    plan = make_plan({"données": {"model": "m", "prompt": "x {{ inputs.thème }}"},
                      "数据-2": {"model": "m", "prompt": "{{ streams.données.output }}"}},
                     inputs={"thème": {"default": "café"}})
    assert plan.streams["数据-2"].depends_on == ("données",)
    # Still no way out of the sandbox: ids are words, never paths or expressions.
    for bad in ("a/b", "a.b", "1a", "a b"):
        with pytest.raises(PlanError, match="stream ids"):
            make_plan({bad: {"model": "m", "prompt": "x"}})


async def test_unicode_stream_ids_run_and_write_their_outputs(tmp_path: Path) -> None:
    model = FakeModel("m", ["première", "zweite"])
    plan = make_plan({"données": {"model": "m", "prompt": "x {{ inputs.thème }}"},
                      "数据": {"model": "m", "prompt": "y {{ streams.données.output }}"}},
                     inputs={"thème": {"default": "café"}})
    async with Switch(NO_LEDGER, models={"m": model}) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.status == "done"
    assert [r.messages[-1].text for r in model.calls] == ["x café", "y première"]
    assert (tmp_path / "run" / "outputs" / "数据.txt").read_text(encoding="utf-8") == "zweite"


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmswitch.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "200",
                               "PYTHONPATH": os.pathsep.join(sys.path)})


def test_resume_and_report_from_another_folder_use_the_runs_config(tmp_path: Path) -> None:
    """A run started with a relative `--config` records where that config is, so `plan
    resume` and `plan report` from any folder use it (its route `r` is known only there)."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    with upstream() as server:
        config = write_config(here, server.url)
        with config.open("a", encoding="utf-8") as handle:
            handle.write("routes:\n  r: {strategy: fallback, targets: [openai/gpt-4o-mini]}\n")
        (here / "plan.yaml").write_text("streams:\n  a: {model: r, prompt: hello}\n",
                                        encoding="utf-8")
        ran = _cli(here, "plan", "run", "plan.yaml", "--config", config.name, "--out", "run",
                   "--json")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert Path(json.loads(ran.stdout)["config"]) == config.resolve()
        resumed = _cli(elsewhere, "plan", "resume", str(here / "run"), "--json")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        reported = _cli(elsewhere, "plan", "report", str(here / "run"), "--json")
        assert reported.returncode == 0, reported.stdout + reported.stderr
        assert server.count("hello") == 1


async def test_saving_share_is_exactly_one_minus_actual_over_baseline(tmp_path: Path) -> None:
    """`saving_share` = 1 - actual / baseline, from the very figures the report prints (it was
    rounded to 4 digits: 0.8379 for 0.83786...)."""
    answer = Completion("an answer", "stop", Usage(1000, 500), 0.0001234567, "openai",
                        "gpt-4o-mini")
    fakes = {"openai/gpt-4o-mini": FakeModel("gpt-4o-mini", [answer], provider="openai")}
    plan = make_plan({"a": {"model": "openai/gpt-4o-mini", "prompt": "x"},
                      "b": {"model": "openai/gpt-4o-mini", "prompt": "y"}})
    async with Switch(NO_LEDGER, models=fakes) as sw:
        await run_plan(sw, plan, run_dir=tmp_path / "run")
        report = build_report(sw, tmp_path / "run", "openai/gpt-4o").to_dict()
        estimate = dry_run(sw, prepare(sw, plan), "openai/gpt-4o")
    for figures in (report, *report["streams"].values()):
        assert figures["baseline_model"] == "openai/gpt-4o"  # per stream the same figures
        exact = 1 - figures["actual_cost_usd"] / figures["baseline_cost_usd"]
        assert figures["saving_share"] == pytest.approx(exact, rel=1e-9, abs=1e-12)
    assert {row["baseline_model"] for row in estimate["streams"].values()} == {"openai/gpt-4o"}
    exact = 1 - estimate["total_cost_usd"] / estimate["baseline_cost_usd"]
    assert estimate["saving_share"] == pytest.approx(exact, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
async def test_bad_concurrency_is_a_plan_error_before_anything_runs(tmp_path: Path,
                                                                    bad: Any) -> None:
    """The CLI refuses `--concurrency 0`; the Python API ran 0 as 8 and -1 as 1."""
    model = FakeModel("m", ["ok"])
    plan = make_plan({"a": {"model": "m", "prompt": "x"}})
    async with Switch(NO_LEDGER, models={"m": model}) as sw:
        with pytest.raises(PlanError, match="concurrency"):
            await run_plan(sw, plan, run_dir=tmp_path / "run", concurrency=bad)
        assert not (tmp_path / "run").exists() and model.call_count == 0
        await run_plan(sw, plan, run_dir=tmp_path / "done")
        with pytest.raises(PlanError, match="concurrency"):
            await resume_plan(sw, tmp_path / "done", concurrency=bad)


def test_a_prompt_no_model_of_the_stream_can_hold_can_never_run(tmp_path: Path) -> None:
    """A prompt made of inputs alone that exceeds the context window of the stream's model and
    of every fallback is refused when the plan is checked (exit 2, nothing spent), as the
    call itself would refuse it; one model (or route target) that can hold it is enough."""
    big = {"big": {"default": "lorem ipsum " * 3000}}
    sw = Switch(NO_LEDGER | {"routes": {"small": {"strategy": "fallback",
                                                  "targets": ["local/smollm2-135m"]},
                                        "wide": {"strategy": "fallback", "targets": [
                                            "local/smollm2-135m", "openai/gpt-4o-mini"]}}})
    stream = {"model": "local/smollm2-135m", "prompt": "{{ inputs.big }}"}
    for fallback in ([], ["small"]):
        plan = make_plan({"a": {**stream, "fallback": fallback}}, inputs=big)
        with pytest.raises(PlanError, match=r"streams\.a.*can never run.*context window"):
            prepare(sw, plan)
    for fallback in (["openai/gpt-4o-mini"], ["wide"]):
        prepare(sw, make_plan({"a": {**stream, "fallback": fallback}}, inputs=big))
    prepare(sw, make_plan({"a": stream}, inputs={"big": {"default": "short"}}))
    # An earlier stream's output is not known yet: the call itself checks it then.
    prepare(sw, make_plan({"a": {"model": "openai/gpt-4o-mini", "prompt": "{{ inputs.big }}"},
                           "b": {**stream, "prompt": "{{ streams.a.output }}"}}, inputs=big))


async def test_totals_count_the_tokens_of_earlier_sessions(tmp_path: Path) -> None:
    """run.json's totals are over every call, earlier sessions included (as its cost is): a
    JSON stream that failed twice, then finished on resume, used 3 calls' tokens."""
    def answer(text: str) -> Completion:
        return Completion(text, "stop", Usage(100, 10), 0.01, "fake", "m")

    model = FakeModel("m", [answer("not json"), answer("still not"), answer('{"a": 1}')])
    plan = make_plan({"a": {"model": "m", "prompt": "x", "output": "json"}})
    async with Switch(NO_LEDGER, models={"m": model}) as sw:
        first = await run_plan(sw, plan, run_dir=tmp_path / "run")
        assert first.status == "failed" and first.manifest["total_input_tokens"] == 200
        run = await resume_plan(sw, tmp_path / "run")
    assert run.status == "done" and model.call_count == 3
    assert run.total_cost_usd == pytest.approx(0.03)
    assert run.manifest["total_input_tokens"] == 300
    assert run.manifest["total_output_tokens"] == 30
    assert run.streams["a"]["input_tokens"] == 100  # the stream's own line: this session


async def test_summary_names_the_last_model_a_failed_stream_tried(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that moved to its fallback and failed there was shown as "a (fallback from
    a)": the requested model twice, never the fallback that failed."""
    from llmswitch.cli.plan_show import print_summary

    monkeypatch.setenv("COLUMNS", "200")
    fakes = {"first": FakeModel("first", [OverloadedError("busy")]),
             "second": FakeModel("second", [OverloadedError("busy too")])}
    plan = make_plan({"a": {"model": "first", "fallback": ["second"], "prompt": "x"}})
    async with Switch(NO_LEDGER, models=fakes) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    print_summary(run, live=False)
    out = capsys.readouterr().out
    assert "second (fallback from first)" in out and "first (fallback from first)" not in out


@pytest.mark.parametrize(("outputs", "clash"), [
    ({"a": {"file": "same.sql"}, "b": {"file": "same.sql"}}, "outputs/same.sql"),
    ({"a": {"file": "app"}, "b": {"file": "app/x.py"}}, "outputs/app"),
    ({"a": "text", "b": {"file": "a.txt"}}, "outputs/a.txt"),
])
def test_two_streams_writing_one_path_are_refused_at_load(outputs: dict[str, Any],
                                                          clash: str) -> None:
    """They overwrote each other (resume then read the other stream's output as its own), or
    a file where a folder had to be ended the run in an internal FileExistsError."""
    streams = {sid: {"model": "m", "prompt": "x", "output": out} for sid, out in outputs.items()}
    with pytest.raises(PlanError, match=rf"streams\.b\.output.*{clash}.*stream 'a'"):
        make_plan(streams)


def test_a_yaml_boolean_as_a_stream_id_is_refused(tmp_path: Path) -> None:
    """YAML reads `on:` as true: the stream was silently named "True"."""
    path = tmp_path / "p.yaml"
    path.write_text("streams:\n  on: {model: m, prompt: x}\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"streams\.True: .*quote"):
        Plan.load(path)
    path.write_text("inputs:\n  yes: {default: x}\nstreams:\n  a: {model: m, prompt: x}\n",
                    encoding="utf-8")
    with pytest.raises(PlanError, match=r"inputs\.True: .*quote"):
        Plan.load(path)
    path.write_text("streams:\n  'on': {model: m, prompt: x}\n", encoding="utf-8")
    assert list(Plan.load(path).streams) == ["on"]


async def test_the_plans_budget_holds_across_streams_running_at_once(tmp_path: Path) -> None:
    """Five parallel streams under `budget_usd: 0.01` each saw the whole budget left when they
    started and spent $0.02 together; calls in flight now hold their estimate on the run's
    budget, so the ones that would pass it are refused before they are sent."""
    model = FakeModel("gpt-4o", ["ok"], provider="openai", cost_per_call=0.004, delay=0.05)
    plan = make_plan({f"s{i}": {"model": "openai/gpt-4o", "prompt": "x", "max_tokens": 400}
                      for i in range(5)}, budget_usd=0.01)  # ~$0.004 a call on gpt-4o
    async with Switch(NO_LEDGER, models={"openai/gpt-4o": model}) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.total_cost_usd <= 0.01
    statuses = sorted(e["status"] for e in run.streams.values())
    assert statuses == ["done", "done", "failed", "failed", "failed"]
    assert {e["error"]["type"] for e in run.streams.values() if e["error"]} == {
        "budget_exceeded"}
    assert model.call_count == 2


async def test_approve_needs_an_output_to_approve(tmp_path: Path) -> None:
    """`plan approve` on a checkpointed stream that has not produced its output yet recorded
    the approval anyway, so the output later passed its checkpoint unseen."""
    from click.testing import CliRunner

    from llmswitch.cli.plan import plan as plan_group
    from llmswitch.plans import start_run

    plan = make_plan({"a": {"model": "m", "prompt": "x", "checkpoint": "approve"}})
    async with Switch(NO_LEDGER, models={"m": FakeModel("m", ["draft"])}) as sw:
        start_run(sw, plan, run_dir=tmp_path / "run")  # created, not run: `a` is pending
        result = CliRunner().invoke(plan_group, ["approve", str(tmp_path / "run"), "a"])
        assert result.exit_code == 2, result.output
        assert "nothing to approve yet" in result.output and "pending" in result.output
        assert not (tmp_path / "run" / "approvals").exists()
        run = await resume_plan(sw, tmp_path / "run", approval_timeout=0)
        assert run.streams["a"]["status"] == "awaiting_approval"
        result = CliRunner().invoke(plan_group, ["approve", str(tmp_path / "run"), "a"])
        assert result.exit_code == 0 and "approved a" in result.output
        run = await resume_plan(sw, tmp_path / "run")
    assert run.status == "done"
