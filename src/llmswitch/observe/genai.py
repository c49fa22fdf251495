"""The OpenTelemetry GenAI semantic conventions, applied when a trace leaves llmswitch.

llmswitch's own trace (`observe.trace.Span`) keeps its attribute names: they are the CLI's
`--json` contract and the ledger's input. The exporters (`otel.py`, `metrics.py`) translate
them here, with the names of `opentelemetry-semantic-conventions` (extra `otel`):

| llmswitch span attribute            | exported as                                  |
| ----------------------------------- | -------------------------------------------- |
| `gen_ai.usage.cached_input_tokens`  | `gen_ai.usage.cache_read.input_tokens`       |
| `gen_ai.usage.cache_write_tokens`   | `gen_ai.usage.cache_creation.input_tokens`   |
| `gen_ai.usage.reasoning_tokens`     | `gen_ai.usage.reasoning.output_tokens`       |
| `llmswitch.ttft_ms` (milliseconds)  | also `gen_ai.response.time_to_first_chunk` (s) |
| `gen_ai.provider.name` (`bedrock`)  | the registry's value (`aws.bedrock`); the     |
|                                     | llmswitch name stays in `llmswitch.provider`  |

Messages (only when content capture is on) become `gen_ai.system_instructions`,
`gen_ai.input.messages` and `gen_ai.output.messages`: JSON lists of `{role, parts}`.
Imported only by the exporters, never by `import llmswitch`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes

from llmswitch.messages import ImagePart, Message, TextPart, ToolCall
from llmswitch.observe.trace import Span

_P = ga.GenAiProviderNameValues

OPERATION = ga.GEN_AI_OPERATION_NAME
PROVIDER = ga.GEN_AI_PROVIDER_NAME
REQUEST_MODEL = ga.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL = ga.GEN_AI_RESPONSE_MODEL
INPUT_TOKENS = ga.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = ga.GEN_AI_USAGE_OUTPUT_TOKENS
TOKEN_TYPE = ga.GEN_AI_TOKEN_TYPE
TIME_TO_FIRST_CHUNK = ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
ERROR_TYPE = error_attributes.ERROR_TYPE
SYSTEM_INSTRUCTIONS = ga.GEN_AI_SYSTEM_INSTRUCTIONS
INPUT_MESSAGES = ga.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES = ga.GEN_AI_OUTPUT_MESSAGES
CHAT = ga.GenAiOperationNameValues.CHAT.value
TOKEN_INPUT = ga.GenAiTokenTypeValues.INPUT.value
TOKEN_OUTPUT = ga.GenAiTokenTypeValues.OUTPUT.value

LLMSWITCH_PROVIDER = "llmswitch.provider"
TTFT_MS = "llmswitch.ttft_ms"

PROVIDER_NAMES: dict[str, str] = {
    "openai": _P.OPENAI.value,
    "anthropic": _P.ANTHROPIC.value,
    "bedrock": _P.AWS_BEDROCK.value,
    "gemini": _P.GCP_GEMINI.value,
    "vertex": _P.GCP_VERTEX_AI.value,
    "azure": _P.AZURE_AI_OPENAI.value,
    "deepseek": _P.DEEPSEEK.value,
    "mistral": _P.MISTRAL_AI.value,
    "groq": _P.GROQ.value,
    "xai": _P.X_AI.value,
    "perplexity": _P.PERPLEXITY.value,
    "cohere": _P.COHERE.value,
    "watsonx": _P.IBM_WATSONX_AI.value,
}
"""llmswitch provider names whose service has a well-known `gen_ai.provider.name`; the others
(`openrouter`, `ollama`, `local`, a config's own providers) are exported under their own name,
as the conventions ask for systems outside the registry."""

RENAMED: dict[str, str] = {
    "gen_ai.usage.cached_input_tokens": ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "gen_ai.usage.cache_write_tokens": ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "gen_ai.usage.reasoning_tokens": ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
}
"""llmswitch's own names for the token sub-counts -> the conventions' names."""

FINISH_REASONS = {"tool_calls": "tool_call"}
"""llmswitch finish reasons that the conventions spell differently."""


_SCALARS = frozenset((str, bool, int, float))


def provider_name(name: str) -> str:
    """The `gen_ai.provider.name` value for an llmswitch provider name."""
    return PROVIDER_NAMES.get(name, name)


def attribute_value(value: Any) -> Any:
    """An OpenTelemetry-legal attribute value (primitives, homogeneous lists; JSON otherwise)."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value:
        kind = type(value[0])
        if kind in (str, bool, int, float) and all(type(v) is kind for v in value):
            return list(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def error_type(span: Span) -> str | None:
    """The `error.type` of a span that did not end `ok` (its error's type, else its status)."""
    if span.status == "ok":
        return None
    found = span.attributes.get(ERROR_TYPE) or (span.error or {}).get("type") or span.status
    return str(found)


def span_attributes(span: Span) -> dict[str, Any]:
    """A span's attributes under the GenAI conventions' names (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in span.attributes.items():
        if value is None:
            continue
        renamed = RENAMED.get(key)
        if renamed is not None:
            if value:  # a zero sub-count says nothing the provider reported
                out[renamed] = value
        elif key == PROVIDER:
            out[key] = provider_name(str(value))
            if out[key] != value:
                out[LLMSWITCH_PROVIDER] = value
        else:
            out[key] = value if type(value) in _SCALARS else attribute_value(value)
            if key == TTFT_MS and isinstance(value, (int, float)):
                out[TIME_TO_FIRST_CHUNK] = value / 1000
    if span.kind == "attempt" and OPERATION not in out:
        out[OPERATION] = CHAT  # required on every inference span
    kind = error_type(span)
    if kind is not None:
        out[ERROR_TYPE] = kind
    return out


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_call", "id": call.id, "name": call.name,
            "arguments": _arguments(call.arguments)}


def message_parts(message: Message) -> list[dict[str, Any]]:
    """A message's content as the conventions' parts (inline image bytes are left out)."""
    if message.role == "tool":
        return [{"type": "tool_call_response", "id": message.tool_call_id,
                 "response": message.text}]
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "content": part.text})
        elif isinstance(part, ImagePart):
            parts.append({"type": "uri", "modality": "image", "uri": part.url}
                         if part.url is not None else
                         {"type": "blob", "modality": "image", "mime_type": part.media_type})
    parts.extend(_tool_call(c) for c in message.tool_calls)
    return parts


def content_attributes(messages: Sequence[Message], text: str | None = None,
                       tool_calls: Sequence[ToolCall] = (),
                       finish_reason: str | None = None) -> dict[str, str]:
    """Prompt (and answer, when there is one) as GenAI message attributes, JSON-encoded."""
    system = [p for m in messages if m.role == "system" for p in message_parts(m)]
    out: dict[str, str] = {}
    if system:
        out[SYSTEM_INSTRUCTIONS] = _json(system)
    out[INPUT_MESSAGES] = _json([{"role": m.role, "parts": message_parts(m)}
                                 for m in messages if m.role != "system"])
    if text is not None:
        parts = ([{"type": "text", "content": text}] if text else [])
        parts.extend(_tool_call(c) for c in tool_calls)
        reason = finish_reason or "stop"
        out[OUTPUT_MESSAGES] = _json([{"role": "assistant", "parts": parts,
                                       "finish_reason": FINISH_REASONS.get(reason, reason)}])
    return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
