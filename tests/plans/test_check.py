"""Checks against the models, before anything is spent: names, capabilities, auto, budgets."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import Switch
from llmswitch.plans import Plan, PlanError, prepare
from llmswitch.plans.tools import Toolbox

CONFIG: dict[str, Any] = {
    "observe": {"ledger": False},
    "models": {"coder": {"model": "local/smollm2-135m"}},
    "routes": {"reliable": {"strategy": "fallback",
                            "targets": ["openai/gpt-4o-mini", "local/smollm2-135m"]}},
}


def check(streams: dict[str, Any], tools: Toolbox | None = None, **top: Any) -> Any:
    plan = Plan.from_dict({"streams": streams, **top}, "p.yaml")
    return prepare(Switch(CONFIG), plan, {}, tools=tools)


def error(streams: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(PlanError) as info:
        check(streams, **kw)
    return str(info.value)


def test_unknown_model_suggests_from_catalog_and_config() -> None:
    msg = error({"a": {"model": "gpt4o-mini", "prompt": "x"}})
    assert "streams.a.model: unknown model 'gpt4o-mini'" in msg and "gpt-4o-mini" in msg
    msg = error({"a": {"model": "codr", "prompt": "x"}})
    assert '"coder"' in msg
    msg = error({"a": {"model": "coder", "prompt": "x", "fallback": ["reliabel"]}})
    assert "streams.a.fallback[0]" in msg and '"reliable"' in msg


def test_missing_capability_names_stream_key_and_alternatives() -> None:
    tools = Toolbox()
    tools.register(lambda: "x", name="search")
    msg = error({"agent": {"model": "coder", "prompt": "x", "tools": ["search"]}}, tools=tools)
    assert "streams.agent.model: coder lacks tools" in msg and "it has tools" in msg
    assert "models that have it:" in msg
    msg = error({"a": {"model": "local/smollm2-135m", "prompt": "x", "needs": ["vision"]}})
    assert "lacks vision" in msg
    msg = error({"a": {"model": "openai/gpt-4.1", "prompt": "x", "needs": ["long_context"],
                       "fallback": ["openai/gpt-3.5-turbo"]}})
    assert "streams.a.fallback[0]: openai/gpt-3.5-turbo lacks long_context" in msg


def test_route_meets_a_need_when_any_target_does() -> None:
    prepared = check({"a": {"model": "reliable", "prompt": "x", "needs": ["tools"]}})
    assert prepared.models["a"] == "reliable"


def test_auto_picks_by_goal_and_explains() -> None:
    streams = {"cheap": {"model": "auto", "prompt": "x", "needs": ["vision", "tools"],
                         "candidates": ["openai/gpt-4o", "openai/gpt-4o-mini",
                                        "anthropic/claude-sonnet-4-5"]},
               "good": {"model": "auto", "prompt": "x", "optimize_for": "quality",
                        "candidates": ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"]}}
    prepared = check(streams)
    assert prepared.models["cheap"] == "openai/gpt-4o-mini"
    assert "cheapest of 3 candidates with tools, vision" in prepared.auto["cheap"].reason
    assert prepared.auto["good"].reason.startswith("best-rated")


def test_auto_without_a_qualifying_model() -> None:
    msg = error({"a": {"model": "auto", "prompt": "x", "needs": ["vision"],
                       "candidates": ["local/smollm2-135m"]}})
    assert "streams.a.model: auto found no model with vision" in msg


def test_auto_through_a_router_route() -> None:
    prepared = check({"a": {"model": "auto", "router": "reliable", "task": "code",
                            "prompt": "x"}})
    assert prepared.models["a"] == "reliable"
    assert "route 'reliable' (fallback) picks the model per request" in prepared.auto["a"].reason
    assert "is not a route" in error({"a": {"model": "auto", "router": "nope", "prompt": "x"}})


def test_budget_below_the_prompt_can_never_run() -> None:
    msg = error({"a": {"model": "openai/gpt-4o", "prompt": "word " * 2000,
                       "budget_usd": 0.000001}})
    assert "streams.a: can never run" in msg and "budget_usd" in msg
    msg = error({"a": {"model": "openai/gpt-4o", "prompt": "word " * 2000}}, budget_usd=1e-6)
    assert "the plan can never finish" in msg


def test_estimates_follow_dependencies() -> None:
    prepared = check({"a": {"model": "openai/gpt-4o", "prompt": "x", "max_tokens": 1000},
                      "b": {"model": "openai/gpt-4o", "prompt": "{{ streams.a.output }}"}})
    a, b = prepared.estimates["a"], prepared.estimates["b"]
    assert a.output_tokens == 1000 and b.input_tokens > 900  # a's answer feeds b
    assert a.cost_usd is not None and a.cost_usd > 0.009  # 1000 output tokens at $10/M
