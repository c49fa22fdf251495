"""Engine throughput: `Switch.complete` / `Switch.stream` beside raw HTTP clients, one run.

Every candidate sends the same Chat Completions request to the same fast mock upstream
(`benchmarks/fast_upstream.py`, a copy of the shared gateway harness's mock) at 1, 8 and 64
concurrent, in its own process pinned to one core (`taskset -c 1`) while the mock runs on the
other (`taskset -c 0`). Rounds are interleaved (every candidate once per round, the order
rotated each round) and the medians over rounds are reported, so a busy machine slows every
candidate alike. Compare candidates only within one run.

Per point: requests/s, CPU µs per request (the whole process's CPU time, threads included:
the ledger writer counts, and the ledger is flushed before the point's CPU is read), p50/p99
latency, RSS; for streams also CPU µs per relayed event. Each point is bounded by a request
count and by seconds.

    .venv/bin/python benchmarks/engine.py                    # all candidates, 3 rounds
    .venv/bin/python benchmarks/engine.py --quick            # 1 round, fewer requests
    .venv/bin/python benchmarks/engine.py --soak 200000      # RSS of Switch.complete over N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = "gpt-4o-mini"
PROMPT = ("Explain in two sentences what an LLM gateway does and why its added latency "
          "matters for interactive chat applications.")
SYSTEM = "You are a helpful assistant. Answer briefly and precisely."
CONCURRENCY = (1, 8, 64)
REQUESTS = {1: 1000, 8: 2000, 64: 4000}
RAW = ("aiohttp", "httpx", "httpx+aiohttp", "pyreqwest")
SWITCH = ("switch", "switch/httpx", "switch/no-ledger")
CANDIDATES = RAW + SWITCH
OPTIONAL = {"pyreqwest": "pyreqwest", "httpx+aiohttp": "httpx_aiohttp"}
"""Candidates whose client is not a dependency of llmswitch: skipped, named, when missing."""


def body(stream: bool) -> bytes:
    """The request body `Switch` sends for the same call (raw clients send it too)."""
    data: dict[str, Any] = {"model": MODEL, "messages": [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "temperature": 0.2, "max_completion_tokens": 128}
    if stream:
        data |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(data, separators=(",", ":")).encode()


HEADERS = {"content-type": "application/json", "accept": "application/json",
           "authorization": "Bearer sk-bench"}


class SSECounter:
    """What any streaming client has to do: split events, decode each `data:` JSON."""

    def __init__(self) -> None:
        self.pending = b""
        self.events = 0

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *frames, self.pending = self.pending.split(b"\n\n")
        for frame in frames:
            if frame.startswith(b"data: ") and frame[6:] != b"[DONE]":
                json.loads(frame[6:])
                self.events += 1


# -- the candidates (each: setup, one call, close) -----------------------------------------
class Candidate:
    """A client under test; `call(stream)` returns the number of events (1 for JSON)."""

    def __init__(self, url: str, conc: int) -> None:
        self.url = url
        self.conc = conc
        self.endpoint = url + "/chat/completions"

    async def call(self, stream: bool) -> int:
        raise NotImplementedError

    async def flush(self) -> None:
        """Finish background work that the calls caused (the ledger's writes)."""

    async def close(self) -> None:
        pass


class Aiohttp(Candidate):
    def __init__(self, url: str, conc: int) -> None:
        super().__init__(url, conc)
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def call(self, stream: bool) -> int:
        async with self.session.post(self.endpoint, data=body(stream), headers=HEADERS) as r:
            if not stream:
                assert json.loads(await r.read())["choices"]
                return 1
            sse = SSECounter()
            async for chunk in r.content.iter_any():
                sse.feed(chunk)
            return sse.events

    async def close(self) -> None:
        await self.session.close()


class Httpx(Candidate):
    def __init__(self, url: str, conc: int, transport: Any = None) -> None:
        super().__init__(url, conc)
        import httpx

        self.client = httpx.AsyncClient(
            transport=transport, trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))

    async def call(self, stream: bool) -> int:
        if not stream:
            r = await self.client.post(self.endpoint, content=body(stream), headers=HEADERS)
            assert json.loads(r.content)["choices"]
            return 1
        async with self.client.stream("POST", self.endpoint, content=body(stream),
                                      headers=HEADERS) as r:
            sse = SSECounter()
            async for chunk in r.aiter_bytes():
                sse.feed(chunk)
            return sse.events

    async def close(self) -> None:
        await self.client.aclose()


