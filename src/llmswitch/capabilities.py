"""Capabilities drive behaviour: before a call, check the request against the model's card.

| the request asks for | the card lacks                       | what happens                      |
|----------------------|--------------------------------------|-----------------------------------|
| tools                | `tools`                              | `UnsupportedError`                |
| images               | `vision`                             | `UnsupportedError`                |
| a JSON Schema        | `json_schema`, has `json_mode`       | emulated: JSON mode + the schema  |
|                      |                                      | in the system prompt              |
| a JSON Schema        | both, has `tools` (Anthropic,        | the adapter forces a tool call    |
|                      | Bedrock)                             | (noted, not rewritten here)       |
| a JSON Schema        | all of these                         | `UnsupportedError`                |
| any JSON object      | `json_mode`                          | emulated: an instruction in the   |
|                      |                                      | system prompt                     |
| input + `max_tokens` | more than `context_window`           | `ContextTooLongError`             |

Emulations are the standard ones (what the official SDKs and most gateways do) and are
reported as notes, which `HttpModel` records in the attempt span as `llmswitch.emulated`.
Prompt-based JSON is not guaranteed valid: pair it with a schema-enforcing strategy.

Nothing is checked for unknown models (`card is None`) nor for cards whose capabilities were
never declared (a bare model definition in llmswitch.yaml). Local models (`local/*`) always
have JSON and JSON Schema: llama.cpp constrains them with grammars.

The context check counts exactly for OpenAI models (tiktoken) and refuses only a clear overrun
for approximate counts (the estimate divided by `APPROX_MARGIN`), so a borderline request is
left for the provider to judge.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from llmswitch.catalog.card import Capability, ModelCard
from llmswitch.catalog.catalog import Catalog
from llmswitch.errors import ContextTooLongError, UnsupportedError
from llmswitch.messages import Message
from llmswitch.request import JSON, TEXT, Request
from llmswitch.tokens import estimate_request_tokens, is_exact, upper_bound_tokens

JSON_SCHEMA_VIA_JSON_MODE = "json_schema via json_mode + schema in the system prompt"
JSON_SCHEMA_VIA_FORCED_TOOL = "json_schema via a forced tool call"
JSON_VIA_PROMPT = "json via an instruction in the system prompt"

FORCED_TOOL_PROVIDERS = frozenset({"anthropic", "bedrock"})
"""Providers whose adapters turn a JSON Schema into a forced tool call themselves."""
GRAMMAR_PROVIDERS = frozenset({"local"})
"""Providers that constrain any model's output with grammars (JSON and JSON Schema)."""
APPROX_MARGIN = 1.25
"""Approximate counts are divided by this before the window check (see docs/tokens.md)."""

SCHEMA_INSTRUCTION = "Answer with one JSON value that matches this JSON Schema, and nothing else:"
JSON_INSTRUCTION = "Answer with one JSON object, and nothing else."


def check_request(request: Request, card: ModelCard | None,
                  catalog: Catalog | None = None) -> list[str]:
    """The emulations `request` needs on this model; raises when it cannot be served.

    Raises `UnsupportedError` (tools, images, JSON Schema the model cannot do) or
    `ContextTooLongError` (input plus `max_tokens` over the window), with a hint naming a model
    from `catalog` (default: the shipped one) that can, or how to override the card.
    """
    if card is None or "capabilities" not in card.model_fields_set:
        return []
    has = set(card.capabilities)
    if card.provider in GRAMMAR_PROVIDERS:
        has |= {"json_mode", "json_schema"}
    needs = needed_capabilities(request)
    notes: list[str] = []
    for capability in ("tools", "vision"):
        if capability in needs and capability not in has:
            raise _unsupported(card, capability, needs, catalog)
    kind = request.settings.response_format.kind
    if kind == "json_schema" and "json_schema" not in has:
        if "json_mode" in has:
            notes.append(JSON_SCHEMA_VIA_JSON_MODE)
        elif "tools" in has and card.provider in FORCED_TOOL_PROVIDERS:
            notes.append(JSON_SCHEMA_VIA_FORCED_TOOL)
        else:
            raise _unsupported(card, "json_schema", needs, catalog)
    elif kind == "json" and "json_mode" not in has:
        notes.append(JSON_VIA_PROMPT)
    check_context(request, card, catalog)
    return notes


