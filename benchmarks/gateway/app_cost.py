"""Where a gateway request's CPU goes: the app (ASGI, no HTTP server) vs the engine alone.

Starts the shared harness's mock upstream (benchmarks/fast_upstream.py) pinned to core 0,
then, pinned to core 1, sends the harness's `fast_json` body N times (C concurrent):

- `engine`: `Switch.complete` on the same route, ledger and traces on (what the engine
  costs; the transport is another module's business),
- `app`: the whole gateway app called as ASGI (body read, parse, key check, limits, the same
  `Switch.complete`, render, headers, metrics, access log), no HTTP server,
- `app-no-obs`: the app with metrics and the access log off (their cost = app - this),
- `switch-fake` / `app-fake` / `app-no-obs-fake`: the same over a fake model that answers at
  once (no HTTP): `app-fake - switch-fake` is the gateway's own cost, free of the engine's.

CPU µs per request = process CPU time (threads included: the ledger writer) / requests.
`--profile` prints a cProfile of the `app` point (top functions by own time).

    .venv/bin/python benchmarks/gateway/app_cost.py [--requests 4000] [--conc 64] [--stream]
                                                    [--kinds engine,app] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODY = json.dumps({"model": "mock-fast", "messages": [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly and precisely."},
    {"role": "user", "content": "Explain in two sentences what an LLM gateway does and why "
                                "its added latency matters for interactive chat applications."}],
    "temperature": 0.2, "max_tokens": 128}).encode()
KEY = "sk-bench-1234"
STREAM_BODY = json.dumps({**json.loads(BODY), "stream": True,
                          "stream_options": {"include_usage": True}}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(port: int, state: Path) -> dict[str, Any]:
    up = f"http://127.0.0.1:{port}/v1"
    card = {"context_window": 128000, "max_output_tokens": 4096, "input_per_mtok": 0.15,
            "output_per_mtok": 0.6}
    return {
        "providers": {"mockfast": {"base_url": up, "api_key": "sk-up", "timeout": 30}},
        "models": {"fast": {"provider": "mockfast", "name": "mock-fast", **card}},
        "routes": {"mock-fast": {"strategy": "fallback", "targets": ["fast"], "retries": 0}},
        "observe": {"ledger": str(state / "ledger.sqlite"), "traces": True},
        "gateway": {"access_log": str(state / "access.jsonl")},
    }


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def asgi_call(app: Any, stream: bool = False, key: str = KEY) -> int:
    body = STREAM_BODY if stream else BODY
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "headers": [(b"host", b"gw"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {key}".encode()),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5555)}
    await app(scope, receive, send)
    return status


async def drive(call: Any, n: int, conc: int) -> tuple[float, float]:
    """(CPU µs per request, requests/s) over n calls, conc at a time."""
    queue = iter(range(n))

    async def worker() -> None:
        for _ in queue:
            await call()

    await asyncio.gather(*(worker() for _ in range(min(conc, 8))))  # warm-up
    queue = iter(range(n))
    c0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return (cpu() - c0) / n * 1e6, n / (time.perf_counter() - t0)


async def point(kind: str, port: int, n: int, conc: int, profile: bool,
                stream: bool = False, virtual_key: bool = False) -> dict[str, Any]:
    from llmswitch.gateway.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(port, Path(tmp))
        if kind.startswith("app-no-obs"):
            cfg["gateway"]["access_log"] = False
        env = {"LLMSWITCH_ADMIN_KEY": KEY}
        if kind.endswith("fake"):
            from llmswitch import Switch
            from llmswitch.testing import FakeModel

            fake = FakeModel("mock-fast", [
                "An LLM gateway forwards requests to model providers. Latency matters."])
            app = create_app(switch=Switch(cfg, models={"mock-fast": fake}), env=env)
        else:
            app = create_app(cfg, env=env)
        if kind.startswith("app-no-obs"):
            app.metrics.observe = lambda *a, **k: None  # type: ignore[method-assign]
        messages = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Explain what an LLM gateway does."}]

        async def engine() -> None:
            if stream:
                async for _ in app.switch.stream("mock-fast", messages, temperature=0.2,
                                                 max_tokens=128):
                    pass
            else:
                await app.switch.complete("mock-fast", messages, temperature=0.2,
                                          max_tokens=128)

        key = KEY
        if virtual_key:  # a key from the store, with an RPM limit and a budget to check
            from llmswitch.gateway.keys import KeySpec

            assert app.access is not None and app.access.store is not None
            key, _ = app.access.store.create(KeySpec(name="bench", rpm=10**9, tpm=10**12,
                                                     budget_usd=10**6, period="day"))

        async def through_app() -> None:
            assert await asgi_call(app, stream, key) == 200

        call = engine if kind in ("engine", "switch-fake") else through_app
        prof = cProfile.Profile() if profile else None
        if prof:
            prof.enable()
        us, rps = await drive(call, n, conc)
        if prof:
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(35)
            print(out.getvalue())
        await app.aclose()
        return {"kind": kind, "cpu_us_per_req": round(us, 1), "rps": round(rps, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--conc", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--kinds", default="engine,app,app-no-obs")
    ap.add_argument("--stream", action="store_true", help="the streamed body (SSE)")
    ap.add_argument("--virtual-key", action="store_true",
                    help="send a virtual key with an RPM/TPM limit and a budget (else the "
                         "admin key)")
    ap.add_argument("--gc-threshold", help="gc.set_threshold(A, B, C) first: A,B,C")
    args = ap.parse_args()
    if args.gc_threshold:
        import gc

        gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
    port = free_port()
    mock = subprocess.Popen(["taskset", "-c", "0", sys.executable,
                             str(HERE.parent / "fast_upstream.py"), "--listen", f"{port}:0",
                             "--max-seconds", "900"], stdout=subprocess.DEVNULL)
    os.sched_setaffinity(0, {1})
    try:
        time.sleep(1.0)
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        results: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.rounds):
            for kind in args.kinds.split(","):
                r = runner(point(kind, port, args.requests, args.conc, args.profile
                                 and kind.startswith("app"), args.stream,
                                 args.virtual_key))
                results.setdefault(kind, []).append(r)
        for kind, rs in results.items():
            us = sorted(r["cpu_us_per_req"] for r in rs)
            rps = sorted(r["rps"] for r in rs)
            print(json.dumps({"kind": kind, "cpu_us_per_req_median": us[len(us) // 2],
                              "cpu_us_range": [us[0], us[-1]], "rps_median": rps[len(rps) // 2],
                              "requests": args.requests, "conc": args.conc,
                              "stream": args.stream, "virtual_key": args.virtual_key,
                              "gc_threshold": args.gc_threshold}))
    finally:
        mock.terminate()
        mock.wait(10)


if __name__ == "__main__":
    main()
