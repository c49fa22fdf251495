"""A real three-stream plan on the embedded local model, offline, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLAN = """
name: local-three
inputs:
  topic: {description: a topic, default: the sea}
defaults: {model: local/smollm2-135m, max_tokens: 8, temperature: 0}
streams:
  fact: {prompt: "One fact about {{ inputs.topic }}:"}
  word: {prompt: "One word for {{ inputs.topic }}:"}
  line: {prompt: "Write a title using {{ streams.word.output }} and {{ streams.fact.output }}"}
"""


def _model_missing() -> str | None:
    try:
        import xllamacpp  # noqa: F401

        from llmswitch.local import default_smollm2_path

        default_smollm2_path()
    except Exception as exc:
        return str(exc)
    return None


@pytest.mark.local_model
def test_three_stream_plan_on_the_local_model(tmp_path: Path) -> None:
    missing = _model_missing()
    if missing:
        pytest.skip(f"SmolLM2 GGUF not installed: {missing}")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", "plan", "run", str(plan), "--out", str(out),
         "--json", "--concurrency", "2"],
        capture_output=True, text=True, timeout=600, check=False, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "done" and data["total_cost_usd"] == 0
    for sid in ("fact", "word", "line"):
        entry = data["streams"][sid]
        assert (entry["provider"], entry["model"]) == ("local", "smollm2-135m")
        assert 0 < entry["output_tokens"] <= 8 and entry["input_tokens"] > 0
        assert Path(entry["output_file"]).read_text(encoding="utf-8").strip()
    line = data["streams"]["line"]
    assert line["started_at"] >= max(data["streams"][s]["finished_at"] for s in ("fact", "word"))
