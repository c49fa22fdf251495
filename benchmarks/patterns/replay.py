"""Replay the cascade and the complexity route on recorded outcomes (no model calls).

Data: RouterBench (ARC-Challenge, Winogrande, MBPP; 11 models, recorded costs and responses)
and RouteLLM's GPT-4 / Mixtral table, from `$LLMSWITCH_ROUTING_DATA` (default
/work/shared/data/routing). Writes results/replay.json and prints Markdown tables.

    .venv/bin/python benchmarks/patterns/replay.py
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from llmswitch.results import Completion, Usage
from llmswitch.routing.complexity import HeuristicScorer
from llmswitch.strategies.checks import Heuristics, normalise

DATA = Path(os.environ.get("LLMSWITCH_ROUTING_DATA", "/work/shared/data/routing"))
OUT = Path(__file__).parent / "results"
CHEAP, MID, STRONG = "mistral-7b-chat", "mixtral-8x7b-chat", "gpt-4-1106-preview"
PAIR = ("mistral-7b-chat", "wizardlm-13b-v1.2")
_CHOICE = re.compile(r"^\s*\(?([A-E])\)?\s*(?:\.|\n|$)")


def load_routerbench() -> list[dict[str, Any]]:
    """Outcome rows joined with each model's recorded response text."""
    folder = DATA / "routerbench_arc_mbpp_winogrande"
    rows: list[dict[str, Any]] = pq.read_table(folder / "outcomes_dev.parquet").to_pylist()
    responses = {r["prompt_id"]: r for r in pq.read_table(folder / "responses_dev.parquet")
                 .to_pylist()}
    for row in rows:
        row["responses"] = {k[len("response."):]: v or ""
                            for k, v in responses[row["prompt_id"]].items()
                            if k.startswith("response.")}
    return rows


def answer_form_ok(task: str, text: str) -> bool:
    """The replay's schema-like check: a choice letter for MC tasks, a function for MBPP."""
    if task == "mbpp":
        return "def " in text
    return _CHOICE.match(text) is not None


def heuristics_ok(text: str) -> bool:
    """The shipped `heuristics` check on a recorded answer."""
    completion = Completion(text, "stop", Usage(), 0.0, "replay", "m")
    return not Heuristics().signs(completion)


def cascade(rows: list[dict[str, Any]], stages: list[str], agree: bool) -> dict[str, float]:
    """Stage by stage: accept when heuristics + answer form pass (and, with `agree`, when two
    cheap models give the same choice at the first stage); cost sums every model called."""
    quality = cost = 0.0
    accepted = {s: 0 for s in stages}
    for row in rows:
        spent = 0.0
        for i, model in enumerate(stages):
            text = row["responses"][model]
            spent += row[f"cost_usd.{model}"]
            ok = heuristics_ok(text) and answer_form_ok(row["task"], text)
            if ok and agree and i == 0 and row["task"] != "mbpp":
                other = row["responses"][PAIR[1]]
                spent += row[f"cost_usd.{PAIR[1]}"]
                ok = normalise(other)[:1] == normalise(text)[:1]
            if ok or i == len(stages) - 1:
                quality += row[f"quality.{model}"]
                accepted[model] += 1
                break
        cost += spent
    n = len(rows)
    return {"quality": quality / n, "cost": cost / n,
            **{f"share.{k}": v / n for k, v in accepted.items()}}


def agreement_cascade(rows: list[dict[str, Any]], pair: tuple[str, str],
                      strong: str) -> dict[str, float]:
    """Call two mid-price models; keep the first's answer when both give the same choice (MBPP:
    when its answer has a function), else pay for the strong model too."""
    quality = cost = 0.0
    escalated = 0
    for row in rows:
        a, b = (row["responses"][m] for m in pair)
        cost += row[f"cost_usd.{pair[0]}"]
        if row["task"] == "mbpp":
            ok = heuristics_ok(a) and answer_form_ok("mbpp", a)
        else:
            cost += row[f"cost_usd.{pair[1]}"]
            ok = answer_form_ok(row["task"], a) and normalise(a)[:1] == normalise(b)[:1]
        if ok:
            quality += row[f"quality.{pair[0]}"]
        else:
            escalated += 1
            cost += row[f"cost_usd.{strong}"]
            quality += row[f"quality.{strong}"]
    n = len(rows)
    return {"quality": quality / n, "cost": cost / n, f"share.{strong}": escalated / n}


