"""`llmswitch serve` with a memory probe: where does a long-running gateway's RSS go?

Runs the gateway exactly as `llmswitch serve` does (same options: --config, --host, --port,
--workers 1) and, from a daemon thread, writes one JSON line every `--every` seconds to
`--out`:

- `rss`, `anon`, `file`, `shmem` (MiB, /proc/self/status): anonymous memory is the heap and
  Python's arenas; file and shared memory would be SQLite's mappings;
- `blocks`: `sys.getallocatedblocks()` (live Python objects' memory blocks);
- `heap`: glibc's `mallinfo2()` (MiB): `arena` (brk heap + thread arenas), `mmap` (large
  chunks), `used`, `free` (held by malloc, not given back), `top` (trimmable);
- `q_max`: the most calls the ledger's queue held at any 20 ms sample since the last line;
- `ended`, `inflight`: the gateway's per-call maps (must stay bounded);
- every `--types-every` seconds, `types`: the object types whose count grew most since the
  first census (gc.get_objects);
- with `--garbage-at T`: once, T seconds in, the objects the cyclic collector frees over the
  next 10 s (`gc.DEBUG_SAVEALL`), per type: what waits for the collector instead of being
  freed at once by reference counting;
- with `--tracemalloc N`: every `--types-every` seconds, the N source lines whose allocated
  memory grew most since the first snapshot (slow: use it for a short run).

    LLMSWITCH_BENCH_SERVE="python benchmarks/gateway/memwatch.py --out mem.jsonl --" \
        benchmarks/gateway/soak.py ...
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mib = 1 << 20
    return {"arena": round(m.arena / mib, 1), "mmap": round(m.hblkhd / mib, 1),
            "used": round(m.uordblks / mib, 1), "free": round(m.fordblks / mib, 1),
            "top": round(m.keepcost / mib, 1)}


def _status() -> dict[str, float]:
    wanted = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem",
              "Threads": "threads"}
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in wanted:
                value = int(rest.split()[0])
                out[wanted[name]] = value if name == "Threads" else round(value / 1024, 1)
    return out


def _census() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


class Probe:
    """The sampling thread."""

    def __init__(self, app: Any, out: str, every: float, types_every: float,
                 trace_lines: int, garbage_at: float | None = None) -> None:
        self.app, self.out, self.every = app, out, every
        self.garbage_at = garbage_at
        self.types_every, self.trace_lines = types_every, trace_lines
        self.ledger = next((o for o in app.switch.observers if hasattr(o, "_queue")), None)
        self.first_census: collections.Counter[str] | None = None
        self.first_snapshot: tracemalloc.Snapshot | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="memwatch", daemon=True).start()

    def _run(self) -> None:
        started = time.monotonic()
        next_line = started + self.every
        next_types = started + self.types_every
        q_max = 0
        with open(self.out, "a", buffering=1) as f:
            while True:
                time.sleep(0.02)
                if self.ledger is not None:
                    q_max = max(q_max, self.ledger._queue.qsize())
                now = time.monotonic()
                if now < next_line:
                    continue
                next_line += self.every
                line: dict[str, Any] = {"t": round(now - started, 1), **_status(),
                                        "blocks": sys.getallocatedblocks(),
                                        "heap": _mallinfo(), "q_max": q_max,
                                        "ended": len(self.app._ended),
                                        "inflight": self.app.inflight}
                q_max = 0
                if now >= next_types:
                    next_types += self.types_every
                    line.update(self._growth())
                if self.garbage_at is not None and now - started >= self.garbage_at:
                    self.garbage_at = None
                    line["garbage_10s"] = self._garbage()
                f.write(json.dumps(line) + "\n")

    def _garbage(self) -> dict[str, int]:
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        time.sleep(10)
        gc.collect()
        gc.set_debug(0)
        found = collections.Counter(type(o).__qualname__ for o in gc.garbage)
        total = len(gc.garbage)
        gc.garbage.clear()
        return {"total": total, **dict(found.most_common(15))}

    def _growth(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        census = _census()
        if self.first_census is None:
            self.first_census = census
        else:
            grown = census - self.first_census
            out["types"] = dict(grown.most_common(12))
        if self.trace_lines and tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            if self.first_snapshot is None:
                self.first_snapshot = snap
            else:
                stats = snap.compare_to(self.first_snapshot, "lineno")[:self.trace_lines]
                out["tracemalloc"] = [f"{s.size_diff / 1024:+.0f} KiB {s.count_diff:+d} "
                                      f"{s.traceback[0]}" for s in stats]
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--types-every", type=float, default=120.0)
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N")
    ap.add_argument("--garbage-at", type=float, metavar="T")
    ap.add_argument("serve_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    serve_args = [a for a in args.serve_args if a != "--"]
    if serve_args and serve_args[0] == "serve":
        serve_args = serve_args[1:]
    sv = argparse.ArgumentParser()
    sv.add_argument("--config")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=4000)
    sv.add_argument("--workers", type=int, default=1)
    opts = sv.parse_args(serve_args)
    if args.tracemalloc:
        tracemalloc.start(1)
    from llmswitch.gateway.server import ServeOptions, serve

    def announce(port: int, app: Any) -> None:
        Probe(app, args.out, args.every, args.types_every, args.tracemalloc,
              args.garbage_at).start()
        print(f"memwatch: serving on {port}, probe -> {args.out}", file=sys.stderr)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    serve(ServeOptions(opts.config, opts.host, opts.port, 1), announce=announce)


if __name__ == "__main__":
    main()
