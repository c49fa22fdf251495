"""`llmswitch report`: spend, errors and latency per model, provider or route, from the ledger."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llmswitch.cli.output import config_option, fail, json_option
from llmswitch.errors import ConfigError, LLMSwitchError

if TYPE_CHECKING:
    from llmswitch.observe import LedgerStore


def ledger_url(config_path: str | None) -> str:
    """Where the configured ledger is (config `observe.ledger`, `$LLMSWITCH_LEDGER`, default)."""
    from llmswitch.config import load_config
    from llmswitch.observe import parse_observe

    config = load_config(config_path)
    url = parse_observe(config.observe, None, config.source).ledger
    if url is None:
        raise ConfigError("the ledger is turned off (observe.ledger: false or "
                          "LLMSWITCH_LEDGER=off)", hint="turn it on to record spend")
    return url


def _database_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a ledger database raises when it is not readable (SQLite, PostgreSQL)."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


@contextmanager
def open_ledger(config_path: str | None) -> Iterator[LedgerStore]:
    """The configured ledger for reading; an unreadable one is a `ConfigError` naming it."""
    from llmswitch.observe import LedgerStore
    from llmswitch.scrub import redact_url, url_scrubber

    url = ledger_url(config_path)
    try:
        with LedgerStore(url) as store:
            yield store
    except _database_errors() as exc:
        # A PostgreSQL DSN may hold a password, and a driver's message may quote it.
        detail = url_scrubber(url).text(" ".join(str(exc).split())) or type(exc).__name__
        raise ConfigError(f"cannot read the ledger at {redact_url(url)}: {detail}",
                          hint="is it an llmswitch ledger? point observe.ledger / "
                               "$LLMSWITCH_LEDGER at the right one") from None
    except LLMSwitchError as exc:
        url_scrubber(url).error(exc)
        raise


def _where(config_path: str | None) -> str:
    from llmswitch.scrub import redact_url

    return redact_url(ledger_url(config_path))


def _parse_since(since: str | None) -> float | None:
    from llmswitch.observe import parse_since

    if since is None:
        return None
    try:
        return parse_since(since)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except (OverflowError, OSError):
        raise ConfigError(f"--since: {since!r} is out of range") from None


def _save_chart(series: list[tuple[float, float]], chart: str) -> None:
    from llmswitch.observe import save_png

    folder = Path(chart).parent
    if not folder.is_dir():
        raise ConfigError(f"--chart {chart}: folder {folder} does not exist")
    try:
        save_png(series, chart)
    except ValueError as exc:  # matplotlib: unsupported file format
        raise ConfigError(f"--chart {chart}: {exc}", hint="use a .png file name") from None
    except OSError as exc:
        raise ConfigError(f"--chart {chart}: cannot write ({exc.strerror or exc})") from None


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
    The ledger is observe.ledger of the config, else $LLMSWITCH_LEDGER, else
    .llmswitch/ledger.sqlite beside the config file, else $LLMSWITCH_HOME/ledger.sqlite.
    """
    from llmswitch import observe as rep

    try:
        start = _parse_since(since)
        with open_ledger(config_path) as store:
            rows = store.attempts(start)
        try:
            summary = rep.summarize(rows, by)  # type: ignore[arg-type]
            series = rep.cost_series(rows)
        except (ValueError, TypeError) as exc:  # text where the ledger keeps numbers
            raise ConfigError(f"the ledger at {_where(config_path)} holds a row it cannot "
                              f"read ({exc}): it may be damaged or written by another program",
                              hint="point observe.ledger / $LLMSWITCH_LEDGER at a ledger "
                                   "llmswitch wrote") from None
        if chart:
            _save_chart(series, chart)
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
