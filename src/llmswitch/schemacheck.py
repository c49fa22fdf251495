"""JSON Schema checking with `jsonschema` (Draft 2020-12 unless the schema's `$schema` names
another draft): a schema is checked once, before any call, then answers are validated with it.

```python
checker = compile_schema({"type": "object", "required": ["n"]})   # SchemaProblem if bad
checker.errors({"m": 1})   # ["$: 'n' is a required property"]
```

A schema is rejected (`SchemaProblem`, a `ValueError` naming the keyword's place) when it
breaks the meta-schema (`properties: 5`, `minLength: "x"`, a bad `pattern`), names a draft we
do not know, has a keyword no validator checks (a typo such as `minLenght`; annotations such
as `title`, `description`, `examples` and vendor keys starting with `x-` are fine), or has a
`$ref` that does not resolve inside the schema (remote references are never fetched).

`format` is asserted for the formats in `FORMATS` (checked with the standard library only, so
validity does not depend on which optional packages are installed); any other format stays an
annotation.

`jsonschema` is imported on the first schema, never at `import llmswitch`; compiled checkers
are kept in a bounded cache keyed by the schema's canonical JSON, so a schema sent with every
request is checked once per process.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

MAX_ERRORS = 8
MAX_DEPTH = 64
"""Schemas and answers nested deeper than this (lists and objects) are refused: validators
recurse, and providers' structured outputs allow far less (OpenAI: 10 levels)."""
"""At most this many errors are reported (and fed back to a model) per answer."""
_MAX_MESSAGE = 200
ANNOTATIONS = frozenset({
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs",
    "definitions", "title", "description", "default", "examples", "deprecated", "readOnly",
    "writeOnly", "contentEncoding", "contentMediaType", "contentSchema",
    # Vendor keywords models' APIs accept in their schemas (OpenAPI, Gemini): annotations here.
    "discriminator", "nullable", "propertyOrdering",
})
_ONE = ("additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
        "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema", "items")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_NAMED = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
          "dependencies")
_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


class SchemaProblem(ValueError):
    """A JSON Schema that cannot be checked; `where` is the keyword's path in the schema and
    `context` names the schema (`--schema`, `routes.x.schema`, …)."""

    def __init__(self, where: str, problem: str, context: str = "", *,
                 unsatisfiable: bool = False) -> None:
        text = f"{where}: {problem}" if where else problem
        super().__init__(f"{context}: {text}" if context else text)
        self.where, self.problem, self.context = where, problem, context
        self.unsatisfiable = unsatisfiable
        """A valid schema that no value can match (min > max, empty enum, …)."""

    def within(self, context: str) -> SchemaProblem:
        """The same problem, its message prefixed by where the schema came from."""
        return SchemaProblem(self.where, self.problem, context,
                             unsatisfiable=self.unsatisfiable)


class Checker:
    """A checked, compiled schema: `errors(value)` lists what is wrong with an answer."""

    def __init__(self, schema: Mapping[str, Any], validator: Any) -> None:
        self.schema = schema
        self._validator = validator

    def errors(self, value: Any) -> list[str]:
        """`$.path: problem` for each way `value` breaks the schema (at most `MAX_ERRORS`)."""
        out: list[str] = []
        if too_deep(value, MAX_DEPTH):
            return [f"$: the value is nested more than {MAX_DEPTH} levels deep"]
        try:
            for error in self._validator.iter_errors(value):
                message = error.message
                if len(message) > _MAX_MESSAGE:
                    message = message[:_MAX_MESSAGE] + "…"
                out.append(f"{error.json_path}: {message}")
                if len(out) == MAX_ERRORS:
                    break
        except RecursionError:  # a recursive schema over a deep value, deep in a call stack
            return ["$: the value is nested too deeply to validate"]
        return out


