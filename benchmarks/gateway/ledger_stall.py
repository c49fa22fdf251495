"""Does a stalled ledger database leave the gateway's RSS higher, and does a second stall of
the same length grow it again?

Starts the gateway as soak.py does (under memwatch.py: RSS, heap and the ledger queue's
peak every second) and keeps `wrk` running against it (non-streamed body). At the times
given by `--stalls` it holds the SQLite ledger's write lock from another connection
(`BEGIN IMMEDIATE`) for that many seconds, the way a slow disk, a checkpoint or a backup
would; the writer waits (its busy timeout is 30 s) and calls queue up. Prints the RSS and
the queue's peak around each stall.

    .venv/bin/python benchmarks/gateway/ledger_stall.py --stalls 4,4,8,8 --gap 25
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from soak import HARNESS, KEY, free_port, memory, stop, wait_ready  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stalls", default="4,4,8,8", help="seconds of each stall, in order")
    ap.add_argument("--gap", type=float, default=25, help="seconds of load between stalls")
    ap.add_argument("--warmup", type=float, default=30)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", default="/tmp/llmswitch-ledger-stall.jsonl")
    args = ap.parse_args()
    stalls = [float(s) for s in args.stalls.split(",")]
    total = args.warmup + sum(s + args.gap for s in stalls)
    fast, port = free_port(), free_port()
    probe = Path(args.out).with_suffix(".mem.jsonl")
    probe.unlink(missing_ok=True)
    mock = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(HERE.parent /
                             "fast_upstream.py"), "--listen", f"{fast}:0", "--max-seconds",
                             str(total + 120)], stdout=subprocess.DEVNULL)
    env = {**os.environ, "BENCH_PORT": str(port), "BENCH_WORKERS": "1", "BENCH_API_KEY": KEY,
           "BENCH_UPSTREAM_FAST": f"http://127.0.0.1:{fast}/v1",
           "BENCH_UPSTREAM_SLOW": f"http://127.0.0.1:{fast}/v1",
           "LLMSWITCH_BENCH_SERVE": f"{sys.executable} {HERE / 'memwatch.py'} --every 1 "
                                    f"--types-every 100000 --out {probe} --",
           **dict(e.split("=", 1) for e in args.env)}
    gw = subprocess.Popen(["taskset", "-c", "1", str(HERE / "llmswitch-bench.sh")], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    ledger = Path(f"/tmp/llmswitch-bench-{port}/ledger.sqlite")
    events: list[dict[str, float]] = []
    wrk = None
    try:
        wait_ready(port)
        wrk = subprocess.Popen(
            ["taskset", "-c", "0", "wrk", "-t1", f"-c{args.conns}", f"-d{int(total) + 5}s",
             "--timeout", "30s", "-s", str(HARNESS / "post.lua"),
             f"http://127.0.0.1:{port}/v1/chat/completions"],
            env={**os.environ, "WRK_BODY_FILE": str(HARNESS / "bodies" / "fast_json.json"),
                 "WRK_AUTH": KEY}, stdout=subprocess.DEVNULL)
        started = time.monotonic()
        time.sleep(args.warmup)
        for seconds in stalls:
            before = memory(gw.pid)["rss_mib"]
            conn = sqlite3.connect(ledger, timeout=30, isolation_level=None)
            t0 = time.monotonic() - started
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            conn.close()
            time.sleep(args.gap)
            after = memory(gw.pid)["rss_mib"]
            events.append({"stall_s": seconds, "at_s": round(t0, 1), "rss_before": before,
                           "rss_after": after})
            print(json.dumps(events[-1]), flush=True)
    finally:
        if wrk is not None:
            wrk.terminate()
            wrk.wait(10)
        stop(gw, mock)
    points = [json.loads(line) for line in probe.read_text().splitlines()]
    for e in events:
        window = [p for p in points if e["at_s"] - 1 <= p["t"] <= e["at_s"] + e["stall_s"] + 3]
        e["q_max"] = max((p["q_max"] for p in window), default=0)
    with open(args.out, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    print(json.dumps({"stalls": events, "probe": str(probe)}))


if __name__ == "__main__":
    main()
