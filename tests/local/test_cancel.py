"""A local request that times out or is cancelled stops generating (real model).

Before the fix a non-streaming request ran in a thread that could not be stopped: the timeout
was reported, but the process only exited when generation ended (~35 s for 1,000 tokens).
These tests assert the behaviour (the error, the engine's stop, the engine free again); how
soon it stops on an idle or busy machine is measured by `benchmarks/first_run.py --stop`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmswitch import Switch
from llmswitch.errors import TimeoutError as LlmTimeoutError
from llmswitch.local import LocalEngine

STORY = "Write a very long story about a dragon and a knight."


async def _stopped(engine: LocalEngine, count: int) -> bool:
    for _ in range(600):  # a bound, not a target: the stop itself is asserted
        if engine.stopped >= count:
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.local_model
async def test_timed_out_json_request_stops_and_frees_the_engine(engine: LocalEngine) -> None:
    switch = Switch({}, observers=[], env={})
    before = engine.stopped
    try:
        with pytest.raises(LlmTimeoutError):
            await switch.complete("local/smollm2-135m", STORY, max_tokens=1000, timeout=0.5)
        assert await _stopped(engine, before + 1), "the timed-out generation was never stopped"
        # One request at a time (n_parallel=1): the engine answers the next one in full.
        answer = await switch.complete("local/smollm2-135m", "Say hi.", max_tokens=4, seed=1)
        assert answer.usage.output_tokens == 4 and answer.finish_reason == "length"
    finally:
        await switch.aclose()


@pytest.mark.local_model
async def test_cancelled_stream_stops_the_engine(engine: LocalEngine) -> None:
    switch = Switch({}, observers=[], env={})
    before = engine.stopped
    try:
        async def read() -> None:
            async for _ in switch.stream("local/smollm2-135m", STORY, max_tokens=1000):
                reading.set()

        reading = asyncio.Event()
        task = asyncio.create_task(read())
        await asyncio.wait_for(reading.wait(), 120)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _stopped(engine, before + 1), "the cancelled generation was never stopped"
    finally:
        await switch.aclose()


@pytest.mark.local_model
def test_cli_timeout_is_a_json_timeout_error_and_the_process_exits(
    engine: LocalEngine, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMSWITCH_CONFIG"}
    env["LLMSWITCH_HOME"] = str(tmp_path)
    args = ["chat", "local/smollm2-135m", STORY, "--max-tokens", "1000", "--timeout", "1", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "timeout" and "1s" in error["message"], error
    assert "Traceback" not in result.stderr
