"""The `llmswitch` command. Subcommands live in their own modules and load on demand."""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import os
import sys
import warnings
from typing import Any

import click

from llmswitch import __version__

# name -> "module:attribute"; modules that are missing in this version are left out of --help.
COMMANDS: dict[str, str] = {
    "chat": "llmswitch.cli.chat:chat",
    "models": "llmswitch.cli.models:models",
    "report": "llmswitch.cli.report:report",
    "router": "llmswitch.cli.router:router",
    "traces": "llmswitch.cli.traces:traces",
    "serve": "llmswitch.cli.serve:serve",
    "plan": "llmswitch.cli.plan:plan",
    "keys": "llmswitch.cli.keys:keys",
    "ui": "llmswitch.cli.ui:ui",
}

# name -> its one-line help, so `llmswitch --help` lists commands without importing them (a
# test keeps each equal to the command's own help). A command missing here is imported.
SHORT_HELP: dict[str, str] = {
    "chat": "Send PROMPT to MODEL and print the answer.",
    "models": "List known models with context window, prices (USD per 1M tokens) and "
              "capabilities.",
    "report": "Per-model calls, errors, tokens, cost and latency p50/p95 from the spend ledger.",
    "router": "Learned cost-quality routers: `collect` an outcome table from your own prompts, "
              "`train` a router on it, and `eval` routers offline (zero model calls).",
    "traces": "List the latest requests, or show the trace tree of REQUEST_ID (a prefix is "
              "enough).",
    "plan": "Run plans: streams of work, each on its own model, in parallel where independent.",
    "keys": "Virtual keys for the gateway: create, list and revoke (stored hashed in the "
            "ledger's database).",
    "serve": "Serve the OpenAI- and Anthropic-compatible gateway over every model, alias and "
             "route.",
    "ui": "Serve the dashboard (spend, requests, keys, plan runs) over the ledger, at /ui.",
}


def _exists(name: str) -> bool:
    module_name = COMMANDS[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A group whose commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands whose modules exist (found without importing them)."""
        return [name for name in COMMANDS if _exists(name)]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, from `SHORT_HELP` where it has the command."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in SHORT_HELP:
                rows.append((name, click.utils.make_default_short_help(SHORT_HELP[name], limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return one command."""
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        ref = COMMANDS.get(name)
        if ref is None:
            return None
        module_name, _, attr = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command: click.Command = getattr(module, attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmswitch")
def cli() -> None:
    """Run work across many LLMs: chat, list models, report spend, train routers.

    Configuration comes from --config FILE, $LLMSWITCH_CONFIG, or ./llmswitch.yaml; with none,
    the embedded local model answers (no key, no network).
    """


def _show_warning(message: Any, category: type[Warning], *args: Any, **kw: Any) -> None:
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: warnings as one line, no tracebacks, exit 130 on Ctrl-C. With `--json`,
    every failure (usage errors and Ctrl-C included) prints the JSON error object."""
    warnings.showwarning = _show_warning
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in (args[:args.index("--")] if "--" in args else args)
    try:
        cli.main(args=args, prog_name="llmswitch", standalone_mode=False)
        _flush_stdout()
    except (KeyboardInterrupt, click.exceptions.Abort):
        _interrupted(as_json)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if as_json:
            _json_error("bad_request", exc.format_message())
            sys.exit(1)
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        # The system refused something (a full disk, a closed stdout, a folder we may not
        # write, a refused connection): say what, and name the output only when it was that.
        what = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        output = not where and exc.errno in (errno.ENOSPC, errno.EBADF, errno.EIO, errno.EPIPE)
        with contextlib.suppress(Exception):
            click.echo(f"error: {'could not write the output: ' if output else ''}{what}{where}",
                       err=True)
        sys.exit(1)
    except Exception as exc:  # pragma: no cover - last resort, never a traceback for users
        if os.environ.get("LLMSWITCH_DEBUG"):
            raise
        if as_json:
            _json_error("internal", f"{type(exc).__name__}: {exc}")
        click.echo(f"error: internal error: {type(exc).__name__}: {exc} "
                   "(set LLMSWITCH_DEBUG=1 for details)", err=True)
        sys.exit(1)


def _flush_stdout() -> None:
    """Flush now, so an output that cannot be written (a closed stdout, a full disk) is an
    error with exit 1 instead of a silent exit 0 at interpreter shutdown."""
    if sys.stdout is None or sys.stdout.closed:
        raise OSError(9, "standard output is closed")
    sys.stdout.flush()


def _json_error(kind: str, message: str) -> None:
    """The public `{"error": {...}}` object on stdout (as `cli.output.error_json` builds it)."""
    import json

    error = {"type": kind, "message": message, "provider": None, "model": None,
             "status": None}
    with contextlib.suppress(Exception):
        click.echo(json.dumps({"error": error}, ensure_ascii=False))


def _interrupted(as_json: bool = False) -> None:
    if as_json:
        _json_error("cancelled", "interrupted (Ctrl-C) before the command finished")
    click.echo("interrupted", err=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(130)  # do not wait for worker threads (a local model mid-generation)


if __name__ == "__main__":
    main()
