"""The cost report: the run beside the same plan on one model, per stream and in total."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from llmswitch import Completion, ConfigError, OverloadedError, Switch, Usage
from llmswitch.plans import Plan, PlanError, run_plan
from llmswitch.plans.check import prepare
from llmswitch.plans.report import build_report, dry_run, execute_baseline, save_chart
from llmswitch.testing import FakeModel

CONFIG: dict[str, Any] = {"observe": {"ledger": False}}
PLAN = Plan.from_dict({"streams": {
    "cheap": {"model": "openai/gpt-4o-mini", "prompt": "x",
              "checks": [{"contains": "answer"}]},
    "strong": {"model": "openai/gpt-4o", "prompt": "{{ streams.cheap.output }}"},
    "moved": {"model": "anthropic/claude-sonnet-4-5", "fallback": ["openai/gpt-4o-mini"],
              "prompt": "y"},
}}, "report.yaml")


def priced(provider: str, name: str, usage: Usage, cost: float) -> FakeModel:
    answer = Completion("an answer", "stop", usage, cost, provider, name)
    return FakeModel(name=name, provider=provider, script=[answer])


def models() -> dict[str, FakeModel]:
    return {
        "openai/gpt-4o-mini": priced("openai", "gpt-4o-mini", Usage(1000, 500), 0.00045),
        "openai/gpt-4o": priced("openai", "gpt-4o", Usage(2000, 1000), 0.015),
        "anthropic/claude-sonnet-4-5": FakeModel(name="claude-sonnet-4-5",
                                                 provider="anthropic",
                                                 script=[OverloadedError("529")]),
    }


async def test_report_reprices_the_run_on_the_most_expensive_model(tmp_path: Path) -> None:
    async with Switch(CONFIG, models=models()) as sw:
        run = await run_plan(sw, PLAN, run_dir=tmp_path / "run")
        report = build_report(sw, tmp_path / "run").to_dict()
    assert run.status == "done"
    # gpt-4o prices these tokens highest (claude served nothing: it failed).
    assert report["baseline_model"] == "openai/gpt-4o" and report["baseline_estimated"]
    assert report["actual_cost_usd"] == pytest.approx(0.00045 + 0.015 + 0.00045)
    # gpt-4o: $2.5/M in, $10/M out -> 1000/500 tokens = $0.0075; 2000/1000 = $0.015
    assert report["baseline_cost_usd"] == pytest.approx(0.0075 + 0.015 + 0.0075)
    assert report["saving_share"] == pytest.approx(1 - 0.0159 / 0.03, abs=1e-4)
    assert report["moved"] == ["moved"]
    line = report["streams"]["moved"]
    assert line["moved_from"] == "anthropic/claude-sonnet-4-5" and line["model"] == "gpt-4o-mini"
    assert report["streams"]["strong"]["saving_share"] == pytest.approx(0.0)
    assert report["check_pass_rate"] == 1.0


async def test_explicit_baseline_and_unknown_one(tmp_path: Path) -> None:
    async with Switch(CONFIG, models=models()) as sw:
        await run_plan(sw, PLAN, run_dir=tmp_path / "run")
        report = build_report(sw, tmp_path / "run", "openai/gpt-4o-mini").to_dict()
        assert report["baseline_model"] == "openai/gpt-4o-mini"
        assert report["baseline_cost_usd"] == pytest.approx(0.00045 * 2 + 0.0009)
        with pytest.raises(PlanError, match="--baseline: unknown model 'gpt4o'"):
            build_report(sw, tmp_path / "run", "gpt4o")


async def test_execute_baseline_measures_both_runs(tmp_path: Path) -> None:
    fakes = models()
    async with Switch(CONFIG, models=fakes) as sw:
        await run_plan(sw, PLAN, run_dir=tmp_path / "run")
        report = build_report(sw, tmp_path / "run")
        baseline = await execute_baseline(sw, report)
    data = report.to_dict()
    assert baseline.status == "done" and baseline.run_dir == tmp_path / "run" / "baseline"
    assert fakes["openai/gpt-4o"].call_count == 4  # 1 in the run + 3 in the baseline run
    assert not data["baseline_estimated"]
    assert data["baseline_cost_usd"] == pytest.approx(3 * 0.015)
    assert data["baseline_run"]["check_pass_rate"] == 1.0


async def test_chart_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    async with Switch(CONFIG, models=models()) as sw:
        await run_plan(sw, PLAN, run_dir=tmp_path / "run")
        report = build_report(sw, tmp_path / "run")
    save_chart(report, tmp_path / "cost.png")
    assert (tmp_path / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = build_report.__globals__["CostReport"]("r", "d", "done", "m", True, [])
    with pytest.raises(ConfigError, match="'plot' extra"):
        save_chart(report, "x.png")


def test_dry_run_compares_with_the_priciest_model() -> None:
    with Switch(CONFIG) as sw:
        data = dry_run(sw, prepare(sw, PLAN, {}))
    assert data["baseline_model"] == "anthropic/claude-sonnet-4-5"
    assert data["total_cost_usd"] < data["baseline_cost_usd"]
    assert 0 < data["saving_share"] < 1
    assert set(data["streams"]["cheap"]) >= {"model", "input_tokens", "output_tokens",
                                             "cost_usd", "baseline_cost_usd"}