def compile_schema(schema: Any) -> Checker:
    """The checker of a JSON Schema object (cached); `SchemaProblem` when it cannot be checked."""
    if not isinstance(schema, Mapping):
        kind = "an array" if isinstance(schema, list) else type(schema).__name__
        raise SchemaProblem("", f'not a schema object: a JSON Schema must be an object (such as '
                                f'{{"type": "object"}}), not {kind}')
    if too_deep(schema, MAX_DEPTH):
        raise SchemaProblem("", f"nested more than {MAX_DEPTH} levels deep")
    try:
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SchemaProblem("", f"not JSON data: {exc}") from None
    try:
        return _compiled(key)
    except RecursionError:  # within the limit, but called from deep in a stack
        raise SchemaProblem("", "nested too deeply to be checked") from None


def too_deep(value: Any, limit: int) -> bool:
    """Whether a JSON-like value nests lists and mappings more than `limit` levels deep
    (walked without recursion, so any depth is safe to ask about)."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        todo.extend((child, depth + 1) for child in children)
    return False


def validate(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Errors of `value` against `schema` (empty when valid); `SchemaProblem` if the schema is
    bad."""
    return compile_schema(schema).errors(value)


@lru_cache(maxsize=256)
def _compiled(key: str) -> Checker:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
    from jsonschema.exceptions import SchemaError as MetaSchemaError  # type: ignore[import-untyped]
    from jsonschema.validators import validator_for  # type: ignore[import-untyped]
    from referencing import Registry

    schema = json.loads(key)
    cls = validator_for(schema, default=None)
    if cls is None:
        if "$schema" in schema:
            raise SchemaProblem("$schema", f"unknown JSON Schema draft {schema['$schema']!r}; "
                                "leave it out for Draft 2020-12")
        cls = Draft202012Validator
    try:
        cls.check_schema(schema)
    except MetaSchemaError as exc:
        raise _meta_problem(exc) from None
    known = frozenset(cls.VALIDATORS) | ANNOTATIONS | _companions(cls)
    for where, sub in _subschemas(schema, ()):
        for keyword in sub:
            if keyword not in known and not keyword.startswith("x-"):
                raise SchemaProblem(_path(where), _unknown(keyword, known))
    _check_refs(schema, cls)
    why = unsatisfiable(schema)
    if why:
        raise SchemaProblem("", f"cannot be satisfied: {why}", unsatisfiable=True)
    return Checker(schema, cls(schema, registry=Registry(), format_checker=_format_checker()))


_COMPANIONS = frozenset({"then", "else", "minContains", "maxContains"})
"""Keywords a draft defines that no validator of their own checks: `if` checks `then`/`else`,
`contains` checks `minContains`/`maxContains` (Draft 2019-09 and later)."""


def _companions(cls: Any) -> frozenset[str]:
    """The `_COMPANIONS` this draft's meta-schema (or its vocabularies) defines."""
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped]

    meta = cls.META_SCHEMA
    found = set(meta.get("properties", ()))
    for sub in meta.get("allOf", ()):
        ref = sub.get("$ref") if isinstance(sub, Mapping) else None
        if isinstance(ref, str):
            with contextlib.suppress(LookupError, ValueError):
                found |= set(REGISTRY.contents(urljoin(meta.get("$id", ""), ref))
                             .get("properties", ()))
    return _COMPANIONS & found


def _meta_problem(exc: Any) -> SchemaProblem:
    where = _path(tuple(exc.path))
    if exc.validator == "anyOf" and exc.path and exc.path[-1] == "type":
        return SchemaProblem(where, f"unknown type {exc.instance!r}; use one of "
                                    + ", ".join(_TYPES))
    return SchemaProblem(where, exc.message)


def _unknown(keyword: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(keyword, sorted(known), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]!r}?" if close else (
        "; no validator checks it (vendor extensions start with 'x-')")
    return f"unknown keyword {keyword!r}{hint}"


