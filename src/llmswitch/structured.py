"""Structured output: ask any model for a pydantic model or a JSON Schema, get a validated value.

```python
from llmswitch.structured import complete_structured

result = await complete_structured(switch, "local/smollm2-135m", "Name a colour", Colour)
result.value      # a validated Colour instance
result.completion # usage and cost summed over every attempt; trace has each attempt
```

Modes: `native` (the provider's JSON-Schema output), `tool` (a forced tool call whose
arguments are the answer), `prompt` (ask for JSON, extract it, repair). `auto` picks native
when the model's card has `json_schema`, tool when it has `tools`, else prompt. A failed
validation is retried with the errors fed back (bounded by `retries`), then `SchemaError`.

`enforce` / `enforce_stream` validate any call whose `response_format` carries a schema (what
`Switch` does through `strategies/guard.py`). Schemas are checked and answers validated by
`llmswitch.schemacheck` (the `jsonschema` package, Draft 2020-12); pydantic models by pydantic.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from llmswitch.catalog.card import ModelCard
from llmswitch.errors import BadRequestError, LLMSwitchError, ResponseError, SchemaError
from llmswitch.messages import Message, MessagesInput, ToolCall, ToolSpec, to_messages
from llmswitch.models import Model, closing
from llmswitch.request import Request, ResponseFormat, model_format
from llmswitch.results import Completion, StreamEnd, StreamEvent, StreamNotice
from llmswitch.schemacheck import MAX_ERRORS, SchemaProblem, compile_schema, unsatisfiable, validate
from llmswitch.strategies._tally import Tally

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Mode = Literal["auto", "native", "tool", "prompt"]
MODES: tuple[Mode, ...] = ("auto", "native", "tool", "prompt")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
__all__ = [
    "MODES", "Mode", "Schema", "SchemaProblem", "Structured", "complete_structured", "enforce",
    "enforce_stream", "extract_json", "run_structured", "schema_problem", "unsatisfiable",
    "validate",
]


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer: the whole text, a fenced block, or the first
    balanced `{...}` / `[...]`. `ValueError` when there is none."""
    stripped = text.strip()
    candidates = [stripped]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start = text.find(opener)
        end = text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start:end + 1])
    deep = False
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
        except RecursionError:  # hostile or broken output: not an internal error
            deep = True
    raise ValueError("the answer's JSON is nested too deeply to read" if deep else
                     "the answer contains no JSON value")


