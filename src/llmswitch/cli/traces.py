"""`llmswitch traces [ID]`: list recent requests from the local trace store, or show one tree."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import click

from llmswitch.cli.output import config_option, fail, json_option
from llmswitch.errors import ConfigError, LLMSwitchError

_REQUEST_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.:-]*$")
"""What a request id (prefix) may hold: no SQL `LIKE` wildcards, no blanks."""


@click.command()
@click.argument("request_id", required=False)
@config_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many requests to list (newest first).")
@json_option
def traces(request_id: str | None, config_path: str | None, limit: int, as_json: bool) -> None:
    """List the latest requests, or show the trace tree of REQUEST_ID (a prefix is enough).

    The trace of a request is the same tree `llmswitch chat --json` prints under `trace`.
    With --json, the list is a JSON array of request summaries and a tree is one object.
    """
    from llmswitch.cli.report import open_ledger
    from llmswitch.cli.tracefmt import render_trace

    try:
        if request_id is not None and not _REQUEST_ID.match(request_id):
            raise ConfigError(f"{request_id!r} is not a request id",
                              hint="run `llmswitch traces` to list request ids")
        with open_ledger(config_path) as store:
            if request_id is None:
                rows = store.requests(limit=limit)
                tree = None
            else:
                tree = _stored_tree(store, request_id)
        shown = None if tree is None or as_json else render_trace(_span(tree, request_id or ""))
    except LLMSwitchError as exc:
        fail(exc, as_json)
    if tree is not None:
        click.echo(json.dumps(tree, ensure_ascii=False) if as_json else shown)
        return
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no traces recorded (observe.traces may be off)")
        return
    for r in rows:
        when = datetime.fromtimestamp(r["ts"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        served = f"{r['provider']}/{r['model']}" if r["model"] else "-"
        cost = "-" if r["cost_usd"] is None else f"${r['cost_usd']:.6f}"
        took = "-" if r["duration_ms"] is None else f"{r['duration_ms']:.0f}ms"
        click.echo(f"{r['request_id'][:12]}  {when}  {r['route']:<20} {r['status']:<5} "
                   f"{served:<32} {cost:>11} {took}")


def _damaged(request_id: str) -> ConfigError:
    return ConfigError(f"the stored trace of {request_id} is not a readable trace tree (the "
                       "ledger may be damaged or written by another program)",
                       hint="`llmswitch traces --json` lists the requests; `llmswitch report` "
                            "still reads the spend")


def _stored_tree(store: Any, request_id: str) -> dict[str, Any]:
    """The stored tree of one request; a row that is not JSON is a `ConfigError`."""
    try:
        tree = store.trace(request_id)
    except (ValueError, RecursionError):
        raise _damaged(request_id) from None
    if tree is None:
        raise ConfigError(f"no single stored trace matches {request_id!r}",
                          hint="run `llmswitch traces` to list request ids; give "
                               "more characters when several share the prefix")
    if not isinstance(tree, dict):
        raise _damaged(request_id)
    return tree


def _span(tree: dict[str, Any], request_id: str) -> Any:
    """The span tree of a stored trace; one of the wrong shape is a `ConfigError`."""
    from llmswitch.observe import span_from_dict

    try:
        return span_from_dict(tree)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise _damaged(request_id) from None