class HttpxAiohttp(Httpx):
    def __init__(self, url: str, conc: int) -> None:
        from httpx_aiohttp import AiohttpTransport

        super().__init__(url, conc, AiohttpTransport())


class Pyreqwest(Candidate):
    def __init__(self, url: str, conc: int) -> None:
        super().__init__(url, conc)
        from pyreqwest.client import ClientBuilder

        self.client = ClientBuilder().max_connections(100).build()

    async def call(self, stream: bool) -> int:
        builder = self.client.post(self.endpoint).headers(HEADERS).body_bytes(body(stream))
        if not stream:
            r = await builder.build().send()
            assert json.loads(bytes(await r.bytes()))["choices"]
            return 1
        async with builder.build_streamed() as r:
            sse = SSECounter()
            reader = r.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                sse.feed(bytes(chunk))
            return sse.events

    async def close(self) -> None:
        await self.client.close()


class SwitchCandidate(Candidate):
    """`Switch.complete`/`stream` with the default transport, ledger and traces on (the
    defaults); `/httpx` forces the httpx transport; `/no-ledger` turns observers off."""

    def __init__(self, url: str, conc: int, name: str, ledger_dir: str) -> None:
        super().__init__(url, conc)
        from llmswitch import Switch

        observe: dict[str, Any] = ({"ledger": False, "otel": False} if name.endswith("ledger")
                                   else {"ledger": str(Path(ledger_dir) / "ledger.sqlite")})
        transports = None
        if name.endswith("/httpx"):
            import httpx

            transports = {"openai": httpx.AsyncHTTPTransport}
        self.switch = Switch({"providers": {"openai": {"base_url": url}}, "observe": observe},
                             env={"OPENAI_API_KEY": "sk-bench"}, transports=transports)

    async def call(self, stream: bool) -> int:
        from llmswitch import StreamEnd, TextDelta

        kw = {"system": SYSTEM, "temperature": 0.2, "max_tokens": 128}
        if not stream:
            done = await self.switch.complete("openai/" + MODEL, PROMPT, **kw)
            assert done.text
            return 1
        events = 0
        end = None
        async for event in self.switch.stream("openai/" + MODEL, PROMPT, **kw):
            if isinstance(event, TextDelta):
                events += 1
            elif isinstance(event, StreamEnd):
                end = event
        assert end is not None and end.completion.text
        return events + 3  # the role, finish and usage chunks relayed no text

    async def flush(self) -> None:
        for observer in self.switch.observers:
            flush = getattr(observer, "flush", None)
            if flush is not None:
                await asyncio.to_thread(flush)

    async def close(self) -> None:
        await self.switch.aclose()


def make(name: str, url: str, conc: int, ledger_dir: str) -> Candidate:
    if name.startswith("switch"):
        return SwitchCandidate(url, conc, name, ledger_dir)
    return {"aiohttp": Aiohttp, "httpx": Httpx, "httpx+aiohttp": HttpxAiohttp,
            "pyreqwest": Pyreqwest}[name](url, conc)


# -- one point ------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * q / 100))]


async def drive(call: Callable[[], Awaitable[int]], conc: int, n: int,
                seconds: float) -> tuple[list[float], int]:
    """Closed loops: `conc` workers, each sends its next call when the last one ends."""
    latencies: list[float] = []
    left = [n]
    events = [0]
    stop = time.monotonic() + seconds

    async def worker() -> None:
        while left[0] > 0 and time.monotonic() < stop:
            left[0] -= 1
            started = time.perf_counter()
            got = await call()
            events[0] += got
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(conc)))
    return latencies, events[0]


