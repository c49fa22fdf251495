"""A local request that times out or is cancelled stops generating (real model).

Before the fix a non-streaming request ran in a thread that could not be stopped: the timeout
was reported, but the process only exited when generation ended (~35 s for 1,000 tokens).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmswitch import Switch
from llmswitch.errors import TimeoutError as LlmTimeoutError
from llmswitch.local import LocalEngine

STORY = "Write a very long story about a dragon and a knight."


@pytest.mark.local_model
async def test_timed_out_json_request_frees_the_engine(engine: LocalEngine) -> None:
    switch = Switch({}, observers=[], env={})
    try:
        with pytest.raises(LlmTimeoutError):
            await switch.complete("local/smollm2-135m", STORY, max_tokens=1000, timeout=0.5)
        # One request at a time (n_parallel=1): had the first kept generating, this would wait.
        started = time.monotonic()
        answer = await switch.complete("local/smollm2-135m", "Say hi.", max_tokens=4, seed=1)
        assert time.monotonic() - started < 5
        assert answer.usage.output_tokens == 4 and answer.finish_reason == "length"
    finally:
        await switch.aclose()


@pytest.mark.local_model
def test_cli_exits_soon_after_the_timeout(engine: LocalEngine, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMSWITCH_CONFIG"}
    env["LLMSWITCH_HOME"] = str(tmp_path)
    args = ["chat", "local/smollm2-135m", STORY, "--max-tokens", "1000", "--timeout", "1", "--json"]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["error"]["type"] == "timeout"
    assert elapsed < 6, f"the process took {elapsed:.1f}s to exit after a 1s timeout"
