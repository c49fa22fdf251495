"""Frame decoders over bodies of 1k, 10k and 100k events: time must grow linearly.

Each decoder (SSE, NDJSON, Gemini's streamed JSON array, Bedrock's event stream) gets the same
events as one whole body (how non-streamed bodies reach it) and in 4 KiB reads (a stream).
Events are Chat Completions deltas (119 bytes as SSE: 20,000 events are the issue's 2.4 MB).
The garbage collector is paused while a decoder runs, so the figure is the decoder's own cost.

    python benchmarks/framing.py            # table; writes benchmarks/results/framing.json
    python benchmarks/framing.py --baseline OLD_FRAMING.py   # also time another SSEDecoder
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmswitch.adapters.bedrock.eventstream import EventStreamDecoder, event_frame
from llmswitch.adapters.framing import NDJSONDecoder, SSEDecoder
from llmswitch.adapters.gemini.framing import JSONArrayDecoder

SIZES = (1_000, 10_000, 20_000, 100_000)
READ = 4096


def _payload(i: int) -> str:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {
        "content": f"token {i:06d}"}}]}, separators=(",", ":"))


def sse_body(n: int) -> bytes:
    return "".join(f"data: {_payload(i)}\n\n" for i in range(n)).encode()


def ndjson_body(n: int) -> bytes:
    return "".join(f"{_payload(i)}\n" for i in range(n)).encode()


def array_body(n: int) -> bytes:
    return ("[" + ",\r\n".join(_payload(i) for i in range(n)) + "]").encode()


def eventstream_body(n: int) -> bytes:
    return b"".join(event_frame("contentBlockDelta", _payload(i).encode()) for i in range(n))


def run(make: Callable[[], Any], body: bytes, read: int | None) -> tuple[float, int]:
    """Seconds to decode `body` (whole, or in `read`-byte pieces) and the frame count."""
    decoder = make()
    gc.collect()
    gc.disable()  # the cyclic collector's passes grow with live objects; time the decoder only
    start = time.perf_counter()
    frames = 0
    if read is None:
        frames += len(decoder.feed(body))
    else:
        for i in range(0, len(body), read):
            frames += len(decoder.feed(body[i : i + read]))
    frames += len(decoder.close())
    seconds = time.perf_counter() - start
    gc.enable()
    return seconds, frames


def measure(name: str, make: Callable[[], Any], body_of: Callable[[int], bytes],
            sizes: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        body = body_of(n)
        for mode, read in (("whole", None), ("4KiB", READ)):
            times = []
            for _ in range(repeats):
                seconds, frames = run(make, body, read)
                assert frames == n, (name, n, frames)
                times.append(seconds)
            best = min(times)
            rows.append({"decoder": name, "events": n, "mb": round(len(body) / 1e6, 2),
                         "feed": mode, "seconds": round(best, 4),
                         "us_per_event": round(best / n * 1e6, 2)})
            print(f"{name:12} {n:>7,} events {len(body) / 1e6:6.2f} MB {mode:>5}: "
                  f"{best * 1000:9.1f} ms  ({best / n * 1e6:5.2f} µs/event)", flush=True)
    return rows


def load_baseline(path: str) -> Callable[[], Any]:
    spec = importlib.util.spec_from_file_location("baseline_framing", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.SSEDecoder  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", help="a framing.py whose SSEDecoder to time as well")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    decoders = (("sse", SSEDecoder, sse_body), ("ndjson", NDJSONDecoder, ndjson_body),
                ("json-array", JSONArrayDecoder, array_body),
                ("eventstream", EventStreamDecoder, eventstream_body))
    for name, make, body_of in decoders:
        rows += measure(name, make, body_of, SIZES, args.repeats)
    if args.baseline:
        rows += measure("sse-baseline", load_baseline(args.baseline), sse_body, SIZES[:3], 1)
    growth = {}
    for name in sorted({r["decoder"] for r in rows}):
        for mode in ("whole", "4KiB"):
            per = {r["events"]: r["seconds"] for r in rows if r["decoder"] == name
                   and r["feed"] == mode}
            if 1_000 in per and 10_000 in per:
                growth[f"{name}/{mode}"] = {
                    "10k/1k": round(per[10_000] / per[1_000], 1),
                    "100k/10k": round(per[100_000] / per[10_000], 1) if 100_000 in per else None}
    print("time ratio per 10x events (linear = ~10):")
    for key, ratio in growth.items():
        print(f"  {key:24} {ratio}")
    out = Path(__file__).parent / "results" / "framing.json"
    out.write_text(json.dumps({
        "python": sys.version.split()[0], "machine": platform.machine(),
        "median_us_per_event": statistics.median(r["us_per_event"] for r in rows),
        "rows": rows, "growth": growth}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
