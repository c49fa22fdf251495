"""RSS of `llmswitch serve` over a long run: does memory stay flat over N requests?

Starts the harness's mock upstream (core 0) and the gateway as the harness runs it
(`llmswitch-bench.sh`: routing, ledger + traces, key check, access log; one worker, core 1),
then drives `wrk` (core 0) in chunks of `--chunk` seconds, mixing the non-streamed and the
streamed body, until `--requests` requests were answered or `--max-seconds` passed. After
each chunk it records the requests so far, the gateway's RSS (VmRSS), errors, and the ledger
rows written and dropped (from /metrics: requests - written = the writer's backlog). Prints one
JSON object per chunk and a summary: RSS after warm-up, at the end, and the growth.

    .venv/bin/python benchmarks/gateway/soak.py --requests 1000000 --max-seconds 3000

`--env NAME=VALUE` sets the gateway's environment (`MALLOC_ARENA_MAX=2`, `PYTHONMALLOC=malloc`),
`--memwatch FILE` runs it under memwatch.py (a probe of where the memory is), `--out FILE`
appends the points to a JSON-lines file as well.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = Path(os.environ.get("LLMSWITCH_BENCH_HARNESS", "/work/shared/bench/gateway"))
KEY = "sk-bench-1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory(pid: int) -> dict[str, float]:
    """RSS and its parts (MiB): anonymous (heap, Python's arenas), file, shared memory."""
    names = {"VmRSS": "rss_mib", "RssAnon": "anon_mib", "RssFile": "file_mib",
             "RssShmem": "shmem_mib"}
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in names:
            out[names[name]] = round(int(rest.split()[0]) / 1024, 1)
    return out


def wait_ready(port: int, timeout: float = 60) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                if b"200" in s.recv(100):
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the gateway did not answer on port {port}")


def ledger_figures(port: int) -> dict[str, float]:
    """Ledger rows written and dropped so far, from the gateway's /metrics."""
    out: dict[str, float] = {}
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return out
    for line in data.decode(errors="replace").splitlines():
        for name in ("written", "dropped"):
            if line.startswith(f"llmswitch_ledger_rows_{name}_total{{"):
                out[name] = out.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return out


def wrk(port: int, body: Path, seconds: int, conns: int) -> tuple[int, int]:
    """(requests, errors) of one wrk chunk."""
    env = {**os.environ, "WRK_BODY_FILE": str(body), "WRK_AUTH": KEY}
    out = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(HARNESS / "post.lua"), f"http://127.0.0.1:{port}/v1/chat/completions"],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=False).stdout
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        return 0, 1
    data = json.loads(m.group(1))
    errors = sum(data[k] for k in data if k.startswith("err_"))
    return int(data["requests"]), int(errors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=3000)
    ap.add_argument("--chunk", type=int, default=20)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--bodies", choices=("mix", "json", "sse"), default="mix")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--memwatch", metavar="FILE")
    ap.add_argument("--out", metavar="FILE")
    args = ap.parse_args()
    fast, slow, port = free_port(), free_port(), free_port()
    mock = subprocess.Popen(["taskset", "-c", "0", sys.executable, str(HERE.parent /
                             "fast_upstream.py"), "--listen", f"{fast}:0", "--listen",
                             f"{slow}:50:5", "--max-seconds", str(args.max_seconds + 120)],
                            stdout=subprocess.DEVNULL)
    env = {**os.environ, "BENCH_PORT": str(port), "BENCH_WORKERS": "1", "BENCH_API_KEY": KEY,
           "BENCH_UPSTREAM_FAST": f"http://127.0.0.1:{fast}/v1",
           "BENCH_UPSTREAM_SLOW": f"http://127.0.0.1:{slow}/v1",
           **dict(e.split("=", 1) for e in args.env)}
    if args.memwatch:
        env["LLMSWITCH_BENCH_SERVE"] = (f"{sys.executable} {HERE / 'memwatch.py'} --out "
                                        f"{Path(args.memwatch).resolve()} --")
    gw = subprocess.Popen(["taskset", "-c", "1", str(HERE / "llmswitch-bench.sh")], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    bodies = {"mix": [HARNESS / "bodies" / "fast_json.json",
                      HARNESS / "bodies" / "fast_sse.json"],
              "json": [HARNESS / "bodies" / "fast_json.json"],
              "sse": [HARNESS / "bodies" / "fast_sse.json"]}[args.bodies]
    sink = open(args.out, "a", buffering=1) if args.out else None  # noqa: SIM115
    if sink:
        sink.write(json.dumps({"args": vars(args), "started": time.time()}) + "\n")
    total = errors = 0
    started = time.monotonic()
    points = []
    try:
        wait_ready(port)
        pid = gw.pid  # taskset and the script exec the server: same process
        i = 0
        while total < args.requests and time.monotonic() - started < args.max_seconds:
            n, e = wrk(port, bodies[i % len(bodies)], args.chunk, args.conns)
            i += 1
            total, errors = total + n, errors + e
            ledger = ledger_figures(port)
            point = {"requests": total, "errors": errors, **memory(pid),
                     "seconds": round(time.monotonic() - started),
                     "load": round(os.getloadavg()[0], 1),
                     "ledger_written": ledger.get("written"),
                     "ledger_dropped": ledger.get("dropped")}
            points.append(point)
            print(json.dumps(point), flush=True)
            if sink:
                sink.write(json.dumps(point) + "\n")
        warm = points[min(2, len(points) - 1)]
        summary = {"summary": True, "requests": total, "errors": errors,
                   "rss_after_warmup_mib": warm["rss_mib"],
                   "rss_at_warmup_requests": warm["requests"],
                   "rss_end_mib": points[-1]["rss_mib"],
                   "rss_max_mib": max(p["rss_mib"] for p in points),
                   "growth_mib": round(points[-1]["rss_mib"] - warm["rss_mib"], 1),
                   "seconds": points[-1]["seconds"]}
        print(json.dumps(summary), flush=True)
        if sink:
            sink.write(json.dumps(summary) + "\n")
    finally:
        stop(gw, mock)


def stop(gw: subprocess.Popen[bytes], mock: subprocess.Popen[bytes]) -> None:
    """Stop the gateway's process group (SIGTERM, then SIGKILL after 60 s) and the mock."""
    os.killpg(gw.pid, signal.SIGTERM)
    try:
        gw.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(gw.pid, signal.SIGKILL)
    mock.terminate()
    mock.wait(10)


if __name__ == "__main__":
    main()
