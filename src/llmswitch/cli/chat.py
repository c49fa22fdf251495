"""`llmswitch chat MODEL PROMPT`: one request to a model, alias or route."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from llmswitch import Completion, StreamEnd, StreamNotice, Switch, TextDelta, collect
from llmswitch.cli.output import completion_json, config_option, fail, json_option, open_switch
from llmswitch.cli.tracefmt import render_trace
from llmswitch.errors import BadRequestError, LLMSwitchError


class JSONErrorsCommand(click.Command):
    """A command whose usage errors follow `--json`: the JSON error object, exit status 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse, reporting a usage error as JSON when `--json` is among the arguments."""
        wants_json = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if not wants_json:
                raise
            fail(BadRequestError(exc.format_message()), as_json=True)


@click.command(cls=JSONErrorsCommand)
@click.argument("model")
@click.argument("prompt")
@config_option
@click.option("--system", default=None, help="A system prompt.")
@click.option("--stream", is_flag=True, help="Stream the answer as it is generated.")
@json_option
@click.option("--trace", "show_trace", is_flag=True,
              help="Print the decision trace on stderr, after the answer (or the error).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Output limit.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None,
              help="Sampling temperature, 0 to 2.")
@click.option("--seed", type=int, default=None, help="Seed for repeatable sampling.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds for the whole call.")
@click.option("--schema", default=None,
              help="JSON Schema for the answer: a file path or inline JSON. The answer is "
                   "validated (Draft 2020-12) and asked for again when it does not match.")
@click.option("--schema-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="With --schema: corrective retries before failing with schema_failed.")
@click.option("--json-mode", is_flag=True, help="Ask for any JSON object.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Request metadata for routing rules (repeatable), e.g. --meta task=sql.")
def chat(
    model: str,
    prompt: str,
    config_path: str | None,
    system: str | None,
    stream: bool,
    as_json: bool,
    show_trace: bool,
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    timeout: float | None,
    schema: str | None,
    schema_retries: int,
    json_mode: bool,
    meta: tuple[str, ...],
) -> None:
    """Send PROMPT to MODEL and print the answer.

    MODEL is `provider/model` (openai/gpt-4o-mini, local/smollm2-135m), an alias, or a route
    from the config. PROMPT `-` reads standard input. With --json, print one JSON object:
    text, model, provider, finish_reason, tool_calls, usage, cost_usd, latency_ms, ttft_ms,
    refusal, trace; on failure `{"error": {...}}` and exit status 1.
    """
    prompt = _read_prompt(prompt, as_json)
    if system is not None:
        _check_text("--system", system, as_json)
    settings: dict[str, Any] = {
        k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature),
                          ("seed", seed), ("timeout", timeout)) if v is not None
    }
    try:
        if schema is not None:
            settings["response_format"] = {"schema": _load_schema(schema), "name": "response",
                                           "retries": schema_retries}
        elif json_mode:
            settings["response_format"] = "json"
        metadata = _parse_meta(meta)
    except LLMSwitchError as exc:
        fail(exc, as_json)
    switch = open_switch(config_path, as_json)
    try:
        completion = asyncio.run(_run(switch, model, prompt, system, stream, as_json, settings,
                                      metadata))
    except Exception as exc:  # every failure is reported, as JSON with --json, never a traceback
        trace = getattr(exc, "trace", None)
        if show_trace and trace is not None:
            click.echo(render_trace(trace), err=True)
        fail(exc, as_json)
    _print_result(completion, as_json, stream, show_trace)


def _read_prompt(prompt: str, as_json: bool) -> str:
    from_stdin = prompt == "-"
    if from_stdin:
        prompt = _read_stdin(as_json)
    if not prompt.strip():
        where = " (nothing on standard input)" if from_stdin else ""
        fail(BadRequestError(f"the prompt is empty{where}"), as_json)
    _check_text("PROMPT", prompt, as_json)
    return prompt


def _check_text(where: str, text: str, as_json: bool) -> None:
    """Arguments hold bytes that are not UTF-8 as lone surrogates, which no request can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        fail(BadRequestError(f"{where} is not UTF-8 text (a byte that is not UTF-8 at "
                             f"character {exc.start})", hint="send text"), as_json)