def single(rows: list[dict[str, Any]], model: str) -> dict[str, float]:
    """Always one model."""
    n = len(rows)
    return {"quality": sum(r[f"quality.{model}"] for r in rows) / n,
            "cost": sum(r[f"cost_usd.{model}"] for r in rows) / n}


def complexity_sweep(rows: list[dict[str, Any]], tiers: list[str],
                     scores: list[float]) -> list[dict[str, float]]:
    """Quality/cost of the complexity route at several band cut-offs (score quantiles),
    next to a random router sending the same shares to each tier (the no-signal baseline)."""
    ranked = sorted(scores)
    out = []
    rng = random.Random(0)
    for low_q, high_q in ((1.0, 1.0), (0.8, 0.95), (0.6, 0.9), (0.5, 0.8), (0.3, 0.6),
                          (0.0, 0.5), (0.0, 0.0)):
        lo = ranked[min(len(ranked) - 1, int(low_q * len(ranked)))] if low_q < 1 else 2.0
        hi = ranked[min(len(ranked) - 1, int(high_q * len(ranked)))] if high_q < 1 else 2.0
        picks = [tiers[0] if s < lo else tiers[1] if s < hi else tiers[-1] for s in scores]
        q = sum(r[f"quality.{m}"] for r, m in zip(rows, picks, strict=True)) / len(rows)
        c = sum(r[f"cost_usd.{m}"] for r, m in zip(rows, picks, strict=True)) / len(rows)
        shuffled = picks[:]
        rng.shuffle(shuffled)
        rq = sum(r[f"quality.{m}"] for r, m in zip(rows, shuffled, strict=True)) / len(rows)
        shares = {t: picks.count(t) / len(picks) for t in tiers}
        out.append({"cheap_below": round(lo, 4), "strong_from": round(hi, 4), "quality": q,
                    "cost": c, "random_same_mix_quality": rq,
                    **{f"share.{t}": v for t, v in shares.items()}})
    return out


def signal(rows: list[dict[str, Any]], scores: list[float], cheap: str, strong: str) -> float:
    """AUC of the score for 'the cheap model fails where the strong one succeeds'."""
    pos = [s for r, s in zip(rows, scores, strict=True)
           if r[f"quality.{cheap}"] < r[f"quality.{strong}"]]
    neg = [s for r, s in zip(rows, scores, strict=True)
           if r[f"quality.{cheap}"] >= r[f"quality.{strong}"]]
    if not pos or not neg:
        return float("nan")
    sample = random.Random(1)
    pairs = [(sample.choice(pos), sample.choice(neg)) for _ in range(20000)]
    return sum((p > n) + 0.5 * (p == n) for p, n in pairs) / len(pairs)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    scorer = HeuristicScorer()
    results: dict[str, Any] = {}
    rows = load_routerbench()
    started = time.process_time()
    scores = [scorer.score(r["prompt"]) for r in rows]
    per_ms = (time.process_time() - started) * 1000 / len(rows)
    results["routerbench"] = {
        "prompts": len(rows),
        "singles": {m: single(rows, m) for m in (CHEAP, MID, "yi-34b-chat", STRONG)},
        "cascade_heuristics": cascade(rows, [CHEAP, MID, STRONG], agree=False),
        "cascade_agreement": cascade(rows, [CHEAP, MID, STRONG], agree=True),
        "cascade_mid_agreement": agreement_cascade(rows, (MID, "yi-34b-chat"), STRONG),
        "complexity": complexity_sweep(rows, [CHEAP, MID, STRONG], scores),
        "complexity_auc": signal(rows, scores, CHEAP, STRONG),
        "score_ms_per_prompt": per_ms,
        "score_by_task": {t: statistics.mean(s for r, s in zip(rows, scores, strict=True)
                                             if r["task"] == t)
                          for t in sorted({r["task"] for r in rows})},
    }
    ll = DATA / "routellm_gpt4_mixtral" / "outcomes_dev.parquet"
    if ll.exists():
        table = pq.read_table(ll).to_pylist()
        models = sorted({k.split(".", 1)[1] for k in table[0] if k.startswith("quality.")})
        cheap, strong = ("mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview")
        if cheap not in models or strong not in models:
            cheap, strong = models[1], models[0]
        s2 = [scorer.score(r["prompt"] or "") for r in table]
        results["routellm"] = {
            "prompts": len(table), "models": [cheap, strong],
            "singles": {m: single(table, m) for m in (cheap, strong)},
            "complexity": complexity_sweep(table, [cheap, cheap, strong], s2),
            "complexity_auc": signal(table, s2, cheap, strong),
        }
    (OUT / "replay.json").write_text(json.dumps(results, indent=1))
    print(report(results))


