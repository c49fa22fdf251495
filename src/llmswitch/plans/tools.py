"""Tools for agent streams: Python functions registered on a `Toolbox`, described to models
with JSON-Schema parameters built from their signatures.

```python
tools = Toolbox()

@tools.register
def read_file(path: str, max_lines: int = 200) -> str:
    '''Read a text file of the project.'''
    ...

result = await switch.run_plan(plan, inputs={...}, tools=tools)
```

The command line loads a toolbox with `--tools MODULE:NAME` (a `Toolbox` attribute).
Sync functions run in a worker thread; async functions are awaited. What a tool returns is
sent back as text (JSON for anything but a string); what it raises is sent back as an error
message, so the model can try again.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from llmswitch import ToolSpec
from llmswitch.plans.errors import PlanError

F = TypeVar("F", bound=Callable[..., Any])
_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
MAX_RESULT_CHARS = 20_000
"""A tool's answer is cut to this many characters before it goes back to the model."""


@dataclass(frozen=True)
class Tool:
    """A registered function and its description for models."""

    name: str
    function: Callable[..., Any]
    spec: ToolSpec


class Toolbox:
    """Named tools agent streams may call (`tools: [name, ...]` in the plan)."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, function: F | None = None, *, name: str | None = None,
                 description: str | None = None) -> Any:
        """Register a function (use as `@tools.register` or `@tools.register(name=...)`)."""
        def add(fn: F) -> F:
            tool_name = name or fn.__name__
            doc = description if description is not None else inspect.getdoc(fn) or ""
            spec = ToolSpec(tool_name, doc.strip().split("\n\n")[0], schema_of(fn))
            self._tools[tool_name] = Tool(tool_name, fn, spec)
            return fn

        return add(function) if function is not None else add

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        """Registered tool names."""
        return list(self._tools)

    def spec(self, name: str) -> ToolSpec:
        """The `ToolSpec` sent to models."""
        return self._tools[name].spec

    async def call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Run a tool and return its answer as text (errors become an `error: ...` text)."""
        tool = self._tools.get(name)
        if tool is None:
            return f"error: there is no tool named {name!r}"
        try:
            if inspect.iscoroutinefunction(tool.function):
                value = await tool.function(**arguments)
            else:
                value = await asyncio.to_thread(tool.function, **arguments)
        except Exception as exc:  # a tool's failure goes back to the model, not up
            return f"error: {type(exc).__name__}: {exc}"
        text = value if isinstance(value, str) else json.dumps(value, default=str,
                                                               ensure_ascii=False)
        return text[:MAX_RESULT_CHARS]


def schema_of(function: Callable[..., Any]) -> dict[str, Any]:
    """JSON Schema of a function's parameters from its annotations and defaults."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    props: dict[str, Any] = {}
    required = []
    for pname, param in inspect.signature(function).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        props[pname] = _type_schema(hints.get(pname, param.annotation))
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif param.default is None or isinstance(param.default, (str, int, float, bool)):
            props[pname]["default"] = param.default
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _type_schema(annotation: Any) -> dict[str, Any]:
    if annotation in _SIMPLE:
        return {"type": _SIMPLE[annotation]}
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _type_schema(rest[0]) if len(rest) == 1 else {}
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple):
        items = _type_schema(args[0]) if args else {}
        return {"type": "array", **({"items": items} if items else {})}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    return {}


def load_toolbox(ref: str) -> Toolbox:
    """A `Toolbox` from `MODULE:NAME` (a module path, or a `.py` file, then the attribute)."""
    module_ref, _, attr = ref.rpartition(":") if ":" in ref else (ref, "", "tools")
    attr = attr or "tools"
    try:
        if module_ref.endswith(".py"):
            module = _load_file(Path(module_ref))
        else:
            module = importlib.import_module(module_ref)
    except (ImportError, OSError) as exc:
        raise PlanError(f"--tools {ref}: cannot import {module_ref!r}: {exc}") from None
    except Exception as exc:  # the module's own code failed (SyntaxError, NameError, ...)
        raise PlanError(f"--tools {ref}: importing {module_ref!r} failed: "
                        f"{type(exc).__name__}: {exc}") from None
    box = getattr(module, attr, None)
    if not isinstance(box, Toolbox):
        raise PlanError(f"--tools {ref}: {module_ref}.{attr} is not a llmswitch Toolbox",
                        hint="define `tools = Toolbox()` and register functions on it")
    return box


def _load_file(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"llmswitch_plan_tools_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
