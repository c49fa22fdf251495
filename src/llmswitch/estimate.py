"""What a call may cost before it is made: the models a name can be served by, the input
tokens counted by the tokenizer, and the most the answer can cost (for budgets that must never
be exceeded, and for plans' dry runs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.catalog.card import ModelCard
from llmswitch.catalog.catalog import Catalog
from llmswitch.catalog.pricing import cost_usd
from llmswitch.config.schema import Config
from llmswitch.request import Request
from llmswitch.results import Usage
from llmswitch.tokens import estimate_request_tokens

DEFAULT_MAX_OUTPUT = 4096
"""Output tokens assumed when neither the request nor any card gives a limit."""


@dataclass(frozen=True, slots=True)
class CallEstimate:
    """A call's cost before it is made.

    `input_tokens`: counted by the tokenizer of the most expensive candidate model.
    `max_output_tokens`: the request's `max_tokens`, else the largest candidate's limit.
    `max_cost_usd`: input plus the maximum output at the most expensive candidate's prices
    (an upper bound for one attempt; `None` when a candidate's price is unknown).
    `models`: the `provider/model` ids the name can be served by.
    """

    input_tokens: int
    max_output_tokens: int
    max_cost_usd: float | None
    models: tuple[str, ...]


def candidate_cards(name: str, config: Config, catalog: Catalog) -> list[ModelCard | None]:
    """The cards of every model `name` may be served by (`None` for an unknown price)."""
    seen: set[str] = set()
    out: list[ModelCard | None] = []
    _collect(name, config, catalog, seen, out)
    return out


def _collect(name: str, config: Config, catalog: Catalog, seen: set[str],
             out: list[ModelCard | None]) -> None:
    if name in seen:
        return
    seen.add(name)
    route = config.routes.get(name)
    if route is not None:
        for target in route.targets:
            target_name = target.get("model") if isinstance(target, Mapping) else target
            if isinstance(target_name, str):
                _collect(target_name, config, catalog, seen, out)
        return
    entry = config.models.get(name)
    if entry is not None and entry.model is not None:
        _collect(entry.model, config, catalog, seen, out)
        return
    if entry is not None and entry.provider is not None:
        out.append(catalog.lookup(f"{entry.provider}/{entry.name or name}"))
        return
    out.append(catalog.lookup(name))


def estimate_call(name: str, request: Request, config: Config, catalog: Catalog,
                  default_max_output: int = DEFAULT_MAX_OUTPUT) -> CallEstimate:
    """The estimate for asking `name` (a model, alias or route) with `request`."""
    cards = candidate_cards(name, config, catalog)
    known = [c for c in cards if c is not None]
    priced = [c for c in known if c.priced]
    dearest = max(priced, key=_price_key, default=None) if priced else None
    tokens = estimate_request_tokens(request, dearest or (known[0] if known else None))
    asked = request.settings.max_tokens
    limits = [c.max_output_tokens for c in known if c.max_output_tokens]
    if asked is None:
        limit = max(limits) if limits else default_max_output
    elif limits and len(limits) == len(cards):
        limit = min(asked, max(limits))  # no candidate can answer more than its own limit
    else:
        limit = asked
    cost = None
    if cards and len(priced) == len(cards):
        cost = max(cost_usd(c, Usage(tokens, min(limit, c.max_output_tokens or limit))) or 0.0
                   for c in priced)
    return CallEstimate(tokens, limit, cost, tuple(c.id for c in known))


def _price_key(card: ModelCard) -> Any:
    return (card.input_per_mtok or 0.0) + (card.output_per_mtok or 0.0)
