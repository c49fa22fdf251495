"""Loading plans: every mistake is one `PlanError` naming the stream and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmswitch.plans import Plan, PlanError


def plan(streams: dict[str, Any], **top: Any) -> Plan:
    return Plan.from_dict({"defaults": {"model": "m"}, "streams": streams, **top}, "p.yaml")


def error(streams: dict[str, Any], **top: Any) -> str:
    with pytest.raises(PlanError) as info:
        plan(streams, **top)
    return str(info.value)


def test_dependencies_from_templates_and_order() -> None:
    p = plan({"c": {"prompt": "{{ streams.b.output }}"}, "b": {"prompt": "x",
              "depends_on": ["a"]}, "a": {"prompt": "y"}})
    assert p.streams["c"].depends_on == ("b",)
    assert p.order() == ["a", "b", "c"]


def test_cycle_is_printed_with_the_streams_it_blocks() -> None:
    msg = error({"a": {"prompt": "{{ streams.b.output }}"}, "b": {"prompt": "x",
                 "depends_on": ["a"]}, "c": {"prompt": "x", "depends_on": ["b"]},
                 "d": {"prompt": "free"}})
    assert "dependency cycle: " in msg
    assert "a -> b -> a" in msg or "b -> a -> b" in msg
    assert "a, b, c can never run" in msg and "d" not in msg.split("never run")[0][-20:]


def test_self_dependency_is_a_cycle() -> None:
    assert "a -> a" in error({"a": {"prompt": "x", "depends_on": ["a"]}})


def test_unknown_references_suggest() -> None:
    msg = error({"api": {"prompt": "{{ streams.schem.output }}"}, "schema": {"prompt": "x"}})
    assert "streams.api.prompt" in msg and "unknown stream 'schem'" in msg
    assert "did you mean 'schema'" in msg
    msg = error({"a": {"prompt": "{{ inputs.featur }}"}}, inputs={"feature": {}})
    assert "streams.a.prompt" in msg and "unknown input 'featur'" in msg
    msg = error({"a": {"prompt": "x", "depends_on": ["zzz"]}})
    assert "streams.a.depends_on: unknown stream 'zzz'" in msg


def test_json_field_of_a_text_stream() -> None:
    msg = error({"a": {"prompt": "x"}, "b": {"prompt": "{{ streams.a.json.f }}"}})
    assert "streams.b.prompt" in msg and "does not produce JSON" in msg


def test_unknown_keys_suggest() -> None:
    assert "streams.a.dependson: unknown key; did you mean 'depends_on'?" in error(
        {"a": {"prompt": "x", "dependson": []}})
    assert "strems" in error({"a": {"prompt": "x"}}, strems={})


@pytest.mark.parametrize(("stream", "needle"), [
    ({"model": "m"}, "streams.a.prompt"),
    ({"prompt": "x", "output": {"file": "../escape.py"}}, "inside the run folder"),
    ({"prompt": "x", "output": "yaml"}, "streams.a.output"),
    ({"prompt": "x", "deadline": "soon"}, "streams.a.deadline"),
    ({"prompt": "x", "budget_usd": -1}, "streams.a.budget_usd"),
    ({"prompt": "x", "needs": ["telepathy"]}, "streams.a.needs"),
    ({"prompt": "x", "checkpoint": "maybe"}, "streams.a.checkpoint"),
    ({"prompt": "x", "checks": [{"regex": "("}]}, "streams.a.checks[0].regex"),
])
def test_bad_values(stream: dict[str, Any], needle: str) -> None:
    assert needle in error({"a": stream})


def test_inputs_missing_and_unknown() -> None:
    p = plan({"a": {"prompt": "{{ inputs.feature }}"}},
             inputs={"feature": {"description": "what to build"}, "lang": {"default": "py"}})
    assert p.resolve_inputs({"feature": "x"}) == {"feature": "x", "lang": "py"}
    with pytest.raises(PlanError, match="missing input 'feature' \\(feature: what to build\\)"):
        p.resolve_inputs({})
    with pytest.raises(PlanError, match="unknown input 'featur'; did you mean 'feature'"):
        p.resolve_inputs({"featur": "x"})


def test_broken_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("streams: [unclosed\n", encoding="utf-8")
    with pytest.raises(PlanError, match="not valid YAML"):
        Plan.load(bad)
    with pytest.raises(PlanError, match="not found"):
        Plan.load(tmp_path / "none.yaml")
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(PlanError, match="a plan is a mapping"):
        Plan.load(bad)


def test_durations_and_defaults() -> None:
    p = plan({"a": {"prompt": "x", "deadline": "2m"}, "b": {"prompt": "y", "model": "other"}},
             defaults={"model": "m", "max_tokens": 50, "deadline": 30})
    assert p.streams["a"].deadline == 120 and p.streams["a"].max_tokens == 50
    assert p.streams["b"].model == "other" and p.streams["b"].deadline == 30
