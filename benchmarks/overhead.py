"""In-process overhead of one completion through llmswitch versus a raw HTTP call.

Both sides send the same request to the same local server over one pooled client, so the
difference is what llmswitch adds: building the request, mapping the response, cost, the trace,
and (when on, the default) queueing the spend-ledger write. The server is an in-process
responder (httpx.MockTransport, plugged into both sides) and a real loopback HTTP server (raw
side: aiohttp, the client llmswitch uses), so the figure is shown without and with socket
noise. The ledger's database work runs on its own thread in the same process.

    python benchmarks/overhead.py    # prints a table; writes benchmarks/results/overhead.json
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from llmswitch import Switch

BODY = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello! How can I help you today?"}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18,
              "prompt_tokens_details": {"cached_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0}},
}).encode()
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}],
           "max_completion_tokens": 50}
N = 3000
WARMUP = 300


def mock_transport() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(
        200, content=BODY, headers={"content-type": "application/json"}))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


async def time_raw(client: Any, url: str, n: int) -> list[float]:
    out = []
    headers = {"authorization": "Bearer k", "content-type": "application/json"}
    for _ in range(n):
        t = time.perf_counter()
        if isinstance(client, httpx.AsyncClient):
            data = (await client.post(url, json=REQUEST, headers=headers)).json()
        else:  # aiohttp
            async with client.post(url, data=json.dumps(REQUEST), headers=headers) as r:
                data = json.loads(await r.read())
        assert data["choices"][0]["message"]["content"]
        out.append(time.perf_counter() - t)
    return out


async def time_switch(switch: Switch, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        done = await switch.complete("openai/gpt-4o-mini", "Say hello", max_tokens=50)
        assert done.text
        out.append(time.perf_counter() - t)
    return out


async def measure(
    base_url: str, transport: httpx.AsyncBaseTransport | None, ledger: bool
) -> dict[str, float]:
    observe = {} if ledger else {"ledger": False}
    switch = Switch({"providers": {"openai": {"base_url": base_url}}, "observe": observe},
                    env={"OPENAI_API_KEY": "k"},
                    transports={"openai": (lambda: transport)} if transport else None)
    import aiohttp

    session: Any = (httpx.AsyncClient(transport=transport, trust_env=False) if transport
                    else aiohttp.ClientSession())
    async with session as client:
        url = base_url + "/chat/completions"
        await time_raw(client, url, WARMUP)
        await time_switch(switch, WARMUP)
        raw, ours = [], []
        for _ in range(5):  # interleave to spread machine noise evenly
            raw += await time_raw(client, url, N // 5)
            ours += await time_switch(switch, N // 5)
    await switch.aclose()
    raw_us = statistics.median(raw) * 1e6
    ours_us = statistics.median(ours) * 1e6
    return {"raw_median_us": round(raw_us, 1), "llmswitch_median_us": round(ours_us, 1),
            "added_us": round(ours_us - raw_us, 1)}


def main() -> None:
    results: dict[str, Any] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    loopback = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        for ledger in (False, True):
            suffix = "ledger_on" if ledger else "ledger_off"
            results[f"in_process_{suffix}"] = asyncio.run(
                measure("http://bench.local/v1", mock_transport(), ledger))
            results[f"loopback_{suffix}"] = asyncio.run(measure(loopback, None, ledger))
    finally:
        server.shutdown()
    results["calls_per_side"] = N
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "loadavg_1m": os.getloadavg()[0]}
    print(f"{'transport':<24}{'raw µs':>10}{'llmswitch µs':>15}{'added µs':>11}")
    for name, r in results.items():
        if isinstance(r, dict) and "added_us" in r:
            print(f"{name:<24}{r['raw_median_us']:>10}{r['llmswitch_median_us']:>15}"
                  f"{r['added_us']:>11}")
    out = Path(__file__).parent / "results" / "overhead.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
