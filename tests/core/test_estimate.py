"""Switch.estimate: the most a call can cost, before it is made (budgets reserve it)."""

from __future__ import annotations

import pytest

from llmswitch import CallEstimate, ModelNotFoundError, Switch

PRICED = {"context_window": 8000, "max_output_tokens": 1000}


def switch() -> Switch:
    return Switch({
        "models": {
            "cheap": {"provider": "openai", "name": "cheap", **PRICED,
                      "input_per_mtok": 1.0, "output_per_mtok": 2.0},
            "dear": {"provider": "openai", "name": "dear", **PRICED,
                     "input_per_mtok": 10.0, "output_per_mtok": 30.0},
            "house": {"model": "cheap", "settings": {"temperature": 0.1}},
        },
        "routes": {"r": {"strategy": "fallback", "targets": ["house", "dear"]}},
        "observe": {"ledger": False}})


def test_a_model_and_an_alias_are_priced_at_their_card() -> None:
    s = switch()
    plain = s.estimate("cheap", "hello " * 100, max_tokens=50)
    assert isinstance(plain, CallEstimate)
    assert plain.max_output_tokens == 50 and plain.input_tokens > 100
    assert plain.max_cost_usd == pytest.approx((plain.input_tokens * 1.0 + 50 * 2.0) / 1e6)
    assert s.estimate("house", "hello " * 100, max_tokens=50).max_cost_usd == \
        plain.max_cost_usd
    assert plain.models == ("openai/cheap",)


def test_a_route_is_priced_at_its_dearest_target_and_the_models_limit() -> None:
    estimate = switch().estimate("r", "hi")
    assert estimate.max_output_tokens == 1000  # no max_tokens: the largest card's limit
    assert estimate.max_cost_usd == pytest.approx(
        (estimate.input_tokens * 10.0 + 1000 * 30.0) / 1e6)
    assert set(estimate.models) == {"openai/cheap", "openai/dear"}


def test_unknown_prices_and_names() -> None:
    s = switch()
    assert s.estimate("openai/some-new-model", "hi").max_cost_usd is None
    with pytest.raises(ModelNotFoundError):
        s.estimate("nosuchmodel", "hi")


def test_max_tokens_beyond_every_models_limit_is_capped_at_it() -> None:
    estimate = switch().estimate("cheap", "hi", max_tokens=50_000)
    assert estimate.max_output_tokens == 1000
    assert estimate.max_cost_usd == pytest.approx(
        (estimate.input_tokens * 1.0 + 1000 * 2.0) / 1e6)
    assert switch().estimate("openai/some-new-model", "hi", max_tokens=50_000
                             ).max_output_tokens == 50_000  # unknown limit: as asked
