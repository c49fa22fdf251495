"""A plan: inputs, defaults and streams, loaded from YAML (or a dict) and checked for shape.

Checks that need no models happen here: unknown keys (with suggestions), bad values, template
placeholders naming unknown inputs or streams, dependency cycles and the streams they block.
Checks against models (names, capabilities, prices) are in `plans/check.py`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from llmswitch.plans.errors import PlanError
from llmswitch.plans.templates import Template, parse

OutputKind = Literal["text", "json", "file"]
NEEDS = ("tools", "json", "vision", "long_context", "reasoning")
OPTIMIZE = ("cost", "latency", "quality")
CHECKS = ("contains", "not_contains", "regex", "min_chars", "max_chars")
TOP_KEYS = ("name", "description", "inputs", "defaults", "streams", "budget_usd", "config",
            "concurrency")
DEFAULT_KEYS = ("model", "system", "max_tokens", "temperature", "seed", "fallback",
                "budget_usd", "deadline", "optimize_for", "candidates", "router", "max_steps")
STREAM_KEYS = (*DEFAULT_KEYS, "prompt", "depends_on", "output", "needs", "task", "tools",
               "checkpoint", "checks", "description")
_ID = re.compile(r"[^\W\d][\w-]*")
"""Names of streams and inputs: a letter or `_` (any script), then letters, digits, `_`, `-`."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
DEFAULT_MAX_STEPS = 8


@dataclass(frozen=True)
class InputSpec:
    """A plan input. Without a default it must be given (`--input NAME=VALUE`)."""

    name: str
    description: str = ""
    default: str | None = None


@dataclass(frozen=True)
class OutputSpec:
    """What a stream produces: text, JSON (optionally matching a schema), or a file."""

    kind: OutputKind = "text"
    schema: Mapping[str, Any] | None = None
    file: str | None = None
    """For `file`: the path inside the run folder's `outputs/`."""

    def filename(self, stream_id: str) -> str:
        """The output's path relative to the run folder."""
        if self.kind == "file" and self.file:
            return f"outputs/{self.file}"
        return f"outputs/{stream_id}.{'json' if self.kind == 'json' else 'txt'}"


@dataclass(frozen=True)
class Check:
    """A pass/fail test of a stream's output, recorded in the manifest and the report."""

    kind: str
    value: Any

    def passes(self, text: str) -> bool:
        """Whether `text` passes."""
        if self.kind == "contains":
            return str(self.value) in text
        if self.kind == "not_contains":
            return str(self.value) not in text
        if self.kind == "regex":
            return re.search(str(self.value), text) is not None
        if self.kind == "min_chars":
            return len(text) >= int(self.value)
        return len(text) <= int(self.value)

    def describe(self) -> str:
        """`kind: value`."""
        return f"{self.kind}: {self.value}"


@dataclass(frozen=True)
class StreamSpec:
    """One stream of work: a model, a prompt, and how it fits into the plan."""

    id: str
    model: str
    prompt: Template
    system: Template | None = None
    depends_on: tuple[str, ...] = ()
    output: OutputSpec = field(default_factory=OutputSpec)
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    fallback: tuple[str, ...] = ()
    budget_usd: float | None = None
    deadline: float | None = None
    """Seconds for the whole stream (every call, fallback and agent step)."""
    needs: tuple[str, ...] = ()
    optimize_for: str = "cost"
    task: str | None = None
    router: str | None = None
    candidates: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    max_steps: int = DEFAULT_MAX_STEPS
    checkpoint: Literal["approve"] | None = None
    checks: tuple[Check, ...] = ()
    description: str = ""

    @property
    def auto(self) -> bool:
        """Whether the plan picks the model (`model: auto`)."""
        return self.model == "auto"

    def required(self) -> set[str]:
        """Capabilities the stream needs: declared ones plus what its output and tools imply."""
        needs = set(self.needs)
        if self.output.kind == "json":
            needs.add("json")
        if self.tools:
            needs.add("tools")
        return needs