def report(results: dict[str, Any]) -> str:
    """Markdown tables of the replay."""
    rb = results["routerbench"]
    lines = [f"RouterBench dev ({rb['prompts']} prompts), mean per prompt", "",
             "| policy | quality | cost (USD) | cost vs gpt-4 |", "|---|---:|---:|---:|"]
    best = rb["singles"][STRONG]["cost"]

    def row(name: str, r: dict[str, float]) -> str:
        return f"| {name} | {r['quality']:.4f} | {r['cost']:.7f} | {r['cost'] / best:.1%} |"

    for m, r in rb["singles"].items():
        lines.append(row(f"always {m}", r))
    lines.append(row("cascade mistral→mixtral→gpt-4 (heuristics + answer form)",
                     rb["cascade_heuristics"]))
    lines.append(row("cascade + two-cheap-model agreement at stage 1", rb["cascade_agreement"]))
    lines.append(row("mixtral, kept when yi-34b agrees, else gpt-4 (agreement cascade)",
                     rb["cascade_mid_agreement"]))
    escalated = rb["cascade_mid_agreement"][f"share.{STRONG}"]
    lines.append(f"\nagreement cascade escalated {escalated:.1%} of prompts to gpt-4")
    lines += ["", "Complexity route (mistral-7b / mixtral / gpt-4 by score band):", "",
              "| cheap below | strong from | share cheap/mid/strong | quality | random same mix "
              "| cost | cost vs gpt-4 |", "|---:|---:|---|---:|---:|---:|---:|"]
    for r in rb["complexity"]:
        shares = "/".join(f"{r[f'share.{t}']:.0%}" for t in (CHEAP, MID, STRONG))
        lines.append(f"| {r['cheap_below']} | {r['strong_from']} | {shares} | {r['quality']:.4f}"
                     f" | {r['random_same_mix_quality']:.4f} | {r['cost']:.7f} | "
                     f"{r['cost'] / best:.1%} |")
    lines.append(f"\nAUC of the score for 'mistral-7b wrong, gpt-4 right': "
                 f"{rb['complexity_auc']:.3f}; scoring took {rb['score_ms_per_prompt']:.3f} "
                 f"CPU ms/prompt; mean score by task: "
                 + ", ".join(f"{k} {v:.3f}" for k, v in rb["score_by_task"].items()))
    if "routellm" in results:
        rl = results["routellm"]
        lines += ["", f"RouteLLM dev ({rl['prompts']} prompts; {rl['models'][0]} vs "
                      f"{rl['models'][1]}): AUC {rl['complexity_auc']:.3f}", "",
                  "| strong from | share strong | quality | random same mix | cost |",
                  "|---:|---:|---:|---:|---:|"]
        for r in rl["complexity"]:
            lines.append(f"| {r['strong_from']} | {r['share.' + rl['models'][1]]:.0%} | "
                         f"{r['quality']:.4f} | {r['random_same_mix_quality']:.4f} | "
                         f"{r['cost']:.6f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
