"""Every path that accepts a schema validates answers with a real JSON Schema implementation,
and every schema is checked before any call (issues 14 and 15)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from llmswitch import Switch
from llmswitch.errors import BadRequestError, ConfigError, LLMSwitchError, SchemaError
from llmswitch.messages import ToolCall
from llmswitch.models import collect
from llmswitch.results import Completion, StreamEnd, StreamNotice, TextDelta, Usage
from llmswitch.structured import complete_structured, validate
from llmswitch.testing import FakeModel

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
          "additionalProperties": False}

# Keywords the hand-written validator ignored: (schema, an answer breaking it, a valid answer).
IGNORED_BEFORE = {
    "exclusiveMinimum": ({"type": "number", "exclusiveMinimum": 0}, 0, 0.5),
    "multipleOf": ({"type": "integer", "multipleOf": 5}, 12, 15),
    "uniqueItems": ({"type": "array", "uniqueItems": True}, [1, 1], [1, 2]),
    "not": ({"not": {"type": "string"}}, "text", 3),
    "prefixItems": ({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
                    [1, "a"], ["a", 1]),
    "minProperties": ({"type": "object", "minProperties": 2}, {"a": 1}, {"a": 1, "b": 2}),
    "patternProperties": ({"type": "object", "patternProperties": {"^n_": {"type": "integer"}}},
                          {"n_a": "x"}, {"n_a": 1, "other": "x"}),
}


def switch(**models: FakeModel) -> Switch:
    return Switch({"models": {"alias": {"model": "m"}},
                   "routes": {"route": {"strategy": "fallback", "targets": ["m"]}}},
                  models=dict(models), observers=[])


@pytest.mark.parametrize("keyword", sorted(IGNORED_BEFORE))
async def test_keywords_the_old_validator_ignored_now_fail(keyword: str) -> None:
    schema, bad, good = IGNORED_BEFORE[keyword]
    assert validate(bad, schema), keyword
    assert validate(good, schema) == []
    import json

    fake = FakeModel("m", [json.dumps(bad)])
    with pytest.raises(SchemaError) as info:
        await switch(m=fake).complete("m", "q", response_format={"schema": schema})
    assert info.value.type == "schema_failed" and fake.call_count == 3
    ok = await switch(m=FakeModel("m", [json.dumps(good)])).complete(
        "m", "q", response_format={"schema": schema})
    assert ok.parsed == good


@pytest.mark.parametrize("name", ["m", "alias", "route"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_every_path_validates_the_answer(name: str, streaming: bool) -> None:
    fake = FakeModel("m", ['{"n": "seven"}'])
    s = switch(m=fake)
    with pytest.raises(SchemaError, match=r"after 2 attempts: \$\.n: 'seven' is not of type"):
        if streaming:
            await collect(s.stream(name, "q", response_format={"schema": SCHEMA, "retries": 1}))
        else:
            await s.complete(name, "q", response_format={"schema": SCHEMA, "retries": 1})
    assert fake.call_count == 2
    feedback = fake.calls[1].messages
    assert feedback[-2].role == "assistant" and "is not of type 'integer'" in feedback[-1].text


async def test_repair_sums_cost_and_sets_parsed() -> None:
    fake = FakeModel("m", ['{"n": "x"}', 'Here: {"n": 7}'], cost_per_call=0.01)
    out = await switch(m=fake).complete("route", "q", response_format=SCHEMA)
    assert out.parsed == {"n": 7} and out.text == '{"n": 7}'
    assert out.cost_usd == pytest.approx(0.02)
    assert out.trace is not None and len(out.trace.children) == 2
    assert fake.calls[0].settings.response_format.schema == SCHEMA  # sent to the provider


async def test_first_valid_answer_keeps_its_trace_and_no_schema_costs_nothing() -> None:
    fake = FakeModel("m", ['{"n": 1}'])
    s = switch(m=fake)
    out = await s.complete("m", "q", response_format=SCHEMA)
    assert out.parsed == {"n": 1} and out.trace is not None and out.trace.kind == "attempt"
    plain = await s.complete("m", "q")
    assert plain.parsed is None and plain.text == '{"n": 1}'


async def test_stream_retry_is_announced_and_the_end_is_valid() -> None:
    fake = FakeModel("m", ["not json", '{"n": 2}'])
    events = [e async for e in switch(m=fake).stream("m", "q", response_format=SCHEMA)]
    notices = [e for e in events if isinstance(e, StreamNotice)]
    assert [n.kind for n in notices] == ["schema_retry"]
    assert "no JSON value" in notices[0].detail
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.completion.parsed == {"n": 2}
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).endswith('{"n": 2}')


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("streaming", [False, True])
async def test_pydantic_response_format_gives_the_parsed_object(streaming: bool) -> None:
    fake = FakeModel("m", ['{"name": "Oslo", "population": "many"}',
                           '{"name": "Oslo", "population": 700000}'])
    s = switch(m=fake)
    if streaming:
        out = await collect(s.stream("alias", "q", response_format=City))
    else:
        out = await s.complete("alias", "q", response_format=City)
    assert out.parsed == City(name="Oslo", population=700000)
    assert "population" in fake.calls[1].messages[-1].text


async def test_alias_with_a_schema_in_its_settings_validates() -> None:
    fake = FakeModel("m", ['{"n": "x"}'])
    s = Switch({"models": {"counted": {"model": "m", "settings": {
        "response_format": {"schema": SCHEMA, "retries": 0}}}}}, models={"m": fake},
        observers=[])
    with pytest.raises(SchemaError, match="counted"):
        await s.complete("counted", "q")
    assert fake.call_count == 1
    assert (await s.complete("counted", "q", response_format="json")).parsed is None


async def test_tool_calls_and_refusals_are_not_validated() -> None:
    call = Completion("", "tool_calls", Usage(1, 1), 0.0, "fake", "m",
                      tool_calls=(ToolCall("c1", "lookup", "{}"),))
    refusal = Completion("", "content_filter", Usage(1, 1), 0.0, "fake", "m", refusal="no")
    tool = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    out = await switch(m=FakeModel("m", [call])).complete(
        "m", "q", response_format=SCHEMA, tools=[tool])
    assert out.tool_calls and out.parsed is None
    out = await switch(m=FakeModel("m", [refusal])).complete("m", "q", response_format=SCHEMA)
    assert out.refusal == "no" and out.parsed is None


BAD_SCHEMAS: list[tuple[Any, str]] = [
    ({"type": "object", "properties": 5}, "properties: 5 is not of type 'object'"),
    ({"type": "object", "required": 5}, "required: 5 is not of type 'array'"),
    ({"$ref": "#/nope"}, "$ref: '#/nope' does not resolve"),
    ({"type": "string", "minLength": "x"}, "minLength: 'x' is not of type 'integer'"),
    ({"type": "strng"}, "unknown type 'strng'"),
    ({"type": "object", "properties": {"a": {"type": "string", "minLenght": 2}}},
     "properties.a: unknown keyword 'minLenght'; did you mean 'minLength'?"),
    ({"type": "string", "pattern": "("}, "pattern"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
     "remote references are not fetched"),
    ({"type": "integer", "minimum": 5, "maximum": 1}, "cannot be satisfied"),
]


@pytest.mark.parametrize(("schema", "needle"), BAD_SCHEMAS)
async def test_bad_schemas_fail_before_any_call_on_every_path(schema: Any, needle: str) -> None:
    fake = FakeModel("m", ['{"n": 1}'])
    s = switch(m=fake)
    with pytest.raises(BadRequestError, match="response_format schema") as info:
        await s.complete("route", "q", response_format={"schema": schema})
    assert needle in str(info.value)
    with pytest.raises(BadRequestError):
        await collect(s.stream("m", "q", response_format={"schema": schema}))
    with pytest.raises(LLMSwitchError) as structured:
        await complete_structured(s, "m", "q", schema)
    assert needle in str(structured.value)
    assert fake.call_count == 0
    for config in ({"routes": {"x": {"strategy": "structured", "targets": ["m"],
                                     "schema": schema}}},
                   {"routes": {"x": {"strategy": "cascade", "targets": ["m"],
                                     "checks": [{"kind": "schema", "schema": schema}]}}},
                   {"routes": {"x": {"strategy": "chain", "steps": [
                       {"name": "s", "target": "m", "prompt": "{input}", "schema": schema}]}}},
                   {"models": {"x": {"model": "m", "settings": {"response_format": {
                       "schema": schema}}}}}):
        with pytest.raises(ConfigError, match=r"\bx\b") as info:
            Switch(config, models={"m": fake}, observers=[])
        assert needle in str(info.value)


async def test_a_schema_that_is_not_an_object_is_named_so() -> None:
    s = switch(m=FakeModel("m"))
    with pytest.raises(BadRequestError, match="not a schema object"):
        await s.complete("m", "q", response_format={"schema": [1, 2]})
    with pytest.raises(BadRequestError, match="response_format must be"):
        await s.complete("m", "q", response_format=5)


def test_annotations_vendor_keys_and_other_drafts_are_accepted() -> None:
    ok = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "t",
          "definitions": {"a": {"type": "string"}}, "items": [{"$ref": "#/definitions/a"}],
          "x-note": 1, "description": "d", "examples": [["a"]]}
    assert validate(["a"], ok) == [] and validate([1], ok)
    defs = {"$defs": {"n": {"type": "integer"}}, "type": "object",
            "properties": {"n": {"$ref": "#/$defs/n"}}}
    assert validate({"n": "x"}, defs) == ["$.n: 'x' is not of type 'integer'"]


@pytest.mark.parametrize(("settings", "needle"), [
    ({"temperature": 9}, "temperature must be a number from 0 to 2, not 9"),
    ({"temperature": "hot"}, "temperature must be a number from 0 to 2, not 'hot'"),
    ("hot", "valid dictionary"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"seed": "x"}, "seed must be an integer"),
    ({"stop": 5}, "stop must be a string or a list of strings"),
    ({"tools": [5]}, "tools[0]"),
    ({"timeout": -1}, "timeout"),
    ({"tempreature": 1}, "unknown setting(s) tempreature"),
    ({"response_format": 5}, "response_format must be"),
    ({"response_format": {"schema": SCHEMA, "retries": -1}}, "retries"),
])
def test_alias_settings_are_checked_at_load(settings: Any, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Switch({"models": {"hot": {"model": "local/smollm2-135m", "settings": settings}}},
               observers=[])
    assert "models.hot.settings" in str(info.value) and needle in str(info.value)


async def test_bad_call_settings_are_bad_requests() -> None:
    s = switch(m=FakeModel("m"))
    for settings in ({"temperature": 9}, {"seed": 1.5}, {"stop": 3}, {"tools": ["x"]}):
        with pytest.raises(BadRequestError, match="invalid request"):
            await s.complete("m", "q", **settings)


async def test_leaving_a_schema_stream_closes_the_model_stream() -> None:
    closed: list[bool] = []

    class Dripping(FakeModel):
        async def stream(self, request: Any) -> Any:  # type: ignore[override]
            try:
                async for event in super().stream(request):
                    yield event
            finally:
                closed.append(True)

    s = switch(m=Dripping("m", ['{"n": 1, "pad": "a b c d e f"}']))
    events = s.stream("m", "q", response_format=SCHEMA)
    async for event in events:
        if isinstance(event, TextDelta):
            break
    await events.aclose()  # type: ignore[attr-defined]
    assert closed == [True]


# Draft 2020-12 keywords that only act through another one (`then`/`else` through `if`,
# `minContains`/`maxContains` through `contains`), and asserted formats: (schema, bad, good).
COMPANIONS_AND_FORMATS = {
    "if/then/else": ({"type": "object", "if": {"properties": {"k": {"const": "n"}}},
                      "then": {"properties": {"v": {"type": "number"}}},
                      "else": {"properties": {"v": {"type": "string"}}}},
                     {"k": "s", "v": 1}, {"k": "n", "v": 1}),
    "minContains": ({"type": "array", "contains": {"const": 5}, "minContains": 2},
                    [5, 1], [5, 5]),
    "maxContains": ({"type": "array", "contains": {"const": 5}, "maxContains": 1},
                    [5, 5], [5, 1]),
    "format date": ({"type": "string", "format": "date"}, "2024-02-30", "2024-02-29"),
    "format date-time": ({"type": "string", "format": "date-time"}, "31 Jan 2024",
                         "2024-01-31T10:00:00Z"),
    "format email": ({"type": "string", "format": "email"}, "nobody", "a@b.co"),
    "format uuid": ({"type": "string", "format": "uuid"}, "xyz",
                    "123e4567-e89b-12d3-a456-426614174000"),
    "format ipv4": ({"type": "string", "format": "ipv4"}, "999.1.1.1", "10.0.0.1"),
}


@pytest.mark.parametrize("case", sorted(COMPANIONS_AND_FORMATS))
@pytest.mark.parametrize("streaming", [False, True])
async def test_companion_keywords_are_accepted_and_formats_asserted(
        case: str, streaming: bool) -> None:
    import json

    schema, bad, good = COMPANIONS_AND_FORMATS[case]
    for answer, valid in ((bad, False), (good, True)):
        fake = FakeModel("m", [json.dumps(answer)])
        fmt = {"schema": schema, "retries": 0}
        call = (collect(switch(m=fake).stream("m", "q", response_format=fmt)) if streaming
                else switch(m=fake).complete("m", "q", response_format=fmt))
        if valid:
            assert (await call).parsed == answer
        else:
            with pytest.raises(SchemaError):
                await call


def test_formats_check_only_strings_and_unknown_formats_stay_annotations() -> None:
    assert validate(5, {"format": "email"}) == []
    assert validate("anything", {"type": "string", "format": "uri"}) == []
    assert validate("10:00:00", {"format": "time"})  # RFC 3339 needs the offset
    assert validate("10:00:00+01:00", {"format": "time"}) == []
    assert validate("PT", {"format": "duration"})
    assert validate("P1DT2H", {"format": "duration"}) == []
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "contains": {},
              "minContains": 2}  # draft 7 has no minContains: nothing would check it
    with pytest.raises(ValueError, match="unknown keyword 'minContains'"):
        validate([], draft7)


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


@pytest.mark.parametrize("depth", [150, 5000])
async def test_a_deeply_nested_schema_is_a_bad_request_not_a_recursion_error(depth: int) -> None:
    fake = FakeModel("m", ["[]"])
    with pytest.raises(BadRequestError, match="nested more than 64 levels"):
        await switch(m=fake).complete("m", "q", response_format=nested(depth))
    assert fake.call_count == 0
    assert (await switch(m=fake).complete("m", "q", response_format=nested(30))).parsed == []


@pytest.mark.parametrize("depth", [500, 5000])
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_deeply_nested_answer_fails_the_schema(depth: int, streaming: bool) -> None:
    recursive = {"$defs": {"a": {"type": "array", "items": {"$ref": "#/$defs/a"}}},
                 "$ref": "#/$defs/a"}
    fake = FakeModel("m", ["[" * depth + "]" * depth])
    fmt = {"schema": recursive, "retries": 0}
    with pytest.raises(SchemaError, match="nested"):
        if streaming:
            await collect(switch(m=fake).stream("m", "q", response_format=fmt))
        else:
            await switch(m=fake).complete("m", "q", response_format=fmt)


@pytest.mark.parametrize("retries", [True, -1, 1.5, "2"])
def test_structured_route_retries_must_be_a_whole_number(retries: Any) -> None:
    with pytest.raises(ConfigError, match=r"routes\.x: 'retries' must be a whole number"):
        Switch({"routes": {"x": {"strategy": "structured", "targets": ["m"],
                                 "schema": SCHEMA, "retries": retries}}},
               models={"m": FakeModel("m")}, observers=[])
