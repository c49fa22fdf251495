"""A fast prompt-complexity score (no model call, well under 1 ms) and a tier router over it.

`HeuristicScorer` scores text in [0, 1] from features: length, code, math, multi-part
questions, reasoning words and domain terms. `ComplexityRouter` maps score bands to targets.
The scorer is pluggable: anything with `score(text) -> float` in [0, 1] (see `Scorer`), e.g.
a learned router's predicted difficulty, can replace the heuristic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from llmswitch.request import Request
from llmswitch.routing.decision import Decision


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores a prompt's complexity in [0, 1] (higher: needs a stronger model)."""

    def score(self, text: str) -> float:
        """The complexity of `text`."""
        ...


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_ARITH = re.compile(r"\d ?[-+*/^=<>] ?\d|\\(?:frac|sum|int)|[√∑∫]")
_LIST_ITEM = re.compile(r"^[ \t]*(?:\d+[.)]|[-*•])[ \t]", re.MULTILINE)
_CODE_MARKS = ("```", "def ", "class ", "return ", "function ", "=>", "#include", "select ",
               "import ", "console.", "public static", "();", "{\n", "};")
_MATH_WORDS = _set("integral derivative equation equations prove proof theorem probability "
                   "matrix solve calculate compute sum product modulo polynomial")
_REASONING_WORDS = _set(
    "why explain analyse analyze compare contrast evaluate justify derive step-by-step reason "
    "reasoning tradeoff tradeoffs trade-off trade-offs design architect architecture optimise "
    "optimize debug refactor implement critique plan strategy implication implications")
_DOMAIN_WORDS = _set(
    "algorithm algorithms complexity asymptotic concurrency distributed kernel compiler "
    "regression gradient eigenvalue eigenvector quantum theorem lemma statute liability "
    "diagnosis diagnose pharmacology pharmacokinetics genome genomic thermodynamics "
    "cryptography cryptographic latency throughput bayesian stochastic tensor")
_SIMPLE_STARTS = ("hi", "hello", "hey", "thanks", "thank you", "what is", "who is", "translate",
                  "define")
HEAD_CHARS, TAIL_CHARS = 2000, 1000
"""Long texts are scanned at the start and the end only (length still counts everything)."""

WEIGHTS: dict[str, float] = {
    "length": 1.1, "code": 0.9, "math": 0.8, "questions": 0.5, "parts": 0.5,
    "reasoning": 0.9, "domain": 0.7, "simple": -0.8,
}
BIAS = -2.2


def features(text: str) -> dict[str, float]:
    """Each feature scaled to roughly [0, 1]."""
    n_words = max(1, text.count(" ") + text.count("\n") + 1)
    head = text if len(text) <= HEAD_CHARS + TAIL_CHARS else (
        text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:])
    lower = head.lower()
    words = _WORD.findall(lower)
    code = sum(lower.count(mark) for mark in _CODE_MARKS)
    math_hits = len(_ARITH.findall(head)) + sum(w in _MATH_WORDS for w in words)
    simple = n_words < 25 and lower.lstrip().startswith(_SIMPLE_STARTS)
    return {
        "length": min(1.0, math.log1p(n_words) / math.log1p(400)),
        "code": min(1.0, code / 3),
        "math": min(1.0, math_hits / 3),
        "questions": min(1.0, max(0, head.count("?") - 1) / 3),
        "parts": min(1.0, len(_LIST_ITEM.findall(head)) / 4),
        "reasoning": min(1.0, sum(w in _REASONING_WORDS for w in words) / 3),
        "domain": min(1.0, sum(w in _DOMAIN_WORDS for w in words) / 3),
        "simple": 1.0 if simple else 0.0,
    }


@dataclass(frozen=True)
class HeuristicScorer:
    """Logistic of a weighted feature sum. Weights were set by hand, then checked on
    recorded outcomes (see docs/patterns/complexity.md)."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(WEIGHTS))
    bias: float = BIAS

    def score(self, text: str) -> float:
        """The complexity of `text` in [0, 1]."""
        return self.explain(text)[0]

    def explain(self, text: str) -> tuple[float, dict[str, float]]:
        """The score and the features behind it."""
        f = features(text)
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in f.items())
        return 1.0 / (1.0 + math.exp(-3.0 * z)), f


@dataclass(frozen=True)
class Tier:
    """Scores below `below` (or any score, when `None`) go to `target`."""

    target: str
    below: float | None = None


@dataclass(frozen=True)
class ComplexityRouter:
    """Score the last user message; the first tier whose band holds the score wins."""

    tiers: Sequence[Tier]
    scorer: Scorer = field(default_factory=HeuristicScorer)

    @classmethod
    def parse(cls, tiers: Any, scorer: Scorer | None = None) -> ComplexityRouter:
        """From config: `[{below: 0.3, target: cheap}, ..., {target: strong}]`."""
        if not isinstance(tiers, list) or not tiers:
            raise ValueError("'tiers' must be a non-empty list of {below: SCORE, target: NAME}")
        out: list[Tier] = []
        last = -math.inf
        for i, t in enumerate(tiers):
            if not isinstance(t, Mapping) or not isinstance(t.get("target"), str):
                raise ValueError(f"tiers[{i}] needs a 'target' (a model or route name)")
            below = t.get("below")
            if below is None and i != len(tiers) - 1:
                raise ValueError(f"tiers[{i}]: only the last tier may omit 'below'")
            if below is not None:
                if not isinstance(below, (int, float)) or float(below) <= last:
                    raise ValueError(f"tiers[{i}].below must be a number above the previous band")
                last = float(below)
            out.append(Tier(t["target"], None if below is None else float(below)))
        return cls(tuple(out), scorer or HeuristicScorer())

    def pick(self, score: float) -> Tier:
        """The tier for a score (scores past the last band go to the last tier)."""
        for tier in self.tiers:
            if tier.below is None or score < tier.below:
                return tier
        return self.tiers[-1]

    def decide(self, request: Request) -> Decision:
        """Score the request and choose its tier."""
        text = request.last_user_text or request.prompt_text
        score = float(self.scorer.score(text))
        tier = self.pick(score)
        band = f"< {tier.below}" if tier.below is not None else "top band"
        return Decision(tier.target, f"complexity {score:.3f} ({band})",
                        {"complexity": round(score, 4)})