@dataclass(frozen=True)
class Plan:
    """A checked plan. `Plan.load(path)` or `Plan.from_dict(data)`."""

    name: str
    streams: Mapping[str, StreamSpec]
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    description: str = ""
    budget_usd: float | None = None
    concurrency: int | None = None
    config: Path | None = None
    """A config file named by the plan (`config:`), resolved against the plan's folder."""
    source: str = "<plan>"
    base: Path | None = None
    """The folder relative paths in the plan (`config:`) are resolved against."""
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The plan as loaded (kept so a run folder can hold an exact copy)."""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        """Read and check a YAML plan file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PlanError(f"plan file {path} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"plan file {path}: cannot read it: {exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PlanError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_dict(data, source=str(path), base=path.resolve().parent,
                             default_name=path.stem)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<plan>", base: Path | None = None,
                  default_name: str = "plan") -> Plan:
        """Check a plan given as a dict of the YAML's shape."""
        if not isinstance(data, Mapping):
            raise PlanError(f"{source}: a plan is a mapping with 'inputs', 'defaults' and "
                            "'streams'")
        _keys(data, TOP_KEYS, source, "")
        inputs = _inputs(data.get("inputs"), source)
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise PlanError(f"{source}: defaults: must be a mapping")
        _keys(defaults, DEFAULT_KEYS, source, "defaults.")
        raw = data.get("streams")
        if not isinstance(raw, Mapping) or not raw:
            raise PlanError(f"{source}: streams: give at least one stream (a mapping keyed by "
                            "stream id)")
        streams = {_name(k, source, "streams"): _stream(str(k), v, defaults, source)
                   for k, v in raw.items()}
        config = data.get("config")
        plan = cls(
            name=_text(data.get("name", default_name), source, "name"),
            streams=streams,
            inputs=inputs,
            description=_text(data.get("description", ""), source, "description"),
            budget_usd=_money(data.get("budget_usd"), source, "budget_usd"),
            concurrency=_count(data.get("concurrency"), source, "concurrency"),
            config=(base or Path.cwd()) / str(config) if config else None,
            source=source,
            base=base,
            data=dict(data),
        )
        check_graph(plan)
        return plan

    def order(self) -> list[str]:
        """Stream ids in an order where every stream follows its dependencies."""
        done: list[str] = []
        seen: set[str] = set()

        def visit(sid: str) -> None:
            if sid in seen:
                return
            seen.add(sid)
            for dep in self.streams[sid].depends_on:
                visit(dep)
            done.append(sid)

        for sid in self.streams:
            visit(sid)
        return done

    def resolve_inputs(self, given: Mapping[str, str] | None) -> dict[str, str]:
        """Input values: the given ones over the defaults. Unknown or missing names fail."""
        given = dict(given or {})
        for name in given:
            if name not in self.inputs:
                raise PlanError(f"{self.source}: unknown input {name!r}"
                                + _close(name, self.inputs, "inputs"))
        values: dict[str, str] = {}
        missing = []
        for name, spec in self.inputs.items():
            if name in given:
                values[name] = str(given[name])
            elif spec.default is not None:
                values[name] = spec.default
            else:
                missing.append(name)
        if missing:
            desc = "; ".join(f"{m}: {self.inputs[m].description}" if self.inputs[m].description
                             else m for m in missing)
            raise PlanError(f"{self.source}: missing input {', '.join(map(repr, missing))} "
                            f"({desc})", hint="give it with --input NAME=VALUE")
        return values

    def with_streams(self, streams: Mapping[str, StreamSpec]) -> Plan:
        """A copy with other stream specs (same ids and dependencies)."""
        return dataclasses.replace(self, streams=dict(streams))


def _keys(data: Mapping[str, Any], allowed: Sequence[str], source: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else (
                f" (allowed: {', '.join(allowed)})")
            raise PlanError(f"{source}: {where}{key}: unknown key{hint}")


def _inputs(raw: Any, source: str) -> dict[str, InputSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PlanError(f"{source}: inputs: must be a mapping of name: {{description, default}}")
    out = {}
    for key, value in raw.items():
        name = _name(key, source, "inputs")
        spec = {} if value is None else value
        if not _ID.fullmatch(name):
            raise PlanError(f"{source}: inputs.{name}: names are letters, digits, '_' and '-', "
                            "starting with a letter or '_'")
        if not isinstance(spec, Mapping):
            raise PlanError(f"{source}: inputs.{name}: must be a mapping with 'description' "
                            "and optional 'default'")
        _keys(spec, ("description", "default"), source, f"inputs.{name}.")
        default = spec.get("default")
        out[name] = InputSpec(name, str(spec.get("description") or ""),
                              None if default is None else str(default))
    return out


def _name(key: Any, source: str, section: str) -> str:
    """A mapping key used as a name; YAML reads unquoted on/off/yes/no/true/false as booleans
    (and digits as numbers), which would silently rename the stream or input."""
    if isinstance(key, bool):
        raise PlanError(f"{source}: {section}.{key}: YAML read this name as {key} (a boolean)",
                        hint="quote it, e.g. 'on': or 'yes':")
    return str(key)


def _stream(sid: str, raw: Any, defaults: Mapping[str, Any], source: str) -> StreamSpec:
    where = f"{source}: streams.{sid}"
    if not _ID.fullmatch(sid):
        raise PlanError(f"{where}: stream ids are letters, digits, '_' and '-', starting with "
                        "a letter or '_'")
    if not isinstance(raw, Mapping):
        raise PlanError(f"{where}: must be a mapping with at least 'prompt'")
    _keys(raw, STREAM_KEYS, source, f"streams.{sid}.")
    data = {**defaults, **raw}
    if "prompt" not in data or not isinstance(data["prompt"], str) or not data["prompt"]:
        raise PlanError(f"{where}.prompt: every stream needs a prompt (text)")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise PlanError(f"{where}.model: give a model, alias, route or 'auto' (here or in "
                        "defaults.model)")
    prompt = parse(data["prompt"], f"{where}.prompt")
    system = (parse(_text(data["system"], source, f"streams.{sid}.system"), f"{where}.system")
              if data.get("system") else None)
    deps = list(_names(data.get("depends_on"), source, f"streams.{sid}.depends_on"))
    for tpl in (prompt, system):
        for other in sorted(tpl.streams()) if tpl else ():
            if other not in deps:
                deps.append(other)
    return StreamSpec(
        id=sid, model=model, prompt=prompt, system=system, depends_on=tuple(deps),
        output=_output(data.get("output"), where),
        max_tokens=_count(data.get("max_tokens"), source, f"streams.{sid}.max_tokens"),
        temperature=_number(data.get("temperature"), source, f"streams.{sid}.temperature"),
        seed=_int(data.get("seed"), source, f"streams.{sid}.seed"),
        fallback=_names(data.get("fallback"), source, f"streams.{sid}.fallback"),
        budget_usd=_money(data.get("budget_usd"), source, f"streams.{sid}.budget_usd"),
        deadline=_duration(data.get("deadline"), source, f"streams.{sid}.deadline"),
        needs=_choices(data.get("needs"), NEEDS, source, f"streams.{sid}.needs"),
        optimize_for=_choice(data.get("optimize_for", "cost"), OPTIMIZE, where, "optimize_for"),
        task=_text(data["task"], source, f"streams.{sid}.task") if data.get("task") else None,
        router=(_text(data["router"], source, f"streams.{sid}.router")
                if data.get("router") else None),
        candidates=_names(data.get("candidates"), source, f"streams.{sid}.candidates"),
        tools=_names(data.get("tools"), source, f"streams.{sid}.tools"),
        max_steps=_count(data.get("max_steps"), source, f"streams.{sid}.max_steps")
        or DEFAULT_MAX_STEPS,
        checkpoint=_checkpoint(data.get("checkpoint"), where),
        checks=_checks(data.get("checks"), where),
        description=_text(data.get("description", ""), source, f"streams.{sid}.description"),
    )


def _output(raw: Any, where: str) -> OutputSpec:
    if raw is None or raw == "text":
        return OutputSpec()
    if raw == "json":
        return OutputSpec("json")
    if isinstance(raw, Mapping):
        bad = set(raw) - {"type", "schema", "file"}
        if bad:
            raise PlanError(f"{where}.output: unknown key {sorted(bad)[0]!r} (use type, "
                            "schema or file)")
        if "schema" in raw:
            if not isinstance(raw["schema"], Mapping):
                raise PlanError(f"{where}.output.schema: must be a JSON Schema object")
            return OutputSpec("json", dict(raw["schema"]))
        if "file" in raw:
            return OutputSpec("file", file=_relative(raw["file"], f"{where}.output.file"))
        kind = raw.get("type", "text")
        if kind in ("text", "json"):
            return OutputSpec(kind)
    raise PlanError(f"{where}.output: use 'text', 'json', {{schema: {{...}}}} or "
                    "{file: PATH}")


def _relative(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise PlanError(f"{where}: give a relative file path")
    path = Path(raw)
    if path.is_absolute() or ".." in path.parts:
        raise PlanError(f"{where}: {raw!r} must be a relative path inside the run folder "
                        "(no '..', not absolute)")
    return path.as_posix()


def _checkpoint(raw: Any, where: str) -> Literal["approve"] | None:
    if raw in (None, False):
        return None
    if raw == "approve":
        return "approve"
    raise PlanError(f"{where}.checkpoint: the only checkpoint is 'approve'")


def _checks(raw: Any, where: str) -> tuple[Check, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PlanError(f"{where}.checks: a list such as [{{contains: 'CREATE TABLE'}}]")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise PlanError(f"{where}.checks[{i}]: one of {', '.join(CHECKS)} with its value")
        ((kind, value),) = item.items()
        if kind not in CHECKS:
            raise PlanError(f"{where}.checks[{i}]: unknown check {kind!r} (use "
                            f"{', '.join(CHECKS)})")
        if kind == "regex":
            try:
                re.compile(str(value))
            except re.error as exc:
                raise PlanError(f"{where}.checks[{i}].regex: {exc}") from None
        if kind in ("min_chars", "max_chars") and (not isinstance(value, int) or value < 0):
            raise PlanError(f"{where}.checks[{i}].{kind}: a whole number >= 0")
        out.append(Check(str(kind), value))
    return tuple(out)


def _text(raw: Any, source: str, where: str) -> str:
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise PlanError(f"{source}: {where}: must be text")
    return str(raw)


def _names(raw: Any, source: str, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise PlanError(f"{source}: {where}: must be a list of names")
    return tuple(raw)


def _choices(raw: Any, allowed: Sequence[str], source: str, where: str) -> tuple[str, ...]:
    names = _names(raw, source, where)
    for name in names:
        if name not in allowed:
            raise PlanError(f"{source}: {where}: unknown value {name!r} (use "
                            f"{', '.join(allowed)})")
    return names


def _choice(raw: Any, allowed: Sequence[str], where: str, key: str) -> str:
    if raw not in allowed:
        raise PlanError(f"{where}.{key}: {raw!r} is not one of {', '.join(allowed)}")
    return str(raw)


def _number(raw: Any, source: str, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise PlanError(f"{source}: {where}: must be a number")
    return float(raw)


def _int(raw: Any, source: str, where: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise PlanError(f"{source}: {where}: must be a whole number")
    return raw


def _count(raw: Any, source: str, where: str) -> int | None:
    value = _int(raw, source, where)
    if value is not None and value < 1:
        raise PlanError(f"{source}: {where}: must be at least 1")
    return value


def _money(raw: Any, source: str, where: str) -> float | None:
    value = _number(raw, source, where)
    if value is not None and value < 0:
        raise PlanError(f"{source}: {where}: must be >= 0 (USD)")
    return value


def _duration(raw: Any, source: str, where: str) -> float | None:
    """Seconds from a number or text like `90s`, `5m`, `1h`, `500ms`."""
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        seconds = float(raw)
    else:
        m = _DURATION.fullmatch(str(raw).strip())
        if not m:
            raise PlanError(f"{source}: {where}: {raw!r} is not a duration (e.g. 90, 90s, 5m)")
        scale = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
        seconds = float(m.group(1)) * scale
    if seconds <= 0:
        raise PlanError(f"{source}: {where}: must be more than 0 seconds")
    return seconds


def check_graph(plan: Plan) -> None:
    """Template references and dependencies name real inputs and streams; no cycles."""
    for sid, spec in plan.streams.items():
        where = f"{plan.source}: streams.{sid}"
        for key, tpl in (("prompt", spec.prompt), ("system", spec.system)):
            for ref in tpl.refs if tpl else ():
                if ref.kind == "input" and ref.name not in plan.inputs:
                    raise PlanError(f"{where}.{key}: {ref.text} names unknown input "
                                    f"{ref.name!r}" + _close(ref.name, plan.inputs, "inputs"))
                if ref.kind != "input":
                    _check_stream_ref(plan, where, key, ref.name, ref.text, ref.kind)
        for dep in spec.depends_on:
            if dep not in plan.streams:
                raise PlanError(f"{where}.depends_on: unknown stream {dep!r}"
                                + _close(dep, plan.streams, "streams"))
    _check_outputs(plan)
    cycle = find_cycle(plan)
    if cycle:
        blocked = sorted(set(cycle) | {s for c in cycle for s in plan_dependents(plan, c)})
        raise PlanError(f"{plan.source}: dependency cycle: {' -> '.join(cycle)} (each "
                        f"depends on the next); streams "
                        f"{', '.join(blocked)} can never run",
                        hint="remove one of these depends_on (or template references)")


def _check_outputs(plan: Plan) -> None:
    """No two streams write the same path, nor a file where another needs a folder."""
    owners: dict[Path, str] = {}
    for sid, spec in plan.streams.items():
        path = Path(spec.output.filename(sid))
        for other_path, other in owners.items():
            if path == other_path:
                what = f"writes {path.as_posix()}, which stream {other!r} writes too"
            elif other_path in path.parents or path in other_path.parents:
                what = (f"writes {path.as_posix()}, but stream {other!r} writes "
                        f"{other_path.as_posix()} (one would need the other as a folder)")
            else:
                continue
            raise PlanError(f"{plan.source}: streams.{sid}.output: {what}",
                            hint="give each stream its own output file")
        owners[path] = sid


def _check_stream_ref(plan: Plan, where: str, key: str, name: str, text: str,
                      kind: str) -> None:
    if name not in plan.streams:
        raise PlanError(f"{where}.{key}: {text} names unknown stream {name!r}"
                        + _close(name, plan.streams, "streams"))
    if kind == "json" and plan.streams[name].output.kind != "json":
        raise PlanError(f"{where}.{key}: {text}: stream {name!r} does not produce JSON "
                        "(give it output: json or output: {schema: ...}, or use "
                        f"{{{{ streams.{name}.output }}}})")


def _close(name: str, names: Mapping[str, Any], what: str) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (the plan's {what}: {', '.join(names) or 'none'})"


def find_cycle(plan: Plan) -> list[str]:
    """A dependency cycle as `[a, b, ..., a]`, or `[]`."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(sid: str) -> list[str]:
        state[sid] = 1
        stack.append(sid)
        for dep in plan.streams[sid].depends_on:
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[sid] = 2
        return []

    for sid in plan.streams:
        if sid not in state:
            found = visit(sid)
            if found:
                return found
    return []


def plan_dependents(plan: Plan, sid: str) -> set[str]:
    """Every stream that depends on `sid`, directly or not (cycle-safe)."""
    out: set[str] = set()
    frontier = [sid]
    while frontier:
        current = frontier.pop()
        for other, spec in plan.streams.items():
            if current in spec.depends_on and other not in out:
                out.add(other)
                frontier.append(other)
    return out
