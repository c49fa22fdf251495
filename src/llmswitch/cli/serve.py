"""`llmswitch serve`: the OpenAI- and Anthropic-compatible gateway."""

from __future__ import annotations

import sys
from typing import Any

import click

from llmswitch.cli.output import config_option


@click.command("serve")
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address needs keys (an "
                   "admin key or virtual keys) or --no-auth.")
@click.option("--port", default=4000, show_default=True, type=int,
              help="Port to listen on (0: a free port, printed on stderr).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes sharing the port, each with its own Switch and ledger "
                   "writer (SQLite in WAL mode takes several writers; use PostgreSQL for "
                   "several machines).")
@click.option("--no-auth", is_flag=True,
              help="Allow serving without keys on a non-loopback address (anyone who can "
                   "reach it may spend on your providers' keys). Configured keys still apply.")
def serve(config_path: str | None, host: str, port: int, workers: int, no_auth: bool) -> None:
    """Serve the OpenAI- and Anthropic-compatible gateway over every model, alias and route.

    Endpoints: POST /v1/chat/completions, /v1/messages, /v1/responses; GET /v1/models,
    /healthz, /readyz, /metrics. With no config the embedded local model answers (offline).
    SIGTERM drains in-flight requests for gateway.drain_seconds, flushes the ledger and
    exits 0. Options of the `gateway:` config section: see docs/gateway.md.
    """
    from llmswitch.errors import LLMSwitchError
    from llmswitch.gateway.server import EXIT_REFUSED, ServeError, ServeOptions
    from llmswitch.gateway.server import serve as run

    options = ServeOptions(config_path, host, port, workers, no_auth)
    try:
        run(options, announce=_announce(options))
    except ServeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    except LLMSwitchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _announce(options: Any) -> Any:
    def announce(port: int, app: Any) -> None:
        auth = "keys required" if app.auth.required else "no auth"
        workers = f"{options.workers} worker{'s' if options.workers > 1 else ''}"
        host = f"[{options.host}]" if ":" in options.host else options.host
        click.echo(f"llmswitch gateway listening on http://{host}:{port} ({workers}, {auth}); "
                   "Ctrl-C or SIGTERM drains and stops", err=True)
    return announce
