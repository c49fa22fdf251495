"""What recording one request's metrics costs: gateway/metrics.py against prometheus_client.

The same figures per request (a labelled request counter, token and cost counters, a latency
histogram), recorded N times over 24 label sets, with:

- `llmswitch`: `Metrics.observe` (dict updates, no lock),
- `prometheus_client`: the same metrics in one process (a lock per child, labels() lookup),
- `prometheus_client multiprocess`: its multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before
  import: every sample is written to an mmap'd file), in a fresh interpreter.

    .venv/bin/python benchmarks/gateway/metrics_cost.py [--n 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

LABELS = [(api, f"route-{r}", f"p/model-{r}", f"key-{k}")
          for api in ("openai", "anthropic") for r in range(3) for k in range(4)]


def ours(n: int) -> float:
    from llmswitch.gateway.metrics import Metrics

    m = Metrics()
    t = time.perf_counter()
    for i in range(n):
        api, route, model, key = LABELS[i % len(LABELS)]
        m.observe(api, route, model, key, 200, None, 0.2, None, 120, 80, 0.0004)
    return (time.perf_counter() - t) / n * 1e6


def prom(n: int) -> float:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    reg = CollectorRegistry()
    requests = Counter("req", "r", ["api", "route", "model", "key", "status"], registry=reg)
    tin = Counter("tin", "t", ["route", "model", "key"], registry=reg)
    tout = Counter("tout", "t", ["route", "model", "key"], registry=reg)
    cost = Counter("cost", "c", ["route", "model", "key"], registry=reg)
    latency = Histogram("lat", "l", ["route", "model", "key"], registry=reg, buckets=(
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))
    t = time.perf_counter()
    for i in range(n):
        api, route, model, key = LABELS[i % len(LABELS)]
        requests.labels(api, route, model, key, "200").inc()
        tin.labels(route, model, key).inc(120)
        tout.labels(route, model, key).inc(80)
        cost.labels(route, model, key).inc(0.0004)
        latency.labels(route, model, key).observe(0.2)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--only", choices=["ours", "prom"])
    args = ap.parse_args()
    if args.only:
        print((ours if args.only == "ours" else prom)(args.n))
        return
    out = {"requests": args.n, "llmswitch_us": round(ours(args.n), 2),
           "prometheus_client_us": round(prom(args.n), 2)}
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        done = subprocess.run([sys.executable, __file__, "--only", "prom", "--n",
                               str(args.n // 4)], env=env, capture_output=True, text=True,
                              check=True)
        out["prometheus_client_multiprocess_us"] = round(float(done.stdout), 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
