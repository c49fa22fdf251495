"""`llmswitch traces [ID]`: list recent requests from the local trace store, or show one tree."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from llmswitch.cli.output import config_option, fail, json_option
from llmswitch.errors import ConfigError, LLMSwitchError


@click.command()
@click.argument("request_id", required=False)
@config_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
def traces(request_id: str | None, config_path: str | None, limit: int, as_json: bool) -> None:
    """List the latest requests, or show the trace tree of REQUEST_ID (a prefix is enough).

    The trace of a request is the same tree `llmswitch chat --json` prints under `trace`.
    """
    from llmswitch.cli.report import ledger_url
    from llmswitch.cli.tracefmt import render_trace
    from llmswitch.observe.store import LedgerStore
    from llmswitch.observe.trace import span_from_dict

    try:
        with LedgerStore(ledger_url(config_path)) as store:
            if request_id is None:
                rows = store.requests(limit=limit)
                tree = None
            else:
                tree = store.trace(request_id)
                if tree is None:
                    raise ConfigError(f"no single stored trace matches {request_id!r}",
                                      hint="run `llmswitch traces` to list request ids")
    except LLMSwitchError as exc:
        fail(exc, as_json)
    if tree is not None:
        click.echo(json.dumps(tree, ensure_ascii=False) if as_json
                   else render_trace(span_from_dict(tree)))
        return
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        when = datetime.fromtimestamp(r["ts"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        served = f"{r['provider']}/{r['model']}" if r["model"] else "-"
        cost = "-" if r["cost_usd"] is None else f"${r['cost_usd']:.6f}"
        click.echo(f"{r['request_id'][:12]}  {when}  {r['route']:<20} {r['status']:<5} "
                   f"{served:<32} {cost:>11} {r['duration_ms']:.0f}ms")