async def point(cand: Candidate, stream: bool, conc: int, n: int,
                seconds: float) -> dict[str, Any]:
    await drive(lambda: cand.call(stream), conc, max(50, n // 10), seconds / 4)  # warm-up
    await cand.flush()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    latencies, events = await drive(lambda: cand.call(stream), conc, n, seconds)
    wall = time.perf_counter() - wall0
    await cand.flush()  # the ledger rows of these calls are written on our CPU too
    cpu = time.process_time() - cpu0
    done = len(latencies)
    out = {"requests": done, "rps": round(done / wall, 1),
           "cpu_us_per_req": round(cpu / done * 1e6, 1),
           "p50_ms": round(pct(latencies, 50) * 1000, 3),
           "p99_ms": round(pct(latencies, 99) * 1000, 3), "rss_mb": round(rss_mb(), 1)}
    if stream:
        out["events_per_stream"] = round(events / done, 1)
        out["cpu_us_per_event"] = round(cpu / events * 1e6, 2)
    return out


async def worker_main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as ledger_dir:
        for conc in args.conc:
            cand = make(args.worker, args.url, conc, ledger_dir)
            try:
                results[str(conc)] = await point(cand, args.mode == "stream", conc,
                                                 args.requests or REQUESTS[conc], args.seconds)
            finally:
                await cand.close()
    return results


async def soak_main(args: argparse.Namespace) -> dict[str, Any]:
    """RSS every 10,000 `Switch.complete` calls at 64 concurrent (ledger and traces on)."""
    series = []
    with tempfile.TemporaryDirectory() as ledger_dir:
        cand = make("switch", args.url, 64, ledger_dir)
        started = time.perf_counter()
        try:
            for _ in range(0, args.soak, 10_000):
                await drive(lambda: cand.call(False), 64, 10_000, args.seconds * 10)
                await cand.flush()
                series.append(round(rss_mb(), 1))
                if time.perf_counter() - started > args.soak_seconds:
                    break
        finally:
            await cand.close()
    done = len(series) * 10_000
    return {"requests": done, "rss_mb_per_10000": series,
            "growth_after_first_20000_mb": round(series[-1] - series[min(1, len(series) - 1)],
                                                 1),
            "seconds": round(time.perf_counter() - started, 1)}


# -- the orchestrator -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


@contextlib.contextmanager
def mock_upstream() -> Any:
    port = free_port()
    proc = subprocess.Popen(
        [*pinned(0), sys.executable, str(HERE / "fast_upstream.py"), "--listen", f"{port}:0",
         "--max-seconds", "7200"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "listening on ..."
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def run_worker(name: str, mode: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [*pinned(1), sys.executable, __file__, "--worker", name, "--mode", mode,
            "--url", url, "--seconds", str(args.seconds),
            "--conc", ",".join(map(str, args.conc))]
    if args.requests:
        argv += ["--requests", str(args.requests)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise RuntimeError(f"{name} {mode} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarize(rounds: list[dict[str, Any]], names: list[str], modes: list[str],
              concs: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in modes:
        for name in names:
            for conc in concs:
                points = [r[mode][name][str(conc)] for r in rounds if name in r[mode]]
                if not points:
                    continue
                keys = points[0].keys()
                out.setdefault(mode, {}).setdefault(name, {})[str(conc)] = {
                    k: round(statistics.median(p[k] for p in points), 2) for k in keys}
    return out


def ratios(medians: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for mode, by_name in medians.items():
        raw, ours = by_name.get("aiohttp", {}), by_name.get("switch", {})
        if "64" not in raw or "64" not in ours:
            continue
        r, s = raw["64"], ours["64"]
        found[mode] = {"rps_ratio_c64": round(s["rps"] / r["rps"], 3),
                       "cpu_ratio_c64": round(s["cpu_us_per_req"] / r["cpu_us_per_req"], 3),
                       "library_cpu_us_per_req_c64": round(
                           s["cpu_us_per_req"] - r["cpu_us_per_req"], 1)}
        if mode == "stream":
            found[mode]["library_cpu_us_per_event_c64"] = round(
                s["cpu_us_per_event"] - r["cpu_us_per_event"], 2)
    return found


def table(medians: dict[str, Any], concs: list[int]) -> str:
    lines = []
    for mode, by_name in medians.items():
        lines.append(f"\n{mode}")
        head = "| client | " + " | ".join(f"req/s c={c}" for c in concs)
        head += " | CPU µs/req c=64 | p50 ms c=64 | p99 ms c=64 | RSS MB |"
        if mode == "stream":
            head += " CPU µs/event c=64 |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for name, points in by_name.items():
            last = points[str(concs[-1])]
            row = f"| {name} | " + " | ".join(f"{points[str(c)]['rps']:,.0f}" for c in concs)
            row += (f" | {last['cpu_us_per_req']:,.0f} | {last['p50_ms']:.2f} | "
                    f"{last['p99_ms']:.2f} | {last['rss_mb']:.0f} |")
            if mode == "stream":
                row += f" {last['cpu_us_per_event']:.2f} |"
            lines.append(row)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="complete", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0, help="cap per point")
    ap.add_argument("--requests", type=int, default=0, help="per point (default by c)")
    ap.add_argument("--conc", type=lambda s: [int(x) for x in s.split(",")],
                    default=list(CONCURRENCY))
    ap.add_argument("--only", default=",".join(CANDIDATES), help="candidates, comma-separated")
    ap.add_argument("--modes", default="complete,stream")
    ap.add_argument("--quick", action="store_true", help="1 round, 1,000 requests per point")
    ap.add_argument("--soak", type=int, default=0, help="RSS over N Switch.complete calls")
    ap.add_argument("--soak-seconds", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "engine.json")
    args = ap.parse_args()
    if args.worker:
        runner = soak_main if args.worker == "soak" else worker_main
        print(json.dumps(asyncio.run(runner(args))))
        return
    if args.quick:
        args.rounds, args.requests = 1, args.requests or 1000
    names = [n for n in args.only.split(",") if n]
    for name, module in OPTIONAL.items():
        if name in names and importlib.util.find_spec(module) is None:
            names.remove(name)
            print(f"skipping {name}: `.venv/bin/pip install {module.replace('_', '-')}` to "
                  "measure it", file=sys.stderr)
    modes = [m for m in args.modes.split(",") if m]
    load_start = os.getloadavg()
    rounds: list[dict[str, Any]] = []
    with mock_upstream() as url:
        if args.soak:
            argv = [*pinned(1), sys.executable, __file__, "--worker", "soak", "--url", url,
                    "--soak", str(args.soak), "--seconds", str(args.seconds),
                    "--soak-seconds", str(args.soak_seconds)]
            done = subprocess.run(argv, capture_output=True, text=True, check=True,
                                  timeout=args.soak_seconds + 600)
            soak = json.loads(done.stdout.strip().splitlines()[-1])
            soak["loadavg"] = [load_start, os.getloadavg()]
            print(json.dumps(soak, indent=1))
            path = args.out.with_name("engine_soak.json")
            path.write_text(json.dumps(soak, indent=1) + "\n")
            return
        for i in range(args.rounds):
            order = names[i % len(names):] + names[:i % len(names)]  # rotate: A B C, B C A
            this: dict[str, Any] = {m: {} for m in modes}
            for name in order:
                for mode in modes:
                    this[mode][name] = run_worker(name, mode, url, args)
                    print(f"round {i + 1} {mode:<8} {name:<17} "
                          + "  ".join(f"c={c}: {p['rps']:>7,.0f}/s {p['cpu_us_per_req']:>6,.0f}µs"
                                      for c, p in this[mode][name].items()),
                          file=sys.stderr, flush=True)
            this["loadavg_1m"] = os.getloadavg()[0]
            rounds.append(this)
    medians = summarize(rounds, names, modes, args.conc)
    result = {"medians": medians, "ratios_vs_aiohttp": ratios(medians), "rounds": rounds,
              "settings": {"rounds": args.rounds, "seconds_cap": args.seconds,
                           "requests": args.requests or REQUESTS, "conc": args.conc,
                           "pinned": bool(pinned(1))},
              "machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count(), "loadavg_start": load_start,
                          "loadavg_end": os.getloadavg()}}
    print(table(medians, args.conc))
    print(json.dumps(result["ratios_vs_aiohttp"], indent=1))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
