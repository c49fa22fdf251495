"""The README's first command, as a new user runs it: answers, and how fast, idle and busy.

Runs the `llmswitch chat ...` command from the README's "Run it" block (read from README.md,
so the two cannot drift) `--runs` times in fresh processes with nothing else of ours running,
then `--runs` times with two busy-loop processes competing for the cores. Each run is a new
process: import, model load and answer, as on a first run. A run is correct when its answer
contains "Paris". Targets: every answer correct in both conditions, idle p50 under 3 s, busy
max under 20 s. The load average is recorded with every run (the machine is shared).

With `--stop` it also measures how soon a local generation stops after a cancel or a timeout
(target: under 1 s, idle and busy), in-process, from the moment the caller gives up to the
moment the engine reports the stop.

    .venv/bin/python benchmarks/first_run.py [--runs 10] [--stop] [--out FILE]

Every busy loop ends by itself after `--busy-seconds` and is also killed by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "first_run.json"
STORY = "Write a very long story about a dragon and a knight."
BUSY_LOOP = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


def readme_chat_command(readme: Path = ROOT / "README.md") -> list[str]:
    """The `llmswitch chat ...` part of the README's "Run it" command, as argv."""
    text = readme.read_text()
    match = re.search(r"\*\*Run it\*\*.*?```bash\n(.*?)```", text, re.S)
    if match is None:
        raise SystemExit("README.md has no **Run it** bash block")
    for part in match.group(1).strip().split(" && "):
        argv = shlex.split(part)
        if argv and argv[0].endswith("llmswitch") and argv[1:2] == ["chat"]:
            return argv
    raise SystemExit("the README's Run it block has no `llmswitch chat` command")


@contextmanager
def busy_loops(count: int, seconds: float) -> Iterator[list[int]]:
    """`count` CPU-bound processes, each ending by itself after `seconds`; killed by PID."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(seconds=seconds)])
             for _ in range(count)]
    try:
        time.sleep(1.0)  # let them take the cores
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def run_cli(argv: list[str], home: str, timeout: float) -> dict[str, Any]:
    """One fresh process; wall time, exit code, answer, load average before it started."""
    env = {k: v for k, v in os.environ.items() if k != "LLMSWITCH_CONFIG"}
    env["LLMSWITCH_HOME"] = home  # keep the ledger out of the user's home
    load = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        code, out, err = done.returncode, done.stdout.strip(), done.stderr.strip()
    except subprocess.TimeoutExpired:
        code, out, err = None, "", f"no exit within {timeout:g}s"
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 3), "exit": code, "answer": out[:300], "stderr": err[-300:],
            "correct": code == 0 and "paris" in out.lower(), "loadavg_1m": round(load, 2)}


def summary(runs: list[dict[str, Any]], key: str = "wall_s") -> dict[str, Any]:
    """Correct answers, p50 and max wall time, load averages seen."""
    times = [r[key] for r in runs]
    loads = [r["loadavg_1m"] for r in runs]
    ok = sum(bool(r["correct"] if "correct" in r else r["stopped"]) for r in runs)
    return {"runs": len(runs), "correct": ok,
            "p50_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
            "loadavg_1m_min": min(loads), "loadavg_1m_max": max(loads)}


def close_engines() -> None:
    """Forget this process's loaded local models."""
    from llmswitch.local import close_engines as close

    close()


async def stop_latency(kind: str) -> dict[str, Any]:
    """Seconds from giving up (cancel or timeout) to the engine reporting the stop."""
    from llmswitch import Switch
    from llmswitch.errors import TimeoutError as LlmTimeoutError
    from llmswitch.local import default_smollm2_path, get_engine

    engine = get_engine(default_smollm2_path())
    engine.load()
    before = engine.stopped
    load = os.getloadavg()[0]
    switch = Switch({}, observers=[], env={})
    try:
        if kind == "cancel":
            reading = asyncio.Event()

            async def read() -> None:
                async for _ in switch.stream("local/smollm2-135m", STORY, max_tokens=1000):
                    reading.set()

            task = asyncio.create_task(read())
            await asyncio.wait_for(reading.wait(), 120)
            await asyncio.sleep(0.3)
            task.cancel()
            gave_up = time.perf_counter()
            with suppress(asyncio.CancelledError):
                await task
        else:
            with suppress(LlmTimeoutError):
                await switch.complete("local/smollm2-135m", STORY, max_tokens=1000, timeout=1.5)
            gave_up = time.perf_counter()
        while engine.stopped == before and time.perf_counter() - gave_up < 60:
            await asyncio.sleep(0.005)
        stopped = engine.stopped > before
        return {"kind": kind, "stopped": stopped, "threads": engine.n_threads,
                "wall_s": round(time.perf_counter() - gave_up, 3), "loadavg_1m": round(load, 2)}
    finally:
        await switch.aclose()


def measure(args: argparse.Namespace, argv: list[str], home: str, label: str) -> dict[str, Any]:
    """The CLI runs and, with --stop, the stop latencies, in the current condition."""
    print(f"{label}: load average {os.getloadavg()[0]:.2f}", flush=True)
    runs = []
    for i in range(args.runs):
        run = run_cli(argv, home, args.run_timeout)
        runs.append(run)
        print(f"  {label} run {i + 1}: {run['wall_s']:.2f}s correct={run['correct']} "
              f"load={run['loadavg_1m']} {run['answer'][:70]!r}", flush=True)
    result: dict[str, Any] = {"summary": summary(runs), "runs": runs}
    if args.stop:
        stops = [asyncio.run(stop_latency(kind)) for kind in ("cancel", "timeout")
                 for _ in range(args.stop_runs)]
        for stop in stops:
            print(f"  {label} stop after {stop['kind']}: {stop['wall_s']:.3f}s "
                  f"stopped={stop['stopped']} threads={stop['threads']}", flush=True)
        result["stop"] = {"summary": summary(stops), "runs": stops}
        close_engines()  # the next condition loads again, choosing its threads then
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--stop", action="store_true", help="also measure stop latency")
    parser.add_argument("--stop-runs", type=int, default=3)
    parser.add_argument("--run-timeout", type=float, default=120.0)
    parser.add_argument("--busy-seconds", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    argv = readme_chat_command()
    if not Path(ROOT, argv[0]).exists() and "/" in argv[0]:
        raise SystemExit(f"{argv[0]} not found: install as the README says first")
    print("command:", shlex.join(argv))
    result: dict[str, Any] = {"command": shlex.join(argv), "machine": {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="llmswitch-first-run-") as home:
        result["idle"] = measure(args, argv, home, "idle")
        with busy_loops(2, args.busy_seconds) as pids:
            result["busy_loop_pids"] = pids
            result["busy"] = measure(args, argv, home, "busy (2 busy loops)")
    for label in ("idle", "busy"):
        s = result[label]["summary"]
        print(f"{label}: {s['correct']}/{s['runs']} correct, p50 {s['p50_s']:.2f}s, "
              f"max {s['max_s']:.2f}s, load average {s['loadavg_1m_min']}-{s['loadavg_1m_max']}")
        if "stop" in result[label]:
            t = result[label]["stop"]["summary"]
            print(f"{label}: stop after cancel/timeout p50 {t['p50_s']:.3f}s, "
                  f"max {t['max_s']:.3f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
