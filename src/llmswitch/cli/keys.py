"""`llmswitch keys`: the gateway's virtual keys, in the ledger's database (create, list,
revoke). The same operations as the gateway's `/admin/keys` API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click

from llmswitch.cli.output import config_option, fail, json_option
from llmswitch.errors import ConfigError, LLMSwitchError


@click.group()
def keys() -> None:
    """Virtual keys for the gateway: create, list and revoke (stored hashed in the ledger's
    database).

    Keys live in the ledger's database: observe.ledger of the config, else
    $LLMSWITCH_LEDGER, else the default ledger (SQLite for one gateway replica, PostgreSQL
    for several). A running gateway sees a new or revoked key within
    gateway.key_cache_seconds (2 s by default).
    """


def _with_store(config_path: str | None, work: Callable[[Any], Any]) -> Any:
    """Run `work(store)` on the configured ledger's keys; an unreachable or unreadable
    database is a `ConfigError` naming it (without a DSN's password)."""
    from llmswitch.cli.report import ledger_url
    from llmswitch.gateway.keys import KeyStore, database_errors
    from llmswitch.scrub import redact_url, url_scrubber

    url = ledger_url(config_path)
    store = KeyStore(url)
    # OSError: a SQLite folder it cannot create
    errors: tuple[type[BaseException], ...] = (*database_errors(), OSError)
    try:
        return work(store)
    except errors as exc:
        detail = url_scrubber(url).text(" ".join(str(exc).split())) or type(exc).__name__
        raise ConfigError(f"cannot use the keys in the ledger at {redact_url(url)}: {detail}",
                          hint="check observe.ledger / $LLMSWITCH_LEDGER") from None
    finally:
        store.close()


def _describe(record: Any) -> list[str]:
    lines = [f"id:       {record.id}", f"name:     {record.name}"]
    lines.append("models:   " + (", ".join(record.models) if record.models is not None
                                 else "all"))
    limits = [f"{n} {v}" for n, v in (("rpm", record.rpm), ("tpm", record.tpm)) if v]
    lines.append("limits:   " + (", ".join(limits) or "none"))
    from llmswitch.gateway.keys import dollars, iso

    if record.budget_usd is not None:
        budget = dollars(record.budget_usd)
        lines.append(f"budget:   {budget} per {record.period}" if record.period != "total"
                     else f"budget:   {budget} total")
    if record.expires_at is not None:
        lines.append(f"expires:  {iso(record.expires_at)}")
    if record.meta:
        lines.append("meta:     " + ", ".join(f"{k}={v}" for k, v in record.meta.items()))
    return lines


def _meta(pairs: tuple[str, ...]) -> dict[str, str]:
    from llmswitch.gateway.keys import KeysError

    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise KeysError(f"--meta {pair!r}: use KEY=VALUE, e.g. --meta team=search")
        out[name.strip()] = value
    return out


@keys.command()
@click.option("--name", required=True, help="A unique name (letters, digits, . _ @ -).")
@click.option("--models", default=None,
              help="Comma-separated models, aliases or routes the key may use (default: all).")
@click.option("--rpm", type=int, default=None, help="Requests per sliding minute.")
@click.option("--tpm", type=int, default=None,
              help="Tokens per sliding minute (input + maximum output, settled to real usage).")
@click.option("--budget", "budget", type=float, default=None, help="Budget in USD per period.")
@click.option("--period", type=click.Choice(["day", "month", "total"]), default=None,
              help="Budget period: a UTC calendar day or month, or total (default: month).")
@click.option("--expires", default=None,
              help="Expiry: 2026-12-31 (midnight UTC), 2026-12-31T18:00:00Z, or 30d / 12h.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE",
              help="A tag stored with every ledger row of the key's calls (repeatable).")
@config_option
@json_option
def create(name: str, models: str | None, rpm: int | None, tpm: int | None,
           budget: float | None, period: str | None, expires: str | None,
           meta: tuple[str, ...], config_path: str | None, as_json: bool) -> None:
    """Create a key and print its secret (shown this once)."""
    from llmswitch.gateway.keys import KeysError, KeySpec, parse_expiry

    try:
        when = parse_expiry(expires)
        if when is not None and when <= time.time():
            raise KeysError(f"--expires {expires}: that is in the past")
        spec = KeySpec(name, tuple(m.strip() for m in models.split(",")) if models else None,
                       rpm, tpm, budget, period, when, _meta(meta))
        secret, record = _with_store(config_path, lambda store: store.create(spec))
    except LLMSwitchError as exc:
        fail(exc, as_json)
    if as_json:
        click.echo(json.dumps({**record.to_dict(), "key": secret}, ensure_ascii=False))
        return
    click.echo(f"key:      {secret}")
    for line in _describe(record):
        click.echo(line)
    click.echo("The key is shown this once: store it now.", err=True)


@keys.command(name="list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@config_option
@json_option
def list_keys(include_revoked: bool, config_path: str | None, as_json: bool) -> None:
    """List keys with their limits, spend this period and last use (never the secret)."""
    from llmswitch.gateway.admin import key_usage

    try:
        now = time.time()
        rows = _with_store(config_path, lambda store: [
            (r, key_usage(store, r, now)) for r in store.list(include_revoked)])
    except LLMSwitchError as exc:
        fail(exc, as_json)
    if as_json:
        click.echo(json.dumps({"object": "list", "data": [
            {**r.to_dict(), "usage": u} for r, u in rows]}, ensure_ascii=False))
        return
    if not rows:
        click.echo("no keys (create one with `llmswitch keys create --name NAME`)")
        return
    _table(rows)


def _table(rows: list[tuple[Any, dict[str, Any]]]) -> None:
    """Plain aligned columns (one line per key, whatever the terminal's width)."""
    from llmswitch.gateway.keys import dollars

    head = ("ID", "NAME", "STATUS", "MODELS", "RPM", "TPM", "BUDGET", "SPENT", "LAST USED",
            "EXPIRES")
    lines = [head]
    for record, usage in rows:
        budget = "-" if record.budget_usd is None else (
            f"{dollars(record.budget_usd)}/{record.period}")
        lines.append((
            record.id, record.name, record.status(),
            ",".join(record.models) if record.models is not None else "all",
            str(record.rpm or "-"), str(record.tpm or "-"), budget,
            f"${usage['spent_usd']:.6f}", usage["last_used_at"] or "never",
            record.to_dict()["expires_at"] or "never"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                   .rstrip())


@keys.command()
@click.argument("id_or_name")
@config_option
@json_option
def revoke(id_or_name: str, config_path: str | None, as_json: bool) -> None:
    """Revoke a key by id or name (gateways refuse it within seconds)."""
    def work(store: Any) -> tuple[bool, Any]:
        before = store.get(id_or_name)
        return before.revoked_at is not None, store.revoke(before.id)

    try:
        already, record = _with_store(config_path, work)
    except LLMSwitchError as exc:
        fail(exc, as_json)
    if as_json:
        click.echo(json.dumps(record.to_dict(), ensure_ascii=False))
    elif already:
        click.echo(f"key {record.name} ({record.id}) was already revoked at "
                   f"{record.to_dict()['revoked_at']}")
    else:
        click.echo(f"revoked key {record.name} ({record.id})")
