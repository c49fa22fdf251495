"""`llmswitch plan` as a user runs it: a real process against an OpenAI-compatible stand-in
on 127.0.0.1 (with scripted delays and outages), checked through the public contract."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plans.support import Upstream, max_overlap, upstream, write_config

MANIFEST = {"run_id", "run_dir", "status", "total_cost_usd", "streams"}
STREAM = {"status", "model", "provider", "input_tokens", "output_tokens", "cost_usd",
          "latency_ms", "attempts", "output_file"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmswitch.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "COLUMNS": "200"})


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmswitch.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(lines[0])
    return data


def write_plan(folder: Path, text: str, name: str = "plan.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def wait_for(check: Any, what: str, limit: float = 60) -> None:
    until = time.monotonic() + limit
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def manifest(run_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return data


@pytest.fixture
def server() -> Iterator[Upstream]:
    with upstream() as up:
        yield up


@pytest.fixture
def config(tmp_path: Path, server: Upstream) -> Path:
    return write_config(tmp_path, server.url, tmp_path / "ledger.sqlite")


PARALLEL = """
name: parallel
inputs:
  topic: {description: what to write about, default: orders}
defaults: {model: openai/gpt-4o-mini, max_tokens: 50}
streams:
  a: {prompt: "stream-a {{ inputs.topic }} [[sleep:0.8]]"}
  b: {prompt: "stream-b [[sleep:0.8]]", output: json}
  c: {prompt: "stream-c after {{ streams.a.output }} and {{ streams.b.json.name }}"}
"""


def test_run_json_is_the_manifest(tmp_path: Path, server: Upstream, config: Path) -> None:
    plan = write_plan(tmp_path, PARALLEL)
    out = tmp_path / "run"
    proc = cli("plan", "run", str(plan), "--out", str(out), "--json", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    data = one_json(proc)
    assert set(data) >= MANIFEST and data["status"] == "done"
    assert data == manifest(out) and Path(data["run_dir"]) == out.resolve()
    for sid, entry in data["streams"].items():
        assert set(entry) >= STREAM, sid
        assert entry["status"] == "done"
        assert (entry["model"], entry["provider"]) == ("gpt-4o-mini", "openai")
        assert (entry["input_tokens"], entry["output_tokens"]) == (20, 10)
        assert entry["attempts"] == 1 and entry["cost_usd"] > 0
        assert Path(entry["output_file"]).is_file()
    assert data["total_cost_usd"] == pytest.approx(
        sum(e["cost_usd"] for e in data["streams"].values()))
    by_stream = {s.prompt.split()[0]: s for s in server.seen}
    a, b, c = by_stream["stream-a"], by_stream["stream-b"], by_stream["stream-c"]
    assert max_overlap([(a.start, a.end), (b.start, b.end)]) == 2  # a and b in parallel
    assert c.start >= max(a.end, b.end)  # c after both
    assert "answer from gpt-4o-mini and orders" in c.prompt


def test_outage_moves_streams_and_the_report_shows_it(tmp_path: Path, server: Upstream,
                                                      config: Path) -> None:
    server.down.add("gpt-4o")
    plan = write_plan(tmp_path, """
streams:
  design: {model: openai/gpt-4o, fallback: [openai/gpt-4o-mini], prompt: design it}
  build: {model: openai/gpt-4o-mini, prompt: "build {{ streams.design.output }}"}
