"""`strategy: route` with fake models: task, rules, capability and complexity kinds."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import Switch
from llmswitch.errors import ConfigError, NoRouteError, ResponseError
from llmswitch.messages import Message
from llmswitch.models import collect
from llmswitch.request import Request
from llmswitch.testing import FakeModel


def switch(routes: dict[str, Any], **models: FakeModel) -> Switch:
    return Switch({"routes": routes}, models=models)


TASKS = {"strategy": "route", "by": "task", "default": "general", "tasks": {
    "sql_generation": {"target": "strong", "match": r"(?i)\bsql\b", "prompt_version": "v2",
                       "system": {"default": "Write SQL.", "fake": "Write SQL for fakes."},
                       "post": ["strip_code_fence"], "pre": ["collapse_whitespace"]},
    "classification": {"target": "cheap", "post": ["parse_json"], "system": "Answer in JSON."},
    "general": "cheap",
}}


async def test_task_from_metadata_applies_prompt_and_post_steps() -> None:
    strong = FakeModel("strong", ["```sql\nSELECT 1;\n```"], cost_per_call=0.02)
    s = switch({"t": TASKS}, strong=strong, cheap=FakeModel("cheap"))
    out = await s.complete("t", "give me   the query", metadata={"task": "sql_generation"})
    assert out.text == "SELECT 1;" and out.model == "strong" and out.cost_usd == 0.02
    sent = strong.calls[0]
    assert sent.messages[0].role == "system" and sent.messages[0].text == "Write SQL."
    assert sent.messages[1].text == "give me the query"
    assert out.trace is not None
    attrs = out.trace.attributes
    assert attrs["llmswitch.chosen"] == "strong" and "prompt v2" in attrs["llmswitch.reason"]
    assert out.trace.children[0].name == "chat strong"


async def test_task_inferred_by_pattern_then_default() -> None:
    cheap = FakeModel("cheap", ["plain"])
    s = switch({"t": TASKS}, strong=FakeModel("strong", ["x"]), cheap=cheap)
    assert (await s.complete("t", "write SQL please")).model == "strong"
    out = await s.complete("t", "tell me a joke")
    assert out.model == "cheap" and "default task 'general'" in out.trace.attributes[  # type: ignore[union-attr]
        "llmswitch.reason"]


async def test_unknown_task_without_default_is_no_route() -> None:
    routes = {"t": {**TASKS, "default": None}}
    s = switch(routes, strong=FakeModel("strong"), cheap=FakeModel("cheap"))
    with pytest.raises(NoRouteError, match=r"routes\.t: unknown task 'poetry'") as info:
        await s.complete("t", "x", metadata={"task": "poetry"})
    assert info.value.trace is not None and info.value.trace.status == "error"


async def test_post_step_failure_names_the_task() -> None:
    s = switch({"t": TASKS}, strong=FakeModel("strong"), cheap=FakeModel("cheap", ["not json"]))
    with pytest.raises(ResponseError, match="task 'classification' post step 'parse_json'"):
        await s.complete("t", "x", metadata={"task": "classification"})


async def test_rules_route_streams_the_chosen_model() -> None:
    routes = {"r": {"strategy": "route", "rules": [
        {"when": {"keywords": ["urgent"]}, "target": "fast"}], "default": "cheap"}}
    s = switch(routes, fast=FakeModel("fast", ["on it now"]), cheap=FakeModel("cheap"))
    request = Request((Message.user("urgent: fix"),))
    original = request
    completion = await collect(s.model("r").stream(request))
    assert completion.text == "on it now" and completion.model == "fast"
    assert completion.trace is not None and completion.trace.attributes["llmswitch.strategy"] == (
        "route")
    assert request == original


async def test_capability_route_picks_cheapest_able_model() -> None:
    routes = {"c": {"strategy": "route", "by": "capability", "require": ["json_schema"],
                    "targets": ["openai/gpt-4o", "openai/gpt-4o-mini", "local/smollm2-135m"],
                    "optimize": "cost"}}
    models = {n: FakeModel(n, [n]) for n in routes["c"]["targets"]}
    s = Switch({"routes": routes}, models=models)
    out = await s.complete("c", "hi", max_tokens=10)
    assert out.text == "local/smollm2-135m"  # free and able
    reasoning = {"c": {**routes["c"], "require": ["reasoning"]}}
    s2 = Switch({"routes": reasoning}, models=models)
    with pytest.raises(NoRouteError, match="local/smollm2-135m: lacks reasoning") as info:
        await s2.complete("c", "hi")
    assert "openai/gpt-4o: lacks reasoning" in str(info.value)


async def test_complexity_route_records_score() -> None:
    routes = {"x": {"strategy": "route", "tiers": [{"below": 0.4, "target": "cheap"},
                                                    {"target": "strong"}]}}
    s = switch(routes, cheap=FakeModel("cheap"), strong=FakeModel("strong"))
    easy = await s.complete("x", "hi there")
    hard = await s.complete("x", "Explain step by step and prove why the algorithm's "
                                 "asymptotic complexity bound holds; compare designs.\n"
                                 "1. derive\n2. analyse\n3. implement ```def f(): return 1```")
    assert (easy.model, hard.model) == ("cheap", "strong")
    assert hard.trace is not None and hard.trace.attributes["llmswitch.scores"]["complexity"] > 0.4


class Always:
    def score(self, text: str) -> float:
        return 0.99


def make_scorer() -> Always:
    return Always()


async def test_complexity_scorer_is_pluggable() -> None:
    routes = {"x": {"strategy": "route", "scorer": f"{__name__}:make_scorer",
                    "tiers": [{"below": 0.5, "target": "cheap"}, {"target": "strong"}]}}
    s = switch(routes, cheap=FakeModel("cheap"), strong=FakeModel("strong"))
    assert (await s.complete("x", "hi")).model == "strong"


@pytest.mark.parametrize(("route", "message"), [
    ({"strategy": "route", "by": "vibes"}, "not a route kind"),
    ({"strategy": "route", "tasks": {"a": {"system": "x"}}}, "tasks.a needs a 'target'"),
    ({"strategy": "route", "tasks": {"a": {"target": "cheap", "post": ["zap"]}}}, "unknown step"),
    ({"strategy": "route", "rules": [{"when": {"x": 1}, "target": "cheap"}]}, "unknown condition"),
    ({"strategy": "route", "rules": [{"target": "nowhere"}]}, "unknown model"),
    ({"strategy": "route", "tiers": [{"target": "cheap"}], "scorer": "no.such:thing"},
     "cannot be loaded"),
])
def test_bad_route_config_names_the_route(route: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message) as info:  # rejected when the config loads
        switch({"bad": route}, cheap=FakeModel("cheap"))
    if isinstance(info.value, ConfigError):
        assert "routes.bad" in str(info.value)