def _path(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _subschemas(schema: Any, where: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, schema object) in a meta-schema-valid schema, the root included."""
    if not isinstance(schema, Mapping):
        return  # a boolean schema
    yield where, schema
    for keyword in _ONE:
        if isinstance(schema.get(keyword), Mapping):
            yield from _subschemas(schema[keyword], (*where, keyword))
    for keyword in _MANY:
        if isinstance(schema.get(keyword), list):
            for i, sub in enumerate(schema[keyword]):
                yield from _subschemas(sub, (*where, keyword, i))
    for keyword in _NAMED:
        if isinstance(schema.get(keyword), Mapping):
            for name, sub in schema[keyword].items():
                yield from _subschemas(sub, (*where, keyword, name))


def _check_refs(schema: Mapping[str, Any], cls: Any) -> None:
    """Every `$ref` must resolve inside the schema (or to a shipped meta-schema)."""
    from jsonschema_specifications import REGISTRY
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import specification_with

    spec = specification_with(cls.META_SCHEMA["$schema"])
    root = spec.create_resource(schema)
    base = root.id() or ""
    resolver = REGISTRY.combine(Registry().with_resource(base, root)).resolver(base)
    scopes = {(): resolver}
    for where, sub in _subschemas(schema, ()):
        scope = next(scopes[where[:i]] for i in range(len(where), -1, -1) if where[:i] in scopes)
        if "$id" in sub and where:
            scope = scope.in_subresource(spec.create_resource(sub))
            scopes[where] = scope
        ref = sub.get("$ref")
        if isinstance(ref, str):
            try:
                scope.lookup(ref)
            except Unresolvable:
                remote = "://" in ref or not ref.startswith("#")
                why = ("remote references are not fetched: put the schema under $defs and "
                       "use '#/$defs/NAME'") if remote else "no such place in the schema"
                raise SchemaProblem(_path((*where, "$ref")),
                                    f"{ref!r} does not resolve ({why})") from None


def unsatisfiable(schema: Mapping[str, Any], path: str = "$") -> str | None:
    """Why no value can match `schema` (contradictory bounds, empty enum, …), else `None`."""
    pairs = (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems"),
             ("minProperties", "maxProperties"), ("minContains", "maxContains"))
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


_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_TIME = r"(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))"
_DATE_RE = re.compile(_DATE)
_TIME_RE = re.compile(_TIME)
_DATE_TIME_RE = re.compile(f"{_DATE}[Tt]{_TIME}")
_DURATION_RE = re.compile(
    r"P(?:\d+W|(?=\d|T\d)(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _is_date(text: str) -> bool:
    """RFC 3339 full-date."""
    match = _DATE_RE.fullmatch(text)
    if match is None:
        return False
    try:
        datetime.date(*map(int, match.groups()))
    except ValueError:
        return False
    return True


def _is_time(text: str) -> bool:
    """RFC 3339 full-time (an offset is required; second 60 is a leap second)."""
    match = _TIME_RE.fullmatch(text)
    return match is not None and _time_ok(match.groups())


def _time_ok(parts: tuple[str | None, ...]) -> bool:
    hour, minute, second, off_h, off_m = (int(p) if p else 0 for p in parts)
    return hour < 24 and minute < 60 and second <= 60 and off_h < 24 and off_m < 60


def _is_date_time(text: str) -> bool:
    """RFC 3339 date-time: a full-date, `T`, a full-time."""
    match = _DATE_TIME_RE.fullmatch(text)
    return (match is not None and _is_date(text[:10]) and _time_ok(match.groups()[3:]))


def _is_ip(version: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == version and "%" not in text
        except ValueError:
            return False
    return check


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36 and all(text[i] == "-" for i in (8, 13, 18, 23))


def _is_hostname(text: str) -> bool:
    """RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens."""
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_LABEL_RE.fullmatch(p) for p in name.split("."))


def _is_regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _is_date, "time": _is_time, "date-time": _is_date_time,
    "duration": lambda text: _DURATION_RE.fullmatch(text) is not None,
    "email": lambda text: "@" in text, "idn-email": lambda text: "@" in text,
    "hostname": _is_hostname, "ipv4": _is_ip(4), "ipv6": _is_ip(6), "uuid": _is_uuid,
    "regex": _is_regex,
}
"""The formats asserted on answers (as jsonschema's checks of the same names, standard library
only); others are annotations."""


@lru_cache(maxsize=1)
def _format_checker() -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name)(_on_strings(check))
    return checker


def _on_strings(check: Callable[[str], bool]) -> Callable[[object], bool]:
    """A format applies to strings only: any other value passes it."""
    return lambda value: not isinstance(value, str) or check(value)