""")
    out = tmp_path / "run"
    proc = cli("plan", "run", str(plan), "--out", str(out), "--json", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    design = one_json(proc)["streams"]["design"]
    assert (design["model"], design["moved_from"], design["attempts"]) == (
        "gpt-4o-mini", "openai/gpt-4o", 2)
    report = cli("plan", "report", str(out), "--json", "--config", str(config))
    assert report.returncode == 0, report.stderr
    data = one_json(report)
    assert set(data) >= {"actual_cost_usd", "baseline_model", "baseline_cost_usd",
                         "saving_share", "streams"}
    assert data["moved"] == ["design"] and data["streams"]["design"]["moved"]
    assert data["baseline_model"] == "openai/gpt-4o-mini"
    assert data["saving_share"] == pytest.approx(0.0)
    for entry in data["streams"].values():
        assert set(entry) >= {"actual_cost_usd", "baseline_cost_usd", "saving_share"}
    table = cli("plan", "report", str(out), "--baseline", "openai/gpt-4o",
                "--config", str(config))
    assert table.returncode == 0 and "moved from openai/gpt-4o" in table.stdout
    assert "moved to a fallback: design" in table.stdout


def test_a_failed_stream_exits_1_and_keeps_the_rest(tmp_path: Path, server: Upstream,
                                                    config: Path) -> None:
    server.down.add("gpt-4o")
    plan = write_plan(tmp_path, """
streams:
  broken: {model: openai/gpt-4o, prompt: x}
  fine: {model: openai/gpt-4o-mini, prompt: y}
""")
    out = tmp_path / "run"
    proc = cli("plan", "run", str(plan), "--out", str(out), "--config", str(config))
    assert proc.returncode == 1
    assert "broken" in proc.stdout and "Traceback" not in proc.stderr
    data = manifest(out)
    assert data["streams"]["fine"]["status"] == "done"
    assert data["streams"]["broken"]["status"] == "failed"
    assert Path(data["streams"]["fine"]["output_file"]).read_text() == "answer from gpt-4o-mini"


@pytest.mark.parametrize(("plan_text", "extra", "needle"), [
    ("streams: [broken\n", [], "not valid YAML"),
    ("inputs: {feature: {description: what}}\nstreams:\n  a: {model: openai/gpt-4o-mini, "
     "prompt: '{{ inputs.feature }}'}\n", [], "missing input 'feature'"),
    ("streams:\n  a: {model: local/smollm2-135m, prompt: x, needs: [tools]}\n", [],
     "streams.a.model: local/smollm2-135m lacks tools"),
    ("streams:\n  a: {model: gpt4o-mini, prompt: x}\n", [], "unknown model 'gpt4o-mini'"),
    ("streams:\n  a: {model: openai/gpt-4o-mini, prompt: x}\n", ["-i", "nope=1"],
     "unknown input 'nope'"),
    ("streams:\n  a: {model: openai/gpt-4o-mini, prompt: x}\n", ["--concurrency", "0"],
     "--concurrency"),
])
def test_bad_plans_and_arguments_exit_2_before_any_call(
        tmp_path: Path, server: Upstream, config: Path, plan_text: str, extra: list[str],
        needle: str) -> None:
    plan = write_plan(tmp_path, plan_text)
    out = tmp_path / "run"
    proc = cli("plan", "run", str(plan), "--out", str(out), "--config", str(config), *extra)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert server.seen == [] and not out.exists()
    as_json = cli("plan", "run", str(plan), "--out", str(out), "--config", str(config),
                  "--json", *extra)
    assert as_json.returncode == 2 and needle in one_json(as_json)["error"]["message"]


def test_unwritable_output_folder_exits_2(tmp_path: Path, server: Upstream,
                                         config: Path) -> None:
    plan = write_plan(tmp_path, "streams:\n  a: {model: openai/gpt-4o-mini, prompt: x}\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli("plan", "run", str(plan), "--out", str(blocker / "run"), "--config", str(config))
    assert proc.returncode == 2 and "cannot write there" in proc.stderr
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    proc = cli("plan", "run", str(plan), "--out", str(taken), "--config", str(config))
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert server.seen == []


def test_dry_run_calls_nothing(tmp_path: Path, server: Upstream, config: Path) -> None:
    plan = write_plan(tmp_path, PARALLEL)
    proc = cli("plan", "run", str(plan), "--dry-run", "--json", "--config", str(config),
               "--baseline", "openai/gpt-4o")
    assert proc.returncode == 0, proc.stderr
    data = one_json(proc)
    assert data["baseline_model"] == "openai/gpt-4o" and data["dry_run"]
    assert data["baseline_cost_usd"] > data["total_cost_usd"] > 0
    assert data["streams"]["a"]["output_tokens"] == 50
    text = cli("plan", "run", str(plan), "--dry-run", "--config", str(config))
    assert text.returncode == 0 and "total" in text.stdout and "stream-a" not in text.stdout
    assert server.seen == [] and not (tmp_path / "runs").exists()


def _ledger_rows(ledger: Path, run_id: str) -> list[tuple[str, str]] | None:
    """(stream_id, status) of the run's ledger rows; None when the ledger has no run tags."""
    with sqlite3.connect(ledger) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(attempts)")}
        if "run_id" not in columns:
            return None
        rows = db.execute("SELECT tags, status FROM attempts WHERE run_id = ?", (run_id,))
        return [(json.loads(tags or "{}").get("stream_id"), status) for tags, status in rows]


