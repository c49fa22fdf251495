"""`llmswitch report`: spend, errors and latency per model, provider or route, from the ledger."""

from __future__ import annotations

import json
from typing import Any

import click

from llmswitch.cli.output import config_option, fail, json_option
from llmswitch.errors import ConfigError, LLMSwitchError


def ledger_url(config_path: str | None) -> str:
    """Where the configured ledger is (config `observe.ledger`, `$LLMSWITCH_LEDGER`, default)."""
    from llmswitch.config.loader import load_config
    from llmswitch.observe.config import parse_observe

    config = load_config(config_path)
    url = parse_observe(config.observe, None, config.source).ledger
    if url is None:
        raise ConfigError("the ledger is turned off (observe.ledger: false or "
                          "LLMSWITCH_LEDGER=off)", hint="turn it on to record spend")
    return url


@click.command()
@config_option
@click.option("--since", default=None, help="Only calls since: 7d, 12h, 30m or 2026-11-01.")
@click.option("--by", "by", type=click.Choice(["model", "provider", "route"]), default="model",
              show_default=True, help="Group rows by.")
@json_option
@click.option("--chart", "chart", type=click.Path(dir_okay=False), default=None,
              help="Write a cost-over-time chart to FILE.png (extra `plot`).")
@click.option("--chart-terminal", is_flag=True, help="Print a cost-over-time bar chart.")
def report(config_path: str | None, since: str | None, by: str, as_json: bool,
           chart: str | None, chart_terminal: bool) -> None:
    """Per-model calls, errors, tokens, cost and latency p50/p95 from the spend ledger.

    Every attempt counts, failed ones included (they may have been billed). With --json,
    print `{"since", "by", "rows": [...], "total_cost_usd", "cost_over_time": [...]}`.
    """
    from llmswitch.observe import report as rep
    from llmswitch.observe.store import LedgerStore

    try:
        start = rep.parse_since(since) if since else None
    except ValueError as exc:
        fail(ConfigError(str(exc)), as_json)
    try:
        with LedgerStore(ledger_url(config_path)) as store:
            rows = store.attempts(start)
    except LLMSwitchError as exc:
        fail(exc, as_json)
    summary = rep.summarize(rows, by)  # type: ignore[arg-type]
    series = rep.cost_series(rows)
    if chart:
        try:
            rep.save_png(series, chart)
        except LLMSwitchError as exc:
            fail(exc, as_json)
    if as_json:
        out: dict[str, Any] = {
            "since": start, "by": by, "rows": summary,
            "total_cost_usd": round(sum(g["cost_usd"] for g in summary), 8),
            "cost_over_time": [{"start": t, "cost_usd": c} for t, c in series],
        }
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    if not rows:
        click.echo("no calls recorded" + (" in that period" if since else ""))
        return
    click.echo(rep.render_table(summary, by))  # type: ignore[arg-type]
    if chart_terminal:
        click.echo("")
        click.echo(rep.render_terminal_chart(series))
    if chart:
        click.echo(f"chart written to {chart}", err=True)
