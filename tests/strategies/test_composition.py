"""Patterns nest: every strategy is a model, so routes, cascades, ensembles, chains and
fallbacks compose, with cost summed through every level and traces nested."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import Switch
from llmswitch.errors import OverloadedError
from llmswitch.testing import FakeModel

CASCADE = {"strategy": "cascade", "checks": ["heuristics"]}


def fakes(**scripts: list[Any]) -> dict[str, FakeModel]:
    return {n: FakeModel(n, s, cost_per_call=0.01) for n, s in scripts.items()}


async def test_route_whose_targets_are_cascades() -> None:
    routes = {
        "easy": {**CASCADE, "targets": ["c1", "s1"]},
        "hard": {**CASCADE, "targets": ["c2", "s2"]},
        "r": {"strategy": "route", "rules": [{"when": {"keywords": ["prove"]}, "target": "hard"}],
              "default": "easy"},
    }
    models = fakes(c1=["ok"], s1=["x"], c2=["I'm not sure"], s2=["proof"])
    s = Switch({"routes": routes}, models=models)
    out = await s.complete("r", "prove it")
    assert (out.text, out.model) == ("proof", "s2") and out.cost_usd == pytest.approx(0.02)
    assert out.trace is not None and out.trace.children[0].name == "hard"
    assert [c.name for c in out.trace.children[0].children] == ["stage 1: c2", "stage 2: s2"]


async def test_ensemble_of_routes() -> None:
    routes = {
        "r1": {"strategy": "route", "tiers": [{"target": "a"}]},
        "r2": {"strategy": "route", "tiers": [{"target": "b"}]},
        "r3": {"strategy": "route", "tiers": [{"target": "c"}]},
        "e": {"strategy": "ensemble", "targets": ["r1", "r2", "r3"]},
    }
    s = Switch({"routes": routes}, models=fakes(a=["42"], b=["41"], c=["42."]))
    out = await s.complete("e", "6*7?")
    assert out.text == "42" and out.model == "a" and out.cost_usd == pytest.approx(0.03)
    assert out.trace is not None and {c.name for c in out.trace.children} == {"r1", "r2", "r3"}


async def test_chain_whose_step_is_a_cascade() -> None:
    routes = {
        "careful": {**CASCADE, "targets": ["cheap", "strong"]},
        "ch": {"strategy": "chain", "steps": [
            {"name": "draft", "target": "careful", "prompt": "Draft: {input}"},
            {"name": "polish", "target": "cheap", "prompt": "Polish: {draft}"}]},
    }
    models = fakes(cheap=["", "polished"], strong=["a draft"])
    s = Switch({"routes": routes}, models=models)
    out = await s.complete("ch", "topic")
    assert out.text == "polished" and out.cost_usd == pytest.approx(0.03)
    assert models["cheap"].calls[1].messages[-1].text == "Polish: a draft"


async def test_fallback_of_cascades() -> None:
    pytest.importorskip("llmswitch.strategies.fallback")
    down = OverloadedError("down")
    routes = {
        "first": {**CASCADE, "targets": ["a1", "a2"]},
        "second": {**CASCADE, "targets": ["b1", "b2"]},
        "fb": {"strategy": "fallback", "targets": ["first", "second"], "retries": 0,
               "fallback_on": ["all_failed", "overloaded"]},
    }
    models = fakes(a1=[down], a2=[down], b1=["I can't help with that."], b2=["answer"])
    s = Switch({"routes": routes}, models=models)
    out = await s.complete("fb", "q")
    assert out.text == "answer" and out.model == "b2"
    assert out.cost_usd == pytest.approx(0.02)  # the failed calls were not billed
    names = [span.name for span in out.trace.walk()]  # type: ignore[union-attr]
    assert "first" in names and "second" in names and "stage 2: b2" in names


def test_fallback_on_judges_a_nested_route_by_its_real_causes() -> None:
    """A nested load-balance or fallback notes a NoRouteError for every target it skipped;
    those must not make every nested failure match `fallback_on`."""
    from llmswitch.errors import (
        AllAttemptsFailedError,
        NoRouteError,
        RateLimitedError,
        TimeoutError,
    )
    from llmswitch.strategies.fallback import matches

    skipped = NoRouteError("no deployment available (circuits open or all tried)")
    timed_out = AllAttemptsFailedError("lb failed", [TimeoutError("slow"), skipped])
    limited = AllAttemptsFailedError("lb failed", [RateLimitedError("429"), skipped])
    assert not matches(timed_out, (RateLimitedError,))
    assert matches(limited, (RateLimitedError,))
    assert matches(AllAttemptsFailedError("lb", [skipped]), (RateLimitedError,))  # never tried
    assert matches(skipped, (RateLimitedError,))
