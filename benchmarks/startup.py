"""Start-up cost: CPU time of common entry points above a bare interpreter.

Each command runs in a fresh process several times; the figure is the median CPU time (user +
system, from the child's rusage) minus the median of `python -c pass` (the fastest run is shown
too). CPU time, not wall time, but a machine busy with other work still inflates it (shared
caches), so the load average is recorded.

    python benchmarks/startup.py [--runs 9]   # table; writes benchmarks/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PY = sys.executable
CLI = [PY, "-m", "llmswitch.cli.main"]
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "python -c pass": ([PY, "-c", "pass"], None),
    "import llmswitch": ([PY, "-c", "import llmswitch"], 150.0),
    "llmswitch --help": ([*CLI, "--help"], 150.0),
    "llmswitch models --json": ([*CLI, "models", "--json"], 400.0),
    "from llmswitch import Switch": ([PY, "-c", "from llmswitch import Switch"], None),
    "Switch() + catalog lookup": ([PY, "-c", "from llmswitch import Switch; "
                                   "Switch().catalog.lookup('gpt-4o-mini')"], None),
}


def cpu_ms(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """CPU milliseconds (user + system) of one run of `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMSWITCH_")}
    with tempfile.TemporaryDirectory() as home:
        env["LLMSWITCH_HOME"] = home  # no config file, no ledger of the user's
        medians, lows = {}, {}
        for name, (argv, _) in COMMANDS.items():
            cpu_ms(argv, env, home)  # warm the file cache (and .pyc files)
            runs = [cpu_ms(argv, env, home) for _ in range(args.runs)]
            medians[name], lows[name] = statistics.median(runs), min(runs)
    load = os.getloadavg()[0]
    base = medians["python -c pass"]
    rows = []
    print(f"{'command':32} {'CPU ms':>8} {'above bare':>11} {'(min)':>7} {'target':>7}")
    for name, (_, target) in COMMANDS.items():
        above = medians[name] - base
        low = lows[name] - lows["python -c pass"]
        ok = "" if target is None else ("ok" if above < target else "OVER")
        print(f"{name:32} {medians[name]:8.1f} {above:11.1f} {low:7.1f} "
              f"{'' if target is None else f'<{target:.0f}':>7} {ok}")
        rows.append({"command": name, "cpu_ms": round(medians[name], 1),
                     "above_bare_ms": round(above, 1), "min_above_bare_ms": round(low, 1),
                     "target_ms": target})
    out = Path(__file__).parent / "results" / "startup.json"
    out.write_text(json.dumps({"python": sys.version.split()[0], "machine": platform.machine(),
                               "runs": args.runs, "load_average_1m": round(load, 2),
                               "cores": os.cpu_count(), "rows": rows}, indent=1) + "\n")
    print(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
