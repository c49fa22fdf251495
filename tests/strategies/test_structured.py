"""Structured output: modes, repair with feedback, cost sums, unsatisfiable schemas."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from llmswitch import Switch
from llmswitch.errors import BadRequestError, ConfigError, SchemaError
from llmswitch.messages import ToolCall
from llmswitch.results import Completion, Usage
from llmswitch.structured import complete_structured, extract_json, unsatisfiable, validate
from llmswitch.testing import FakeModel


class City(BaseModel):
    name: str
    population: int


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}},
          "required": ["n"], "additionalProperties": False}


async def test_pydantic_model_with_repair_and_summed_cost() -> None:
    fake = FakeModel("fake", ["Sure! {\"name\": \"Oslo\"}", "```json\n{\"name\": \"Oslo\", "
                              "\"population\": 700000}\n```"], cost_per_call=0.01)
    s = Switch({}, models={"m": fake})
    messages = [{"role": "user", "content": "A city?"}]
    result = await complete_structured(s, "m", messages, City)
    assert result.value == City(name="Oslo", population=700000)
    assert result.attempts == 2 and result.mode == "prompt"
    assert result.completion.cost_usd == pytest.approx(0.02)
    assert result.completion.text == '{"name": "Oslo", "population": 700000}'
    retry = fake.calls[1].messages
    assert retry[-2].role == "assistant" and "population" in retry[-1].text
    assert len(fake.calls[0].messages) == 2  # schema note (system) + the user's message
    assert messages == [{"role": "user", "content": "A city?"}]


async def test_native_mode_for_models_with_json_schema() -> None:
    fake = FakeModel("local/smollm2-135m", ['{"n": 3}'])
    s = Switch({}, models={"local/smollm2-135m": fake})
    result = await complete_structured(s, "local/smollm2-135m", "count", SCHEMA)
    assert result.value == {"n": 3} and result.mode == "native"
    sent = fake.calls[0].settings.response_format
    assert sent.kind == "json_schema" and sent.schema == SCHEMA


async def test_tool_mode_reads_the_forced_call() -> None:
    call = ToolCall("c1", "response", '{"n": 5}')
    answer = Completion("", "tool_calls", Usage(1, 1), 0.0, "fake", "m", tool_calls=(call,))
    fake = FakeModel("m", [answer])
    s = Switch({}, models={"m": fake})
    result = await complete_structured(s, "m", "count", SCHEMA, mode="tool")
    assert result.value == {"n": 5} and result.completion.text == '{"n": 5}'
    assert fake.calls[0].settings.tool_choice == "response"
    assert result.completion.tool_calls == ()


async def test_gives_up_with_schema_error_after_retries() -> None:
    fake = FakeModel("m", ['{"n": -1}'])
    s = Switch({}, models={"m": fake})
    with pytest.raises(SchemaError,
                       match=r"after 3 attempts: \$\.n: -1 is less than the minimum of 0") as info:
        await complete_structured(s, "m", "count", SCHEMA, retries=2)
    assert info.value.attempts == 3 and fake.call_count == 3
    assert info.value.trace is not None and len(info.value.trace.children) == 3


async def test_unsatisfiable_schema_fails_before_any_call() -> None:
    fake = FakeModel("m")
    s = Switch({}, models={"m": fake})
    bad = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 5,
                                                  "maximum": 1}}, "required": ["n"]}
    with pytest.raises(SchemaError, match=r"cannot be satisfied: \$\.n: minimum 5 > maximum 1"):
        await complete_structured(s, "m", "x", bad)
    assert fake.call_count == 0


async def test_structured_route_and_request_schema() -> None:
    routes = {"routes": {"x": {"strategy": "structured", "targets": ["m"], "schema": SCHEMA},
                         "y": {"strategy": "structured", "targets": ["m"]}}}
    s = Switch(routes, models={"m": FakeModel("m", ['{"n": 1}'])})
    out = await s.complete("x", "count")
    assert out.text == '{"n": 1}' and out.trace is not None
    assert out.trace.attributes["llmswitch.structured.mode"] == "prompt"
    assert (await s.complete("y", "count", response_format={"schema": SCHEMA})).text == '{"n": 1}'
    with pytest.raises(BadRequestError, match=r"routes\.y: no schema"):
        await s.complete("y", "count")


@pytest.mark.parametrize(("route", "message"), [
    ({"targets": ["m"], "schema": {"enum": []}}, "cannot be satisfied"),
    ({"targets": ["m", "m"]}, "exactly one target"),
    ({"targets": ["m"], "mode": "magic"}, "mode 'magic'"),
])
def test_bad_structured_config(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Switch({"routes": {"x": {"strategy": "structured", **route}}}, models={"m": FakeModel()})


def test_json_helpers() -> None:
    assert extract_json('noise ```json\n[1, 2]\n``` more') == [1, 2]
    assert extract_json('The answer: {"a": {"b": 1}} ok') == {"a": {"b": 1}}
    with pytest.raises(ValueError):
        extract_json("nothing")
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {
        "type": "string"}, "maxItems": 2}, "kind": {"anyOf": [{"const": "a"}, {"const": "b"}]}}}
    assert validate({"tags": ["x"], "kind": "a"}, schema) == []
    errors = validate({"tags": ["x", 1, "z"], "kind": "c"}, schema)
    assert "$.tags[1]: 1 is not of type 'string'" in errors
    assert any("is too long" in e for e in errors) and any("any of" in e for e in errors)
    assert validate(True, {"type": "integer"}) and not validate(2.0, {"type": "integer"})
    assert unsatisfiable({"type": "object", "required": ["a"], "additionalProperties": False})
    assert unsatisfiable(SCHEMA) is None
