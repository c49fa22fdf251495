"""Capability selection: among models with every required capability and a large enough
context window, choose by cost, latency or quality. A pure decision over catalog cards."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from llmswitch.catalog.card import CAPABILITIES, ModelCard
from llmswitch.catalog.catalog import Catalog
from llmswitch.config.schema import Config
from llmswitch.request import Request
from llmswitch.routing.decision import Decision
from llmswitch.routing.rules import estimate_tokens, request_needs

Optimize = Literal["cost", "latency", "quality"]
OPTIMIZE: tuple[Optimize, ...] = ("cost", "latency", "quality")
DEFAULT_OUTPUT_TOKENS = 512


def card_for(name: str, config: Config | None, catalog: Catalog) -> ModelCard | None:
    """The catalog card behind a name, following `models.<alias>.model` aliases."""
    seen: set[str] = set()
    while config is not None and name in config.models and name not in seen:
        seen.add(name)
        entry = config.models[name]
        if entry.model is not None:
            name = entry.model
        elif entry.provider is not None:
            return catalog.get(f"{entry.provider}/{entry.name or name}")
        else:
            break
    return catalog.lookup(name)


@dataclass(frozen=True)
class Candidate:
    """A target name and its card (`None`: not in the catalog, so it cannot be judged)."""

    name: str
    card: ModelCard | None


class NoCandidateError(ValueError):
    """No candidate qualifies; `reasons` says what each one lacked."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = dict(reasons)
        super().__init__("; ".join(f"{n}: {r}" for n, r in self.reasons.items()))


@dataclass(frozen=True)
class CapabilityRouter:
    """Filter candidates by capabilities and window, then rank by the `optimize` goal.

    `quality` overrides the cards' quality scores by target name.
    """

    candidates: Sequence[Candidate]
    require: frozenset[str] = frozenset()
    optimize: Optimize = "cost"
    quality: Mapping[str, float] = field(default_factory=dict)
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    def __post_init__(self) -> None:
        unknown = set(self.require) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: "
                             + ", ".join(CAPABILITIES))
        if self.optimize not in OPTIMIZE:
            raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE)}")

    def lacks(self, cand: Candidate, needs: set[str], tokens: int, out: int) -> str | None:
        """What the candidate lacks for this request, or `None`."""
        if cand.card is None:
            return "not in the catalog (add it under models: with capabilities)"
        missing = sorted(needs - set(cand.card.capabilities))
        if missing:
            return "lacks " + ", ".join(missing)
        if tokens + out > cand.card.context_window:
            return f"window {cand.card.context_window} < ~{tokens} input + {out} output tokens"
        return None

    def score(self, cand: Candidate, tokens: int, out: int) -> float:
        """Higher is better: negative cost or latency, or quality."""
        card = cand.card
        assert card is not None
        if self.optimize == "quality":
            return self.quality.get(cand.name, card.quality if card.quality is not None else 0.0)
        if self.optimize == "latency":
            if card.latency is None:
                return -math.inf
            return -(card.latency.ttft_ms + 1000 * out / card.latency.tokens_per_s)
        if not card.priced:
            return -math.inf
        assert card.input_per_mtok is not None and card.output_per_mtok is not None
        return -(tokens * card.input_per_mtok + out * card.output_per_mtok) / 1e6

    def decide(self, request: Request) -> Decision:
        """The best qualifying candidate; `NoCandidateError` lists why each one failed."""
        needs = request_needs(request) | set(self.require)
        tokens = estimate_tokens(request)
        out = request.settings.max_tokens or self.output_tokens
        scores: dict[str, float] = {}
        reasons: dict[str, str] = {}
        for cand in self.candidates:
            why = self.lacks(cand, needs, tokens, out)
            if why is None:
                scores[cand.name] = self.score(cand, tokens, out)
            else:
                reasons[cand.name] = why
        if not scores:
            raise NoCandidateError(reasons)
        best = max(scores, key=lambda n: scores[n])  # first of equals: config order
        need_text = ", ".join(sorted(needs)) or "nothing special"
        finite = {k: round(v, 9) for k, v in scores.items() if math.isfinite(v)}
        return Decision(best, f"best {self.optimize} among {len(scores)} able (needs "
                              f"{need_text}; ~{tokens} tokens); excluded: {len(reasons)}", finite)