@dataclass(frozen=True)
class Schema(Generic[T]):
    """A target shape: a JSON Schema, optionally backed by a pydantic model that parses it."""

    json_schema: Mapping[str, Any]
    name: str = "response"
    model: type[BaseModel] | None = None

    @classmethod
    def of(cls, spec: type[BaseModel] | Mapping[str, Any] | Schema[Any],
           name: str | None = None) -> Schema[Any]:
        """From a pydantic model class, a JSON Schema mapping, or a `Schema`.

        A mapping is checked first (`SchemaProblem`, a `ValueError`, names the bad keyword).
        """
        if isinstance(spec, Schema):
            return spec
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            fmt = model_format(spec)
            return Schema(fmt.schema or {}, name or spec.__name__, spec)
        if isinstance(spec, Mapping):
            compile_schema(spec)
            return Schema(dict(spec), name or str(spec.get("title") or "response"))
        raise TypeError("schema must be a pydantic model class or a JSON Schema mapping")

    @classmethod
    def of_format(cls, fmt: ResponseFormat) -> Schema[Any]:
        """The schema of a `json_schema` response format (already checked when it was made)."""
        return Schema(fmt.schema or {}, fmt.name, fmt.model)

    def parse(self, text: str) -> tuple[T | None, list[str]]:
        """The validated value of an answer, or the errors to feed back."""
        try:
            raw = extract_json(text)
        except ValueError as exc:
            return None, [str(exc)]
        if self.model is not None:
            try:
                return self.model.model_validate(raw), []  # type: ignore[return-value]
            except ValidationError as exc:
                return None, [f"$.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                              for e in exc.errors()][:MAX_ERRORS]
        errors = compile_schema(self.json_schema).errors(raw)
        return (raw, []) if not errors else (None, errors)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` cannot be used (bad keyword, unresolvable `$ref`, unsatisfiable), else
    `None`."""
    try:
        compile_schema(schema)
    except SchemaProblem as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Structured(Generic[T]):
    """A validated value, the completion behind it (costs summed), and attempts used."""

    value: T
    completion: Completion
    attempts: int
    mode: str


def choose_mode(mode: Mode, card: ModelCard | None) -> Mode:
    """`auto` → native / tool / prompt by the card's capabilities."""
    if mode != "auto":
        return mode
    if card is not None and card.has("json_schema"):
        return "native"
    if card is not None and card.has("tools"):
        return "tool"
    return "prompt"


def shaped_request(request: Request, schema: Schema[Any], mode: Mode) -> Request:
    """The request asking for the schema in this mode (a copy; the caller's is untouched)."""
    if mode == "native":
        if request.settings.response_format.schema is schema.json_schema:
            return request  # the caller's own format (name, strict, retries kept)
        fmt = ResponseFormat("json_schema", schema.json_schema, _wire_name(schema.name),
                             model=schema.model)
        return request.with_settings(response_format=fmt)
    if mode == "tool":
        tool = ToolSpec(_wire_name(schema.name), "Return the answer as these arguments.",
                        schema.json_schema)
        return request.with_settings(tools=(tool,), tool_choice=tool.name)
    note = ("Answer with only a JSON value (no prose, no code fence) that matches this JSON "
            "Schema:\n" + json.dumps(schema.json_schema, separators=(",", ":")))
    messages = list(request.messages)
    if messages and messages[0].role == "system":
        messages[0] = Message.system(messages[0].text + "\n\n" + note)
    else:
        messages.insert(0, Message.system(note))
    return request.with_messages(messages)


def _wire_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "response"


def answer_text(completion: Completion, mode: Mode) -> str:
    """The JSON text of an answer (a tool call's arguments in tool mode)."""
    if mode == "tool" and completion.tool_calls:
        return completion.tool_calls[0].arguments
    return completion.text


def _canonical(text: str) -> str:
    try:
        json.loads(text)
        return text
    except ValueError:
        return json.dumps(extract_json(text), ensure_ascii=False)


def _feedback(request: Request, completion: Completion, mode: Mode,
              errors: list[str]) -> Request:
    problem = "Your answer did not match the schema: " + "; ".join(errors)
    call = completion.tool_calls[0] if mode == "tool" and completion.tool_calls else None
    if call is not None:
        fixed = ToolCall(call.id or "call_0", call.name, call.arguments)
        extra = [Message.assistant("", [fixed]), Message.tool(fixed.id, problem, fixed.name)]
    else:
        extra = [Message.assistant(completion.text),
                 Message.user(problem + ". Reply again with only the corrected JSON.")]
    return request.with_messages([*request.messages, *extra])


def _unparsed(request: Request, completion: Completion, mode: Mode) -> bool:
    """An answer that is not the JSON answer: a refusal, or a call of one of the caller's
    own tools (the schema applies to the final answer, after the tools have run)."""
    if completion.refusal is not None and not completion.text.strip():
        return True
    return mode != "tool" and bool(completion.tool_calls) and bool(request.settings.tools)


def _judge(schema: Schema[Any], completion: Completion, mode: Mode) -> tuple[Any, list[str]]:
    value, errors = schema.parse(answer_text(completion, mode))
    if errors and completion.finish_reason == "length":
        errors = [f"the answer was cut at max_tokens ({completion.usage.output_tokens} "
                  "tokens) before it was complete", *errors[1:]]
    return value, errors


def _valid(tally: Tally, model: Model, completion: Completion, mode: Mode, value: Any,
           attempt: int) -> Completion:
    tally.decide(model.name, f"valid on attempt {attempt}", attempts=attempt)
    text = _canonical(answer_text(completion, mode))
    return tally.result(completion.replace(text=text, tool_calls=(), parsed=value))


def _gave_up(tally: Tally, where: str, attempts: int, errors: list[str]) -> SchemaError:
    tally.decide("", f"no valid answer in {attempts} attempts", attempts=attempts)
    tries = f"{attempts} attempts" if attempts != 1 else "1 attempt"
    return tally.fail(SchemaError(
        f"{where}: the answer did not match the schema after {tries}: "
        + "; ".join(errors), attempts=attempts,
        hint="raise max_tokens if answers were cut; else loosen the schema, raise retries, "
        "or use a stronger model"))


async def run_structured(
    model: Model,
    request: Request,
    schema: Schema[T],
    *,
    mode: Mode = "auto",
    retries: int = 2,
    card: ModelCard | None = None,
    where: str = "structured output",
    span_name: str | None = None,
) -> Structured[T]:
    """Ask `model` for `schema` with up to `retries` corrective retries.

    Raises `SchemaError` (trace: every attempt) when no attempt validates; provider errors
    propagate with the attempts so far in their trace. The completion's `parsed` is the value.
    """
    chosen = choose_mode(mode, card)
    tally = Tally(span_name or where, "structured", **{"llmswitch.structured.mode": chosen})
    base = shaped_request(request, schema, chosen)
    current = base
    errors: list[str] = []
    for attempt in range(1, retries + 2):
        try:
            completion = tally.add(await model.complete(current))
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        value, errors = _judge(schema, completion, chosen)
        if not errors:
            done = _valid(tally, model, completion, chosen, value, attempt)
            return Structured(value, done, attempt, chosen)
        current = _feedback(current, completion, chosen, errors)
    raise _gave_up(tally, where, retries + 1, errors)


async def enforce(model: Model, request: Request, where: str) -> Completion:
    """`model`'s answer to a request whose `response_format` has a schema, validated: asked
    again with the errors up to the format's `retries` times, then `SchemaError`. The request
    is sent as it is (the provider's own JSON-Schema output); refusals and calls of the
    caller's tools come back unvalidated, with `parsed` `None`."""
    fmt = request.settings.response_format
    schema: Schema[Any] = Schema.of_format(fmt)
    tally = Tally(f"schema {where}", "structured", **{"llmswitch.structured.mode": "native"})
    current = request
    errors: list[str] = []
    for attempt in range(1, fmt.retries + 2):
        try:
            completion = tally.add(await model.complete(current))
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        if _unparsed(request, completion, "native"):
            tally.decide(model.name, "not a JSON answer (refusal or tool call)")
            return completion if attempt == 1 else tally.result(completion)
        value, errors = _judge(schema, completion, "native")
        if not errors:
            if attempt == 1:  # the common case: the answer as it came, trace unchanged
                return completion.replace(text=_canonical(completion.text), parsed=value)
            return _valid(tally, model, completion, "native", value, attempt)
        current = _feedback(current, completion, "native", errors)
    raise _gave_up(tally, where, fmt.retries + 1, errors)


async def enforce_stream(model: Model, request: Request, where: str
                         ) -> AsyncIterator[StreamEvent]:
    """`enforce` for a stream: each attempt's events are relayed as they come; an attempt
    that fails the schema is followed by a `StreamNotice("schema_retry", …)` and the next
    attempt's events; the final `StreamEnd` carries the valid answer (`parsed` set) with
    usage and cost summed over every attempt."""
    fmt = request.settings.response_format
    schema: Schema[Any] = Schema.of_format(fmt)
    tally = Tally(f"schema {where}", "structured", **{"llmswitch.structured.mode": "native"})
    current = request
    errors: list[str] = []
    for attempt in range(1, fmt.retries + 2):
        final: Completion | None = None
        try:
            async with closing(model.stream(current)) as events:
                async for event in events:
                    if isinstance(event, StreamEnd):
                        final = tally.add(event.completion)
                        break
                    yield event
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        if final is None:
            raise tally.fail(ResponseError(f"{where}: the stream ended without a final result"))
        if _unparsed(request, final, "native"):
            tally.decide(model.name, "not a JSON answer (refusal or tool call)")
            yield StreamEnd(final if attempt == 1 else tally.result(final))
            return
        value, errors = _judge(schema, final, "native")
        if not errors:
            yield StreamEnd(final.replace(text=_canonical(final.text), parsed=value)
                            if attempt == 1 else
                            _valid(tally, model, final, "native", value, attempt))
            return
        if attempt <= fmt.retries:
            yield StreamNotice("schema_retry", f"attempt {attempt} did not match the schema "
                               f"({errors[0]}); asking again")
        current = _feedback(current, final, "native", errors)
    raise _gave_up(tally, where, fmt.retries + 1, errors)


@overload
async def complete_structured(
    switch: Any, model: str | None, messages: MessagesInput, schema: type[M], *,
    mode: Mode = ..., retries: int = ..., **settings: Any,
) -> Structured[M]: ...


@overload
async def complete_structured(
    switch: Any, model: str | None, messages: MessagesInput, schema: Mapping[str, Any], *,
    mode: Mode = ..., retries: int = ..., **settings: Any,
) -> Structured[Any]: ...


async def complete_structured(
    switch: Any,
    model: str | None,
    messages: MessagesInput,
    schema: type[BaseModel] | Mapping[str, Any],
    *,
    mode: Mode = "auto",
    retries: int = 2,
    **settings: Any,
) -> Structured[Any]:
    """Ask `switch`'s model (a name, alias or route) for a validated value of `schema`.

    A schema that cannot be checked is a `BadRequestError` naming the keyword, one no value
    can match a `SchemaError`; both before any call.
    """
    from llmswitch.routing.capability import card_for

    try:
        shape = Schema.of(schema)
    except SchemaProblem as exc:
        if exc.unsatisfiable:
            name = str(schema.get("title") or "response") if isinstance(schema, Mapping) else ""
            raise SchemaError(f"schema {name!r} {exc.problem}", attempts=0) from None
        raise BadRequestError(str(exc.within("schema"))) from None
    name = model or switch.config.default_model
    request = switch.request(to_messages(messages), **settings)
    card = card_for(name, switch.config, switch.catalog)
    target = switch.model(name)
    target = getattr(target, "unguarded", target)  # this function does the validating
    return await run_structured(target, request, shape, mode=mode,
                                retries=retries, card=card, where=f"structured {name}")
