"""`llmswitch report` / `traces` and the pure report functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmswitch import OverloadedError, Switch
from llmswitch.cli.main import cli
from llmswitch.observe.report import cost_series, parse_since, percentile, summarize
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel

ROWS = [
    {"ts": 0.0, "provider": "p", "model": "a", "route": "r", "status": "error",
     "served": 0, "input_tokens": 10, "output_tokens": 0, "cost_usd": 0.001,
     "latency_ms": 5.0},
    {"ts": 10.0, "provider": "p", "model": "a", "route": "r", "status": "ok", "served": 1,
     "input_tokens": 10, "output_tokens": 20, "cost_usd": 0.002, "latency_ms": 100.0},
    {"ts": 7200.0, "provider": "q", "model": "b", "route": "r", "status": "ok", "served": 1,
     "input_tokens": 1, "output_tokens": 1, "cost_usd": None, "latency_ms": 300.0},
]


def test_summarize_by_model_counts_failed_attempts_and_their_cost() -> None:
    a, b = summarize(ROWS, "model")
    assert (a["model"], a["calls"], a["errors"], a["served"]) == ("p/a", 2, 1, 1)
    assert a["cost_usd"] == pytest.approx(0.003) and a["latency_p50_ms"] == 100.0
    assert (b["model"], b["cost_usd"], b["unpriced_calls"]) == ("q/b", 0.0, 1)
    (route,) = summarize(ROWS, "route")
    assert route["calls"] == 3 and route["latency_p95_ms"] == pytest.approx(290.0)


def test_percentile_and_cost_series() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([], 50) is None
    assert cost_series(ROWS) == [(0.0, 0.003), (3600.0, 0.0), (7200.0, 0.0)]


def test_parse_since() -> None:
    assert parse_since("2d", now=200000.0) == 200000.0 - 172800
    assert parse_since("1970-01-02") == 86400.0
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


@pytest.fixture
def ledger_config(tmp_path: Path) -> Path:
    url = str(tmp_path / "ledger.sqlite")
    models = {"a": FakeModel("a", [OverloadedError("x"), "hi"], provider="p", cost_per_call=0.5),
              "b": FakeModel("b", ["yo"], provider="q", cost_per_call=0.25)}
    switch = Switch({"routes": {"r": {"strategy": "fallback", "targets": ["a", "b"],
                                      "retries": 0}},
                     "observe": {"ledger": url}}, models=models,
                    services={SERVICE_KEY: Resilience(clock=FakeClock())})
    switch.complete_sync("r", "first")   # a fails, b serves
    switch.complete_sync("r", "second")  # a serves
    switch.close()
    path = tmp_path / "llmswitch.yaml"
    path.write_text(f"observe:\n  ledger: {url}\n")
    return path


def test_report_json(ledger_config: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--config", str(ledger_config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {r["model"]: r for r in data["rows"]}
    assert (rows["p/a"]["calls"], rows["p/a"]["errors"], rows["p/a"]["served"]) == (2, 1, 1)
    assert rows["q/b"]["cost_usd"] == 0.25
    assert data["total_cost_usd"] == pytest.approx(0.75)


def test_report_table_by_provider_with_terminal_chart(ledger_config: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--config", str(ledger_config), "--by",
                                      "provider", "--chart-terminal"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["provider", "calls", "errors"]
    assert any(line.startswith("p ") for line in lines) and "█" in result.output
    assert "0.750000" in result.output


def test_report_png_chart(ledger_config: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed (extra plot)")
    out = tmp_path / "cost.png"
    result = CliRunner().invoke(cli, ["report", "--config", str(ledger_config), "--chart",
                                      str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_ledger_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "llmswitch.yaml"
    path.write_text(f"observe:\n  ledger: {tmp_path / 'none.sqlite'}\n")
    result = CliRunner().invoke(cli, ["report", "--config", str(path)])
    assert result.exit_code == 1 and "no ledger at" in result.output


def test_traces_list_and_show(ledger_config: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["traces", "--config", str(ledger_config), "--json"])
    assert listed.exit_code == 0, listed.output
    requests = json.loads(listed.output)
    assert len(requests) == 2
    first = requests[-1]["request_id"]
    shown = runner.invoke(cli, ["traces", first[:8], "--config", str(ledger_config)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("fallback r [strategy] ok")
    assert "ERROR overloaded" in shown.output
