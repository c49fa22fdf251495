"""What the catalog says about the models a plan names: cards behind aliases and routes, and
whether a card meets a stream's needs. Reads only `switch.config` and `switch.catalog`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmswitch import Switch
from llmswitch.catalog import ModelCard

LONG_CONTEXT = 100_000
"""Tokens of context window that count as `long_context`."""


def card_of(switch: Switch, name: str) -> ModelCard | None:
    """The catalog card behind a model id, catalog alias or configured alias (`None` for a
    route or a model the catalog does not list)."""
    models = switch.config.models
    seen: set[str] = set()
    while name in models and name not in seen:
        seen.add(name)
        entry = models[name]
        if entry.model is not None:
            name = entry.model
        elif entry.provider is not None:
            return switch.catalog.get(f"{entry.provider}/{entry.name or name}")
        else:
            break
    return switch.catalog.lookup(name)


def target_names(switch: Switch, name: str) -> list[str]:
    """The models a route may send to (one level), or `[name]` for a plain model."""
    route = switch.config.routes.get(name)
    if route is None:
        return [name]
    out = []
    for target in route.targets:
        model = target.get("model") if isinstance(target, Mapping) else target
        if isinstance(model, str):
            out.append(model)
    return out


def cards_behind(switch: Switch, name: str, depth: int = 4) -> list[ModelCard | None]:
    """Cards of every model `name` may be answered by (routes followed `depth` levels)."""
    if name not in switch.config.routes or depth == 0:
        return [card_of(switch, name)]
    out: list[ModelCard | None] = []
    for target in target_names(switch, name):
        out.extend(cards_behind(switch, target, depth - 1))
    return out or [None]


def meets(card: ModelCard, need: str) -> bool:
    """Whether a card has one of a stream's needs."""
    if need == "json":
        return card.has("json_mode") or card.has("json_schema")
    if need == "long_context":
        return card.context_window >= LONG_CONTEXT
    if need in ("tools", "vision", "reasoning"):
        return card.has(need)  # type: ignore[arg-type]
    return False


def missing(switch: Switch, name: str, needs: Iterable[str]) -> list[str]:
    """Needs that no model behind `name` meets (unknown cards are given the benefit of the
    doubt: the provider will say)."""
    cards = cards_behind(switch, name)
    if any(c is None for c in cards):
        return []
    return [n for n in sorted(needs) if not any(meets(c, n) for c in cards if c is not None)]


def with_needs(switch: Switch, needs: Iterable[str], limit: int = 3) -> list[str]:
    """A few catalog models that meet every need, cheapest first (for error messages)."""
    needs = list(needs)
    ok = [c for c in switch.catalog if c.priced and all(meets(c, n) for n in needs)]
    ok.sort(key=lambda c: (c.input_per_mtok or 0) + (c.output_per_mtok or 0))
    return [c.id for c in ok[:limit]]


def describe(card: ModelCard | None) -> dict[str, Any]:
    """A short JSON-able summary of a card (for traces and the manifest)."""
    if card is None:
        return {}
    return {"id": card.id, "input_per_mtok": card.input_per_mtok,
            "output_per_mtok": card.output_per_mtok, "context_window": card.context_window}
