"""Config mistakes that used to pass the load and fail (or misbehave) only when called: each is
a `ConfigError` at load naming the key, and the same settings on a call are a bad_request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmswitch import Switch, load_config
from llmswitch.errors import BadRequestError, ConfigError
from llmswitch.testing import FakeModel


@pytest.mark.parametrize(("models", "needles"), [
    ({"a": {"model": "a"}}, ("models.a", "a -> a", "without 'model'")),
    ({"a": {"model": "b"}, "b": {"model": "c"}, "c": {"model": "a"}},
     ("a -> b -> c -> a",)),
    # Default settings for a catalog model written as an alias of itself: worked under its
    # bare name and failed under its full one.
    ({"openai/gpt-4o-mini": {"model": "openai/gpt-4o-mini", "settings": {"temperature": 0}}},
     ("models.openai/gpt-4o-mini", "cycle")),
])
def test_alias_cycles_fail_at_load(models: dict[str, Any], needles: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        Switch({"models": models}, observers=[])
    for needle in needles:
        assert needle in str(info.value), str(info.value)


def test_an_alias_chain_without_a_cycle_loads() -> None:
    Switch({"models": {"a": {"model": "b"}, "b": {"model": "local/smollm2-135m"}}},
           observers=[])


@pytest.mark.parametrize(("tools", "needle"), [
    ([{"name": "f", "parameters": 5}], "tools[0] (f): parameters must be a JSON Schema object"),
    ([{"name": "f"}, {"type": "function", "function": {"name": "f"}}],
     "each name must be unique (f given twice)"),
])
async def test_tool_mistakes_are_named_at_load_and_on_a_call(tools: list[Any],
                                                             needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Switch({"models": {"t": {"model": "m", "settings": {"tools": tools}}}},
               models={"m": FakeModel("m")}, observers=[])
    assert "models.t.settings" in str(info.value) and needle in str(info.value)
    fake = FakeModel("m")
    with pytest.raises(BadRequestError, match="invalid request") as call:
        await Switch({}, models={"m": fake}, observers=[]).complete("m", "q", tools=tools)
    assert needle in str(call.value) and fake.call_count == 0


def test_provider_api_must_be_a_known_value() -> None:
    with pytest.raises(ConfigError, match=r"providers\.openai\.api: must be one of chat, "
                                          r"responses, openai, not 'respones'"):
        Switch({"providers": {"openai": {"api": "respones"}}}, observers=[])
    for api in ("chat", "responses"):
        Switch({"providers": {"openai": {"api": api}}}, observers=[])


@pytest.mark.parametrize("system", [5, ["be brief"], {"text": "x"}])
async def test_a_system_prompt_that_is_not_text_is_a_bad_request(system: Any) -> None:
    fake = FakeModel("m")
    with pytest.raises(BadRequestError, match="system must be a string"):
        await Switch({}, models={"m": fake}, observers=[]).complete("m", "q", system=system)
    assert fake.call_count == 0


def test_a_yaml_alias_bomb_and_deep_nesting_are_config_errors(tmp_path: Path) -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"  # 1 KB; 43 million strings once expanded
    bomb.write_text("gateway:\n" + "".join(f"  {line}\n" for line in lines))
    with pytest.raises(ConfigError, match="more than 200,000 values once YAML aliases"):
        load_config(bomb)
    deep = tmp_path / "deep.yaml"
    deep.write_text("gateway: {x: " + "[" * 3000 + "]" * 3000 + "}\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(deep)
    loop: dict[str, Any] = {}
    loop["again"] = loop
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        Switch({"gateway": loop}, observers=[])