def _read_stdin(as_json: bool) -> str:
    """PROMPT `-`: standard input as UTF-8 text (binary input is refused, not sent)."""
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    try:
        if stream is None:
            raise OSError("standard input is closed")
        data = stream.read()
    except (OSError, ValueError) as exc:  # closed (`<&-`), or not readable
        fail(BadRequestError(f"PROMPT '-': cannot read standard input ({exc})",
                             hint="pipe the prompt in, or give it as an argument"), as_json)
    if isinstance(data, str):
        return data
    try:
        text: str = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(BadRequestError(f"PROMPT '-': standard input is not UTF-8 text (byte "
                             f"{data[exc.start]:#04x} at offset {exc.start})",
                             hint="send text; a binary file is not a prompt"), as_json)
    if "\x00" in text:
        fail(BadRequestError("PROMPT '-': standard input holds NUL bytes (a binary file?)",
                             hint="send text; a binary file is not a prompt"), as_json)
    return text


def _print_result(completion: Completion, as_json: bool, stream: bool, show_trace: bool) -> None:
    if as_json:
        click.echo(json.dumps(completion_json(completion), ensure_ascii=False))
        return
    shown = completion.text or completion.refusal or ""
    if not stream and (shown or not completion.tool_calls):
        click.echo(shown)
    for call in completion.tool_calls:
        click.echo(f"[tool call] {call.name}({call.arguments})")
    if show_trace and completion.trace is not None:
        click.echo(render_trace(completion.trace), err=True)


async def _run(
    switch: Switch,
    model: str,
    prompt: str,
    system: str | None,
    stream: bool,
    as_json: bool,
    settings: dict[str, Any],
    metadata: dict[str, str],
) -> Completion:
    settings = {**settings, "metadata": metadata} if metadata else settings
    try:
        if not stream:
            return await switch.complete(model, prompt, system=system, **settings)
        if as_json:
            return await collect(switch.stream(model, prompt, system=system, **settings))
        return await _print_stream(switch, model, prompt, system, settings)
    finally:
        await switch.aclose()


async def _print_stream(
    switch: Switch, model: str, prompt: str, system: str | None, settings: dict[str, Any]
) -> Completion:
    completion: Completion | None = None
    async for event in switch.stream(model, prompt, system=system, **settings):
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, StreamNotice):
            click.echo(f"\n[{event.kind}] {event.detail}", err=True)
        elif isinstance(event, StreamEnd):
            completion = event.completion
    sys.stdout.write("\n")
    assert completion is not None  # a stream without StreamEnd raises before this
    return completion


def _parse_meta(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadRequestError(f"--meta expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def _load_schema(value: str) -> Any:
    """The JSON Schema of `--schema` (inline JSON or a file), checked before any call."""
    text, where = value, "--schema"
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value)
        try:
            is_dir, is_file = path.is_dir(), path.is_file()
        except OSError:  # e.g. a name too long to be a path
            is_dir = is_file = False
        if is_dir:
            raise BadRequestError(f"--schema: {value!r} is a directory, not a JSON Schema file")
        if is_file:
            try:
                text = path.read_text(encoding="utf-8-sig")  # editors may write a BOM
            except (OSError, UnicodeDecodeError) as exc:
                raise BadRequestError(f"--schema: cannot read {value}: {exc}") from None
            where = f"--schema {value}"
    try:
        schema = json.loads(text)
    except RecursionError:
        raise BadRequestError(f"{where}: nested too deeply to be a JSON Schema") from None
    except ValueError as exc:
        if where == "--schema" and not value.lstrip().startswith(("{", "[")):
            raise BadRequestError(f"--schema: no such file {value!r} (and not inline JSON)"
                                  ) from None
        raise BadRequestError(f"{where}: not valid JSON: {exc}") from None
    from llmswitch.schemacheck import SchemaProblem, compile_schema

    try:
        compile_schema(schema)
    except SchemaProblem as exc:
        raise BadRequestError(str(exc.within(where))) from None
    return schema
