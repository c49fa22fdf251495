"""`model: auto`: pick a stream's model from what it needs and what it optimises for.

With `router: ROUTE` (a route of the config, e.g. a learned router) the stream calls that
route, which decides per request; its decision is read back from the call's trace. Otherwise
the candidates are the stream's (or the defaults') `candidates`, else every priced catalog
model of the providers the plan and the config already use, else the whole priced catalog.
Candidates that lack a need or whose context window is too small are dropped; the rest are
ranked by estimated cost (`cost`), typical speed from the catalog (`latency`) or the
catalog's quality score (`quality`, ties by cost). The choice and the reason go to the
manifest and the stream's trace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch import ModelCard, Switch
from llmswitch.plans.cards import card_of, meets, target_names
from llmswitch.plans.errors import PlanError
from llmswitch.plans.estimate import estimate_stream
from llmswitch.plans.model import Plan, StreamSpec


@dataclass(frozen=True)
class AutoChoice:
    """The model picked for an `auto` stream, and why."""

    model: str
    reason: str
    candidates: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    router: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape stored in the manifest (`streams.<id>.auto`)."""
        return {"model": self.model, "reason": self.reason, "router": self.router,
                "candidates": list(self.candidates),
                "scores": {k: round(v, 9) for k, v in self.scores.items()}}


def choose(switch: Switch, plan: Plan, spec: StreamSpec, inputs: Mapping[str, str],
           sizes: Mapping[str, int]) -> AutoChoice:
    """Pick the model for an `auto` stream (or raise `PlanError` naming what is missing)."""
    where = f"{plan.source}: streams.{spec.id}"
    if spec.router:
        route = switch.config.routes.get(spec.router)
        if route is None:
            raise PlanError(f"{where}.router: {spec.router!r} is not a route of the config "
                            f"({switch.config.source})",
                            hint="name a route, e.g. a learned one (strategy: learned)")
        return AutoChoice(spec.router, f"route {spec.router!r} ({route.strategy}) picks the "
                          "model per request" + (f" for task {spec.task!r}" if spec.task else ""),
                          tuple(target_names(switch, spec.router)), router=spec.router)
    pool, origin = _pool(switch, plan, spec)
    needs = sorted(spec.required())
    scored: dict[str, float] = {}
    for name, card in pool.items():
        if not all(meets(card, n) for n in needs):
            continue
        est = estimate_stream(switch, spec, name, inputs, sizes)
        if est.input_tokens + est.output_tokens > card.context_window:
            continue
        scored[name] = _score(spec.optimize_for, card, est.cost_usd, est.output_tokens)
    if not scored:
        raise PlanError(f"{where}.model: auto found no model with {', '.join(needs) or 'a price'}"
                        f" among {origin}", hint="widen candidates or drop a need")
    ranked = sorted(scored, key=lambda n: (scored[n], n))
    best = ranked[0]
    what = {"cost": "cheapest", "latency": "fastest", "quality": "best-rated"}[spec.optimize_for]
    reason = (f"{what} of {len(ranked)} {origin} with {', '.join(needs)}" if needs
              else f"{what} of {len(ranked)} {origin}")
    reason += f" (score {_show(spec.optimize_for, scored[best])}"
    if len(ranked) > 1:
        reason += f"; next {ranked[1]} {_show(spec.optimize_for, scored[ranked[1]])}"
    return AutoChoice(best, reason + ")", tuple(ranked), {n: scored[n] for n in ranked[:5]})


def _pool(switch: Switch, plan: Plan, spec: StreamSpec) -> tuple[dict[str, ModelCard], str]:
    if spec.candidates:
        out = {}
        for name in spec.candidates:
            card = card_of(switch, name)
            if card is None:
                raise PlanError(f"{plan.source}: streams.{spec.id}.candidates: {name!r} is "
                                "not in the catalog (auto needs its prices and capabilities)")
            out[name] = card
        return out, "candidates"
    providers = _providers_in_use(switch, plan)
    cards = {c.id: c for c in switch.catalog if c.priced and c.provider in providers}
    if cards:
        return cards, f"catalog models of {', '.join(sorted(providers))}"
    return {c.id: c for c in switch.catalog if c.priced}, "catalog models"


def _providers_in_use(switch: Switch, plan: Plan) -> set[str]:
    names: list[str] = list(switch.config.providers)
    for spec in plan.streams.values():
        if not spec.auto:
            names.extend(target_names(switch, spec.model))
        names.extend(spec.fallback)
    names.extend(m for m in switch.config.models if m != "auto")
    providers = set()
    for name in names:
        card = card_of(switch, name)
        if card is not None:
            providers.add(card.provider)
        elif "/" in name:
            providers.add(name.split("/", 1)[0])
    return providers


def _score(goal: str, card: ModelCard, cost: float | None, output_tokens: int) -> float:
    if goal == "latency":
        if card.latency is None:
            return math.inf
        return card.latency.ttft_ms / 1000 + output_tokens / card.latency.tokens_per_s
    if goal == "quality":
        # Higher quality first; cost breaks ties (a tiny weight keeps the order by quality).
        return -(card.quality or 0.0) + (cost or 0.0) * 1e-6
    return cost if cost is not None else math.inf


def _show(goal: str, score: float) -> str:
    if goal == "latency":
        return f"~{score:.1f} s" if math.isfinite(score) else "unknown speed"
    if goal == "quality":
        return f"quality {-score:.2f}"
    return f"${score:.6f}/call"
