"""`llmswitch models`: list the catalog (shipped entries plus the config's)."""

from __future__ import annotations

import difflib
import json

import click
from rich.console import Console
from rich.table import Table

from llmswitch.catalog import ModelCard
from llmswitch.cli.output import config_option, fail, json_option, open_switch
from llmswitch.errors import ConfigError


@click.command()
@click.option("--provider", default=None, help="Only this provider's models.")
@config_option
@json_option
def models(provider: str | None, config_path: str | None, as_json: bool) -> None:
    """List known models with context window, prices (USD per 1M tokens) and capabilities.

    With --json, print `{"models": [...]}` where each entry has the catalog fields (id,
    provider, context_window, max_output_tokens, input_per_mtok, output_per_mtok,
    cached_input_per_mtok, capabilities, …), plus `{"aliases": {...}, "routes": [...]}` from
    the config.
    """
    switch = open_switch(config_path, as_json)
    known = set(switch.providers)
    if provider is not None and provider not in known:
        fail(ConfigError(f"unknown provider {provider!r}{_did_you_mean(provider, known)}",
                         hint="known: " + ", ".join(sorted(known))), as_json)
    cards = [c for c in switch.catalog if provider is None or c.provider == provider]
    if as_json:
        click.echo(json.dumps({
            "models": [_card_json(c) for c in cards],
            "aliases": {k: v.model for k, v in switch.config.models.items() if v.model},
            "routes": [{"name": k, "strategy": v.strategy}
                       for k, v in switch.config.routes.items()],
        }, ensure_ascii=False))
        return
    table = Table(title=f"{len(cards)} models", show_lines=False)
    table.add_column("id", no_wrap=True)
    for col in ("context", "in $/1M", "out $/1M", "cached $/1M"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("capabilities")
    for c in cards:
        table.add_row(c.id, f"{c.context_window:,}", _price(c.input_per_mtok),
                      _price(c.output_per_mtok), _price(c.cached_input_per_mtok),
                      ", ".join(c.capabilities))
    console = Console(width=max(Console().width, 140))
    console.print(table)
    for name, route in switch.config.routes.items():
        console.print(f"route [bold]{name}[/bold]: {route.strategy} → {route.targets}")


def _did_you_mean(name: str, known: set[str]) -> str:
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.strip().lower(), list(by_lower), n=2, cutoff=0.6)
    return f" (did you mean {', '.join(repr(by_lower[c]) for c in close)}?)" if close else ""


def _card_json(card: ModelCard) -> dict[str, object]:
    data = card.model_dump(mode="json")
    data["provider"] = card.provider
    return data


def _price(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"