def needed_capabilities(request: Request) -> set[Capability]:
    """What a request needs from a model (`tools`, `vision`, `json_schema`, `json_mode`)."""
    needs: set[Capability] = set()
    if request.settings.tools:
        needs.add("tools")
    if request.has_images:
        needs.add("vision")
    kind = request.settings.response_format.kind
    if kind == "json_schema":
        needs.add("json_schema")
    elif kind == "json":
        needs.add("json_mode")
    return needs


def check_context(request: Request, card: ModelCard, catalog: Catalog | None = None) -> None:
    """Raise `ContextTooLongError` when the input plus `max_tokens` exceeds the window."""
    output = request.settings.max_tokens or 0
    if upper_bound_tokens(request, card) + output <= card.context_window:
        return  # clearly fits: no need to tokenize
    estimate = estimate_request_tokens(request, card)
    exact = is_exact(card)
    judged = estimate if exact else int(estimate / APPROX_MARGIN)
    if judged + output <= card.context_window:
        return
    asked = f"about {estimate:,} input tokens" if not exact else f"{estimate:,} input tokens"
    if output:
        asked += f" + max_tokens {output:,}"
    better = suggest_model(catalog, card, needed_capabilities(request), judged + output, output)
    raise ContextTooLongError(
        f"the request needs {asked}, more than {card.id}'s {card.context_window:,}-token "
        "context window",
        provider=card.provider,
        model=card.wire_name,
        hint=f"use a larger-window model such as {better}, or shorten the input"
        if better else "shorten the input or lower max_tokens",
    )


def prepare_request(request: Request, card: ModelCard | None,
                    catalog: Catalog | None = None) -> tuple[Request, list[str]]:
    """Check `request` (see `check_request`) and apply the emulations it needs.

    Returns the request to send (a copy when rewritten) and the emulation notes.
    """
    notes = check_request(request, card, catalog)
    if JSON_SCHEMA_VIA_JSON_MODE in notes:
        schema = json.dumps(request.settings.response_format.schema, separators=(",", ":"))
        request = _with_instruction(request, f"{SCHEMA_INSTRUCTION}\n{schema}")
        request = dataclasses.replace(
            request, settings=dataclasses.replace(request.settings, response_format=JSON))
    elif JSON_VIA_PROMPT in notes:
        request = _with_instruction(request, JSON_INSTRUCTION)
        request = dataclasses.replace(
            request, settings=dataclasses.replace(request.settings, response_format=TEXT))
    return request, notes


def _with_instruction(request: Request, text: str) -> Request:
    messages = list(request.messages)
    if messages and messages[0].role == "system":
        first = messages[0]
        messages[0] = Message.system(f"{first.text}\n\n{text}" if first.text else text)
    else:
        messages.insert(0, Message.system(text))
    return request.with_messages(messages)


def suggest_model(catalog: Catalog | None, card: ModelCard, needs: Iterable[Capability],
                  min_window: int = 0, min_output: int = 0) -> str | None:
    """A model with every needed capability, a large enough window and output limit: the
    same provider first, then the same family, then the cheapest input price."""
    needed = set(needs)
    candidates = [
        c for c in (catalog if catalog is not None else Catalog.shipped())
        if c.id != card.id and needed <= set(c.capabilities) and c.context_window >= min_window
        and c.max_output_tokens >= min_output
    ]
    if not candidates:
        return None
    best = min(candidates, key=lambda c: (
        c.provider != card.provider,
        c.family != card.family,
        c.input_per_mtok if c.input_per_mtok is not None else float("inf"),
    ))
    return best.id


def _unsupported(card: ModelCard, capability: Capability, needs: set[Capability],
                 catalog: Catalog | None) -> UnsupportedError:
    what = {"tools": "tool calling", "vision": "image input",
            "json_schema": "JSON Schema output"}.get(capability, capability)
    better = suggest_model(catalog, card, needs)
    override = (f'or, if it can, override its card in llmswitch.yaml: models: "{card.id}": '
                f"capabilities: [{', '.join([*card.capabilities, capability])}]")
    return UnsupportedError(
        f"{card.id} does not support {what} (its catalog card lacks {capability!r})",
        provider=card.provider,
        model=card.wire_name,
        hint=f"use a model that does, such as {better}, {override}" if better else override,
    )