KILLABLE = """
name: killable
defaults: {model: openai/gpt-4o-mini}
streams:
  first: {prompt: "stream-first"}
  second: {prompt: "stream-second"}
  slow: {prompt: "stream-slow [[hang_once]]"}
  last: {prompt: "stream-last {{ streams.slow.output }} {{ streams.first.output }}"}
"""


def test_resume_after_sigkill_pays_for_no_stream_twice(tmp_path: Path, server: Upstream,
                                                       config: Path) -> None:
    plan = write_plan(tmp_path, KILLABLE)
    out = tmp_path / "run"
    proc = spawn("plan", "run", str(plan), "--out", str(out), "--config", str(config), "--json")
    try:
        wait_for(lambda: manifest(out).get("streams", {}).get("second", {}).get("status")
                 == "done" and manifest(out)["streams"]["first"]["status"] == "done"
                 and server.count("stream-slow") == 1, "two streams done, one in flight")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    killed = manifest(out)
    assert killed["streams"]["slow"]["status"] == "running"
    assert killed["streams"]["last"]["status"] == "pending"
    resumed = cli("plan", "resume", str(out), "--json", "--config", str(config))
    assert resumed.returncode == 0, resumed.stderr
    data = one_json(resumed)
    assert data["status"] == "done" and len(data["sessions"]) == 2
    assert [server.count(f"stream-{s}") for s in ("first", "second", "slow", "last")] == [
        1, 1, 2, 1]
    rows = _ledger_rows(tmp_path / "ledger.sqlite", data["run_id"])
    assert rows is not None, "the ledger has no run_id column"
    ok = [stream for stream, status in rows if status == "ok"]
    assert sorted(set(ok)) == sorted(ok)  # no stream paid (and answered) twice
    assert {"slow", "last"} <= set(ok)  # the resumed session's calls are all there


