"""Shared CLI plumbing: the public JSON shapes, error printing, loading a Switch."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import click

from llmswitch import Completion, Switch
from llmswitch.errors import LLMSwitchError

EXIT_FAILURE = 1

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: $LLMSWITCH_CONFIG, else ./llmswitch.yaml, else built-in).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def completion_json(completion: Completion, with_trace: bool = True) -> dict[str, Any]:
    """The public `llmswitch chat --json` object (a stable contract; see README)."""
    out: dict[str, Any] = {
        "text": completion.text,
        "model": completion.model,
        "provider": completion.provider,
        "finish_reason": completion.finish_reason,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls
        ],
        "usage": completion.usage.to_dict(),
        "cost_usd": completion.cost_usd,
        "latency_ms": round(completion.latency_ms, 3),
        "ttft_ms": round(completion.ttft_ms, 3) if completion.ttft_ms is not None else None,
        "refusal": completion.refusal,
    }
    if with_trace:
        out["trace"] = completion.trace.to_dict() if completion.trace is not None else None
    return out


def error_json(error: BaseException) -> dict[str, Any]:
    """The public error object: `{"error": {"type", "message", "provider", "model", "status"}}`."""
    if isinstance(error, LLMSwitchError):
        return {"error": error.to_dict()}
    return {"error": {"type": "internal", "message": f"{type(error).__name__}: {error}",
                      "provider": None, "model": None, "status": None}}


def fail(error: BaseException, as_json: bool) -> NoReturn:
    """Print an error (JSON on stdout with --json, one line on stderr otherwise) and exit 1."""
    if os.environ.get("LLMSWITCH_DEBUG") and not isinstance(error, LLMSwitchError):
        raise error
    if as_json:
        click.echo(json.dumps(error_json(error), ensure_ascii=False))
    elif isinstance(error, LLMSwitchError):
        click.echo(f"error: {error}", err=True)
    else:
        click.echo(f"error: internal error: {type(error).__name__}: {error} "
                   "(set LLMSWITCH_DEBUG=1 for details)", err=True)
    sys.exit(EXIT_FAILURE)


def open_switch(config_path: str | None, as_json: bool) -> Switch:
    """A Switch for a CLI command, with config errors printed the CLI way."""
    try:
        return Switch(config_path)
    except Exception as exc:  # a config error, or (a bug) anything else: never a traceback
        fail(exc, as_json)
