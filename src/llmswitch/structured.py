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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, ValidationError

from llmswitch.catalog.card import ModelCard
from llmswitch.errors import LLMSwitchError, SchemaError
from llmswitch.messages import Message, MessagesInput, ToolCall, ToolSpec, to_messages
from llmswitch.models import Model
from llmswitch.request import Request, ResponseFormat
from llmswitch.results import Completion
from llmswitch.strategies._tally import Tally

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Mode = Literal["auto", "native", "tool", "prompt"]
MODES: tuple[Mode, ...] = ("auto", "native", "tool", "prompt")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


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
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("the answer contains no JSON value")


def validate(value: Any, schema: Mapping[str, Any], path: str = "$",
             root: Mapping[str, Any] | None = None) -> list[str]:
    """Errors of `value` against a JSON Schema (the common subset; empty list when valid)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        return validate(value, _ref(root, str(schema["$ref"])), path, root)
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, k) for k in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must be {schema['const']!r}")
    errors += _bounds(value, schema, path)
    if isinstance(value, dict):
        errors += _object(value, schema, path, root)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]", root)
    for key in ("allOf", "anyOf", "oneOf"):
        subs = schema.get(key)
        if not subs:
            continue
        passed = sum(not validate(value, s, path, root) for s in subs)
        if (key == "allOf" and passed < len(subs)) or (key == "anyOf" and passed == 0) or (
                key == "oneOf" and passed != 1):
            errors.append(f"{path}: does not match {key}")
    return errors


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def _ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/") if ref != "#" else []:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        raise ValueError(f"cannot resolve $ref {ref!r}")
    return node


def _bounds(value: Any, s: Mapping[str, Any], path: str) -> list[str]:
    out: list[str] = []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in s and value < s["minimum"]:
            out.append(f"{path}: {value} < minimum {s['minimum']}")
        if "maximum" in s and value > s["maximum"]:
            out.append(f"{path}: {value} > maximum {s['maximum']}")
    if isinstance(value, str):
        if len(value) < s.get("minLength", 0):
            out.append(f"{path}: shorter than {s['minLength']} characters")
        if len(value) > s.get("maxLength", math.inf):
            out.append(f"{path}: longer than {s['maxLength']} characters")
        if "pattern" in s and re.search(str(s["pattern"]), value) is None:
            out.append(f"{path}: does not match pattern {s['pattern']!r}")
    if isinstance(value, list):
        if len(value) < s.get("minItems", 0):
            out.append(f"{path}: fewer than {s['minItems']} items")
        if len(value) > s.get("maxItems", math.inf):
            out.append(f"{path}: more than {s['maxItems']} items")
    return out


def _object(value: dict[str, Any], s: Mapping[str, Any], path: str,
            root: Mapping[str, Any]) -> list[str]:
    out = [f"{path}: missing required property {k!r}" for k in s.get("required", ())
           if k not in value]
    props: Mapping[str, Any] = s.get("properties") or {}
    extra = s.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            out += validate(item, props[key], f"{path}.{key}", root)
        elif extra is False:
            out.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, Mapping):
            out += validate(item, extra, f"{path}.{key}", root)
    return out


def unsatisfiable(schema: Mapping[str, Any], path: str = "$") -> str | None:
    """Why no value can match `schema` (contradictory bounds, empty enum, …), else `None`."""
    pairs = (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems"))
    for low, high in pairs:
        if low in schema and high in schema and schema[low] > schema[high]:
            return f"{path}: {low} {schema[low]} > {high} {schema[high]}"
    if "enum" in schema and not schema["enum"]:
        return f"{path}: enum is empty"
    if isinstance(schema.get("type"), list) and not schema["type"]:
        return f"{path}: type list is empty"
    props: Mapping[str, Any] = schema.get("properties") or {}
    if schema.get("additionalProperties") is False:
        missing = [k for k in schema.get("required", ()) if k not in props]
        if missing:
            return f"{path}: requires {missing} but allows no such property"
    for key, sub in props.items():
        if isinstance(sub, Mapping) and key in schema.get("required", ()):
            why = unsatisfiable(sub, f"{path}.{key}")
            if why:
                return why
    items = schema.get("items")
    if isinstance(items, Mapping) and schema.get("minItems", 0) > 0:
        return unsatisfiable(items, f"{path}[]")
    return None


@dataclass(frozen=True)
class Schema(Generic[T]):
    """A target shape: a JSON Schema, optionally backed by a pydantic model that parses it."""

    json_schema: Mapping[str, Any]
    name: str = "response"
    model: type[BaseModel] | None = None

    @classmethod
    def of(cls, spec: type[BaseModel] | Mapping[str, Any] | Schema[Any],
           name: str | None = None) -> Schema[Any]:
        """From a pydantic model class, a JSON Schema mapping, or a `Schema`."""
        if isinstance(spec, Schema):
            return spec
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            return Schema(spec.model_json_schema(), name or spec.__name__, spec)
        if isinstance(spec, Mapping):
            return Schema(dict(spec), name or str(spec.get("title") or "response"))
        raise TypeError("schema must be a pydantic model class or a JSON Schema mapping")

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
                              for e in exc.errors()][:8]
        errors = validate(raw, self.json_schema)
        return (raw, []) if not errors else (None, errors[:8])


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
        fmt = ResponseFormat.json_schema(schema.json_schema, _wire_name(schema.name))
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
    propagate with the attempts so far in their trace.
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
        value, errors = schema.parse(answer_text(completion, chosen))
        if errors and completion.finish_reason == "length":
            errors = [f"the answer was cut at max_tokens ({completion.usage.output_tokens} "
                      "tokens) before it was complete", *errors[1:]]
        if not errors:
            tally.decide(model.name, f"valid on attempt {attempt}", attempts=attempt)
            text = _canonical(answer_text(completion, chosen))
            done = tally.result(completion.replace(text=text, tool_calls=()))
            return Structured(value, done, attempt, chosen)  # type: ignore[arg-type]
        current = _feedback(base if attempt == 1 else current, completion, chosen, errors)
    attempts = retries + 1
    tally.decide("", f"no valid answer in {attempts} attempts", attempts=attempts)
    raise tally.fail(SchemaError(
        f"{where}: the answer did not match the schema after {attempts} attempts: "
        + "; ".join(errors), attempts=attempts,
        hint="raise max_tokens if answers were cut; else loosen the schema, raise retries, "
        "or use a stronger model"))


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
    """Ask `switch`'s model (a name, alias or route) for a validated value of `schema`."""
    from llmswitch.routing.capability import card_for

    shape = Schema.of(schema)
    why = unsatisfiable(shape.json_schema)
    if why:
        raise SchemaError(f"schema {shape.name!r} cannot be satisfied: {why}", attempts=0)
    name = model or switch.config.default_model
    request = switch.request(to_messages(messages), **settings)
    card = card_for(name, switch.config, switch.catalog)
    return await run_structured(switch.model(name), request, shape, mode=mode,
                                retries=retries, card=card, where=f"structured {name}")
