"""`llmswitch ui`: the dashboard over the ledger alone, without the gateway."""

from __future__ import annotations

import sys

import click

from llmswitch.cli.output import config_option


@click.command("ui")
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4001, show_default=True, type=int,
              help="Port to listen on (0: a free port, printed on stderr).")
@click.option("--runs", "runs", multiple=True, type=click.Path(file_okay=False),
              help="A folder holding plan run folders (repeatable; ./runs and runs/ beside "
                   "the config are always looked in).")
def ui(config_path: str | None, host: str, port: int, runs: tuple[str, ...]) -> None:
    """Serve the dashboard (spend, requests, keys, plan runs) over the ledger, at /ui.

    Only the admin key ($LLMSWITCH_ADMIN_KEY) signs in. The ledger is the config's
    (observe.ledger, $LLMSWITCH_LEDGER, or the default), the same one `llmswitch report`
    reads; keys created or revoked here are the gateway's (same database).
    """
    from llmswitch.dashboard import create_dashboard
    from llmswitch.errors import ConfigError, LLMSwitchError
    from llmswitch.gateway.server import ServeError, bind

    try:
        app = create_dashboard(config_path, runs=runs)
        if not app.sessions.enabled:
            raise ConfigError("the dashboard signs in with the admin key, and none is set",
                              hint="export LLMSWITCH_ADMIN_KEY=<a long random secret>, then "
                                   "run llmswitch ui again")
        try:
            import uvicorn
        except ImportError:
            raise ConfigError("llmswitch ui needs uvicorn",
                              hint="pip install 'llmswitch[gateway]'") from None
        sock = bind(host, port)
    except ServeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except LLMSwitchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"llmswitch dashboard on http://{shown}:{sock.getsockname()[1]}/ui "
               f"(ledger: {app.reader.where()}); Ctrl-C stops", err=True)
    config = uvicorn.Config(app, lifespan="on", access_log=False, log_level="warning",
                            server_header=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
