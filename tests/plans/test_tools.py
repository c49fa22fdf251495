"""Tool registration: JSON-Schema parameters from signatures; calls never raise."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from llmswitch.plans import PlanError, Toolbox
from llmswitch.plans.tools import load_toolbox, schema_of


def test_schema_from_signature() -> None:
    def search(query: str, mode: Literal["fast", "deep"] = "fast", tags: list[str] | None = None,
               limit: int = 10, score: float = 0.5, exact: bool = False) -> str:
        return query

    schema = schema_of(search)
    assert schema["required"] == ["query"]
    props = schema["properties"]
    assert props["query"] == {"type": "string"}
    assert props["mode"] == {"enum": ["fast", "deep"], "default": "fast"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "default": None}
    assert props["limit"]["type"] == "integer" and props["score"]["type"] == "number"
    assert props["exact"] == {"type": "boolean", "default": False}


async def test_calls_return_text_and_errors_go_back_to_the_model() -> None:
    tools = Toolbox()

    @tools.register(name="div", description="Divide.")
    def divide(a: int, b: int) -> float:
        return a / b

    @tools.register
    async def echo(text: str) -> dict[str, str]:
        """Echo text back.

        More details that stay out of the description."""
        return {"text": text}

    assert tools.names() == ["div", "echo"] and tools.spec("echo").description == "Echo text back."
    assert await tools.call("div", {"a": 6, "b": 3}) == "2.0"
    assert await tools.call("div", {"a": 1, "b": 0}) == "error: ZeroDivisionError: division by zero"
    assert await tools.call("echo", {"text": "hi"}) == '{"text": "hi"}'
    assert (await tools.call("div", {"a": 1})).startswith("error: TypeError")
    assert await tools.call("nope", {}) == "error: there is no tool named 'nope'"


def test_load_toolbox_from_a_file(tmp_path: Path) -> None:
    module = tmp_path / "mytools.py"
    module.write_text("from llmswitch.plans import Toolbox\ntools = Toolbox()\n"
                      "@tools.register\ndef ping() -> str:\n    return 'pong'\nother = 1\n")
    assert load_toolbox(f"{module}:tools").names() == ["ping"]
    with pytest.raises(PlanError, match="is not a llmswitch Toolbox"):
        load_toolbox(f"{module}:other")
    with pytest.raises(PlanError, match="cannot import"):
        load_toolbox("no_such_module_here:tools")
