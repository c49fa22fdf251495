"""Estimates before anything is spent: input tokens from the tokenizer (exact for OpenAI
models with the `tokens` extra, a measured approximation otherwise), output tokens from
`max_tokens` (else a typical answer length), cost from the catalog prices.

An earlier stream's output, not known yet, is estimated at its own expected output length.
An agent stream is estimated for one step; it may make up to `max_steps` calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch import ModelCard, Switch, Usage, cost_usd, tokens
from llmswitch.plans.cards import card_of, cards_behind
from llmswitch.plans.model import Plan, StreamSpec
from llmswitch.plans.templates import sample


@dataclass(frozen=True)
class Estimate:
    """One stream's expected tokens and cost on one model."""

    stream: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    exact: bool
    """Input counted with the model's real tokenizer."""
    max_calls: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON shape used by `plan run --dry-run --json`."""
        cost = None if self.cost_usd is None else round(self.cost_usd, 10)
        return {"model": self.model, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": cost,
                "exact_input": self.exact, "max_calls": self.max_calls}


def price_card(switch: Switch, name: str) -> ModelCard | None:
    """The card that prices calls to `name`: its own, or a route's first priced target."""
    card = card_of(switch, name)
    if card is not None:
        return card
    return next((c for c in cards_behind(switch, name) if c is not None and c.priced), None)


def estimate_stream(switch: Switch, spec: StreamSpec, model: str, inputs: Mapping[str, str],
                    sizes: Mapping[str, int]) -> Estimate:
    """Tokens and cost of one stream on `model`; `sizes` are earlier streams' output sizes."""
    card = price_card(switch, model)
    system = sample(spec.system, inputs, sizes) if spec.system else None
    settings: dict[str, Any] = {}
    if spec.max_tokens is not None:
        settings["max_tokens"] = spec.max_tokens
    request = switch.request(sample(spec.prompt, inputs, sizes), system=system, **settings)
    tokens_in = tokens.estimate_request_tokens(request, card or model)
    tokens_out = tokens.expected_output_tokens(request, card)
    cost = cost_usd(card, Usage(tokens_in, tokens_out)) if card is not None and card.priced \
        else None
    return Estimate(spec.id, model, tokens_in, tokens_out, cost, tokens.is_exact(card or model),
                    spec.max_steps if spec.tools else 1)


def estimate_plan(switch: Switch, plan: Plan, models: Mapping[str, str],
                  inputs: Mapping[str, str]) -> dict[str, Estimate]:
    """Every stream's estimate on its model (`models[id]`), in dependency order."""
    out: dict[str, Estimate] = {}
    sizes: dict[str, int] = {}
    for sid in plan.order():
        est = estimate_stream(switch, plan.streams[sid], models[sid], inputs, sizes)
        out[sid] = est
        sizes[sid] = est.output_tokens
    return out


def total(estimates: Mapping[str, Estimate]) -> float | None:
    """Sum of known costs (`None` when no stream's cost is known)."""
    known = [e.cost_usd for e in estimates.values() if e.cost_usd is not None]
    return sum(known) if known else None
