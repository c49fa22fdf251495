r"""Prompt templates of plans: a tiny sandboxed renderer (no Jinja, no code).

Only three kinds of placeholder exist, and nothing else is evaluated:

    {{ inputs.NAME }}              a plan input
    {{ streams.ID.output }}        an earlier stream's output text
    {{ streams.ID.json.FIELD }}    a field of an earlier JSON stream's output (nested: a.b.0)
    {{ streams.ID.json }}          that whole JSON value

`\{{` writes a literal `{{`. Anything else between `{{ }}` is an error at load time, so a
template can never reach attributes, call functions or read the environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from llmswitch.plans.errors import PlanError

_TAG = re.compile(r"\\\{\{|\{\{(.*?)\}\}", re.DOTALL)
_NAME = r"[^\W\d][\w-]*"  # letters of any script, digits, `_`, `-`
_INPUT = re.compile(rf"inputs\.({_NAME})")
_OUTPUT = re.compile(rf"streams\.({_NAME})\.output")
_JSON = re.compile(rf"streams\.({_NAME})\.json((?:\.[\w-]+)*)")
ALLOWED = "{{ inputs.NAME }}, {{ streams.ID.output }} or {{ streams.ID.json.FIELD }}"


@dataclass(frozen=True, slots=True)
class Ref:
    """One placeholder: an input, or a stream's output text or JSON (with a field path)."""

    kind: Literal["input", "output", "json"]
    name: str
    path: tuple[str, ...] = ()
    text: str = ""
    """The placeholder as written, for error messages."""


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        """The placeholders."""
        return tuple(p for p in self.parts if isinstance(p, Ref))

    def streams(self) -> set[str]:
        """Ids of the streams this template reads."""
        return {r.name for r in self.refs if r.kind != "input"}

    def inputs(self) -> set[str]:
        """Names of the inputs this template reads."""
        return {r.name for r in self.refs if r.kind == "input"}


@dataclass(frozen=True, slots=True)
class Output:
    """What a finished stream offers to templates: its text and, for JSON streams, the value."""

    text: str
    json: Any = None


def parse(source: str, where: str) -> Template:
    """Parse a template; `where` (e.g. `streams.api.prompt`) names it in errors."""
    parts: list[str | Ref] = []
    pos = 0
    for match in _TAG.finditer(source):
        parts.append(source[pos:match.start()])
        pos = match.end()
        if match.group(0) == "\\{{":
            parts.append("{{")
            continue
        parts.append(_ref(match.group(1).strip(), match.group(0), where))
    rest = source[pos:]
    if "{{" in rest:
        raise PlanError(f"{where}: a '{{{{' is never closed with '}}}}' (write \\{{{{ for a "
                        "literal '{{')")
    parts.append(rest)
    return Template(source, tuple(p for p in parts if p != ""))


def _ref(expr: str, text: str, where: str) -> Ref:
    if m := _INPUT.fullmatch(expr):
        return Ref("input", m.group(1), (), text)
    if m := _OUTPUT.fullmatch(expr):
        return Ref("output", m.group(1), (), text)
    if m := _JSON.fullmatch(expr):
        path = tuple(p for p in m.group(2).split(".") if p)
        return Ref("json", m.group(1), path, text)
    raise PlanError(f"{where}: template placeholder {text} is not allowed; use {ALLOWED} "
                    "(templates run no code)")


def render(template: Template, inputs: Mapping[str, str], outputs: Mapping[str, Output],
           where: str = "template") -> str:
    """Fill in the placeholders. A missing value (e.g. a JSON field the answer lacks) is a
    `PlanError` naming the template and the placeholder."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(_value(part, inputs, outputs, where))
    return "".join(out)


def _value(ref: Ref, inputs: Mapping[str, str], outputs: Mapping[str, Output],
           where: str) -> str:
    if ref.kind == "input":
        if ref.name not in inputs:
            raise PlanError(f"{where}: {ref.text}: input {ref.name!r} has no value")
        return inputs[ref.name]
    output = outputs.get(ref.name)
    if output is None:
        raise PlanError(f"{where}: {ref.text}: stream {ref.name!r} has no output yet")
    if ref.kind == "output":
        return output.text
    value = output.json
    for i, key in enumerate(ref.path):
        value = _step(value, key)
        if value is _MISSING:
            got = ".".join(ref.path[:i]) or "the top level"
            raise PlanError(f"{where}: {ref.text}: the JSON output of stream {ref.name!r} "
                            f"has no field {key!r} at {got}")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


_MISSING = object()


def _step(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(key, _MISSING)
    if isinstance(value, list) and key.isdigit():
        index = int(key)
        return value[index] if index < len(value) else _MISSING
    return _MISSING


def sample(template: Template, inputs: Mapping[str, str], sizes: Mapping[str, int]) -> str:
    """The template with inputs filled in and each stream placeholder replaced by a stand-in
    of roughly `sizes[id]` tokens (for estimates before any output exists)."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif part.kind == "input":
            out.append(inputs.get(part.name, ""))
        else:
            words = sizes.get(part.name, 0) if not part.path else min(sizes.get(part.name, 0), 20)
            out.append(" ".join(["word"] * words))
    return "".join(out)
