"""The sandboxed template renderer: only inputs and earlier streams' outputs, nothing else."""

from __future__ import annotations

import pytest

from llmswitch.plans import PlanError
from llmswitch.plans.templates import Output, parse, render


def test_renders_inputs_outputs_and_json_fields() -> None:
    tpl = parse("Build {{ inputs.feature }} on {{streams.schema.json.table}} "
                "({{ streams.schema.json.columns.1 }}) after {{ streams.design.output }}", "t")
    outputs = {"schema": Output("{}", {"table": "orders", "columns": ["id", "status"]}),
               "design": Output("the design")}
    text = render(tpl, {"feature": "history"}, outputs)
    assert text == "Build history on orders (status) after the design"
    assert tpl.streams() == {"schema", "design"} and tpl.inputs() == {"feature"}


def test_non_string_json_values_are_json() -> None:
    tpl = parse("{{ streams.s.json.columns }} / {{ streams.s.json }}", "t")
    out = render(tpl, {}, {"s": Output("", {"columns": ["a", 1]})})
    assert out == '["a", 1] / {"columns": ["a", 1]}'


@pytest.mark.parametrize("expr", [
    "{{ inputs.__class__.__mro__ }}", "{{ config.items() }}", "{{ 1 + 1 }}",
    "{{ streams.a.output.upper }}", "{{ streams.a }}", "{{ inputs['x'] }}", "{{ }}",
    "{% for x in y %}{{ x }}{% endfor %}",
])
def test_anything_else_is_refused_at_parse_time(expr: str) -> None:
    with pytest.raises(PlanError, match=r"streams\.a\.prompt") as info:
        parse(expr, "streams.a.prompt")
    assert "not allowed" in str(info.value) or "never closed" in str(info.value)


def test_escape_and_unclosed() -> None:
    assert render(parse(r"literal \{{ inputs.x }}", "t"), {}, {}) == "literal {{ inputs.x }}"
    with pytest.raises(PlanError, match="never closed"):
        parse("oops {{ inputs.x", "t")


def test_missing_json_field_names_the_path() -> None:
    tpl = parse("{{ streams.s.json.a.b }}", "streams.t.prompt")
    with pytest.raises(PlanError) as info:
        render(tpl, {}, {"s": Output("", {"a": {"c": 1}})}, "streams.t.prompt")
    assert "no field 'b' at a" in str(info.value) and "streams.t.prompt" in str(info.value)
