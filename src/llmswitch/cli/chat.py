"""`llmswitch chat MODEL PROMPT`: one request to a model, alias or route."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from llmswitch.cli.output import completion_json, config_option, fail, json_option, open_switch
from llmswitch.errors import BadRequestError, LLMSwitchError
from llmswitch.models import collect
from llmswitch.results import Completion, StreamEnd, StreamNotice, TextDelta
from llmswitch.switch import Switch


@click.command()
@click.argument("model")
@click.argument("prompt")
@config_option
@click.option("--system", default=None, help="A system prompt.")
@click.option("--stream", is_flag=True, help="Stream the answer as it is generated.")
@json_option
@click.option("--trace", "show_trace", is_flag=True, help="Print the decision trace after.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Output limit.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds for the whole call.")
@click.option("--schema", default=None,
              help="JSON Schema for the answer: a file path or inline JSON.")
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
    json_mode: bool,
    meta: tuple[str, ...],
) -> None:
    """Send PROMPT to MODEL and print the answer.

    MODEL is `provider/model` (openai/gpt-4o-mini, local/smollm2-135m), an alias, or a route
    from the config. PROMPT `-` reads standard input. With --json, print one JSON object:
    text, model, provider, finish_reason, tool_calls, usage, cost_usd, latency_ms, ttft_ms,
    trace; on failure `{"error": {...}}` and exit status 1.
    """
    if prompt == "-":
        prompt = sys.stdin.read()
    settings: dict[str, Any] = {
        k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature),
                          ("seed", seed), ("timeout", timeout)) if v is not None
    }
    try:
        if schema is not None:
            settings["response_format"] = {"schema": _load_schema(schema), "name": "response"}
        elif json_mode:
            settings["response_format"] = "json"
    except LLMSwitchError as exc:
        fail(exc, as_json)
    try:
        metadata = _parse_meta(meta)
    except LLMSwitchError as exc:
        fail(exc, as_json)
    switch = open_switch(config_path, as_json)
    try:
        completion = asyncio.run(_run(switch, model, prompt, system, stream, as_json, settings,
                                      metadata))
    except Exception as exc:  # every failure is reported, as JSON with --json, never a traceback
        fail(exc, as_json)
    if as_json:
        click.echo(json.dumps(completion_json(completion), ensure_ascii=False))
        return
    shown = completion.text or completion.refusal or ""
    if not stream and (shown or not completion.tool_calls):
        click.echo(shown)
    for call in completion.tool_calls:
        click.echo(f"[tool call] {call.name}({call.arguments})")
    if show_trace and completion.trace is not None:
        from llmswitch.cli.tracefmt import render_trace

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
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise BadRequestError(f"--schema: no such file {value!r} (and not inline JSON)")
        text = path.read_text(encoding="utf-8")
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise BadRequestError(f"--schema: not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise BadRequestError("--schema: a JSON Schema must be an object")
    return schema
