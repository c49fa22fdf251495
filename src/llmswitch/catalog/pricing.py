"""Cost of a call from its usage and the model's card."""

from __future__ import annotations

from llmswitch.catalog.card import ModelCard
from llmswitch.results import Usage

PER_TOKEN = 1e-6


def cost_usd(card: ModelCard | None, usage: Usage) -> float | None:
    """USD for `usage` at the card's prices, or `None` when the prices are unknown.

    Cached input is priced at the cached rate (falling back to the input rate), cache writes at
    the cache-write rate (falling back to the input rate), reasoning tokens at the reasoning rate
    (falling back to the output rate). Sub-counts are clamped so a provider's inconsistent usage
    never yields a negative charge.
    """
    if card is None or card.input_per_mtok is None or card.output_per_mtok is None:
        return None
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    writes = min(usage.cache_write_tokens, usage.input_tokens - cached)
    plain_in = usage.input_tokens - cached - writes
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    plain_out = usage.output_tokens - reasoning
    cached_rate = _or(card.cached_input_per_mtok, card.input_per_mtok)
    write_rate = _or(card.cache_write_per_mtok, card.input_per_mtok)
    reasoning_rate = _or(card.reasoning_per_mtok, card.output_per_mtok)
    total = (
        plain_in * card.input_per_mtok
        + cached * cached_rate
        + writes * write_rate
        + plain_out * card.output_per_mtok
        + reasoning * reasoning_rate
    )
    return round(total * PER_TOKEN, 10)


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value