def test_ctrl_c_exits_130_and_the_run_resumes(tmp_path: Path, server: Upstream,
                                              config: Path) -> None:
    plan = write_plan(tmp_path, KILLABLE)
    out = tmp_path / "run"
    proc = spawn("plan", "run", str(plan), "--out", str(out), "--config", str(config))
    try:
        wait_for(lambda: server.count("stream-slow") == 1
                 and manifest(out).get("streams", {}).get("first", {}).get("status") == "done",
                 "the slow stream in flight")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "plan resume" in err and "Traceback" not in err
    stopped = manifest(out)
    assert stopped["status"] == "interrupted"
    assert stopped["streams"]["slow"]["status"] == "interrupted"
    resumed = cli("plan", "resume", str(out), "--config", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert server.count("stream-first") == 1 and server.count("stream-slow") == 2


def test_checkpoint_approve_then_resume(tmp_path: Path, server: Upstream,
                                        config: Path) -> None:
    plan = write_plan(tmp_path, """
defaults: {model: openai/gpt-4o-mini}
streams:
  draft: {prompt: stream-draft, checkpoint: approve}
  build: {prompt: "stream-build {{ streams.draft.output }}"}
""")
    out = tmp_path / "run"
    proc = cli("plan", "run", str(plan), "--out", str(out), "--config", str(config),
               "--approval-timeout", "0")
    assert proc.returncode == 1
    assert f"llmswitch plan approve {out.resolve()} draft" in proc.stdout
    assert manifest(out)["streams"]["draft"]["status"] == "awaiting_approval"
    bad = cli("plan", "approve", str(out), "drfat")
    assert bad.returncode == 2 and "no stream 'drfat'" in bad.stderr
    ok = cli("plan", "approve", str(out), "draft", "--note", "fine")
    assert ok.returncode == 0 and "approved draft" in ok.stdout
    resumed = cli("plan", "resume", str(out), "--json", "--config", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert server.count("stream-draft") == 1 and server.count("stream-build") == 1


def test_yes_approves_checkpoints(tmp_path: Path, server: Upstream, config: Path) -> None:
    plan = write_plan(tmp_path, """
defaults: {model: openai/gpt-4o-mini}
streams:
  draft: {prompt: stream-draft, checkpoint: approve}
  build: {prompt: "stream-build {{ streams.draft.output }}"}
""")
    proc = cli("plan", "run", str(plan), "--out", str(tmp_path / "run"), "--config",
               str(config), "--yes", "--json")
    assert proc.returncode == 0 and one_json(proc)["status"] == "done"


def test_report_png_and_resume_of_a_finished_run(tmp_path: Path, server: Upstream,
                                                 config: Path) -> None:
    pytest.importorskip("matplotlib")
    plan = write_plan(tmp_path, PARALLEL)
    out = tmp_path / "run"
    assert cli("plan", "run", str(plan), "--out", str(out), "--config", str(config)
               ).returncode == 0
    png = tmp_path / "cost.png"
    proc = cli("plan", "report", str(out), "--png", str(png), "--baseline", "openai/gpt-4o",
               "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    again = cli("plan", "resume", str(out), "--json", "--config", str(config))
    assert again.returncode == 0 and len(server.seen) == 3  # nothing ran twice
    assert cli("plan", "report", str(tmp_path / "nothing")).returncode == 2


def test_every_call_is_in_the_ledger_under_the_run_id(tmp_path: Path, server: Upstream,
                                                      config: Path) -> None:
    server.down.add("gpt-4o")
    plan = write_plan(tmp_path, """
streams:
  a: {model: openai/gpt-4o, fallback: [openai/gpt-4o-mini], prompt: x}
  b: {model: openai/gpt-4o-mini, prompt: y}
""")
    proc = cli("plan", "run", str(plan), "--out", str(tmp_path / "run"), "--json",
               "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    run_id = one_json(proc)["run_id"]
    rows = _ledger_rows(tmp_path / "ledger.sqlite", run_id)
    assert rows is not None, "the ledger has no run_id column"
    assert sorted(rows) == [("a", "error"), ("a", "ok"), ("b", "ok")]


def test_report_execute_baseline_runs_the_plan_on_one_model(
        tmp_path: Path, server: Upstream, config: Path) -> None:
    plan = write_plan(tmp_path, """
streams:
  cheap: {model: openai/gpt-4o-mini, prompt: stream-cheap, checks: [{contains: answer}]}
  strong: {model: openai/gpt-4o, prompt: "stream-strong {{ streams.cheap.output }}"}
""")
    out = tmp_path / "run"
    assert cli("plan", "run", str(plan), "--out", str(out), "--config", str(config)
               ).returncode == 0
    proc = cli("plan", "report", str(out), "--execute-baseline", "--json", "--config",
               str(config))
    assert proc.returncode == 0, proc.stderr
    data = one_json(proc)
    assert data["baseline_model"] == "openai/gpt-4o" and not data["baseline_estimated"]
    assert data["baseline_run"]["status"] == "done"
    assert data["baseline_run"]["check_pass_rate"] == data["check_pass_rate"] == 1.0
    assert [s.model for s in server.seen] == ["gpt-4o-mini", "gpt-4o", "gpt-4o", "gpt-4o"]
    assert data["saving_share"] > 0  # gpt-4o-mini answered one stream for less
    again = cli("plan", "report", str(out), "--execute-baseline", "--json", "--config",
                str(config))
    assert again.returncode == 0 and len(server.seen) == 4  # the finished baseline is reused
