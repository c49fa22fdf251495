"""The shipped catalog, overrides, and cost computation."""

from __future__ import annotations

import pytest

from llmswitch import Switch, Usage
from llmswitch.catalog import Catalog, ModelCard, cost_usd
from llmswitch.errors import ConfigError

PROVIDERS = {"openai", "azure", "anthropic", "gemini", "bedrock", "deepseek", "openrouter",
             "ollama", "local"}


def test_shipped_catalog_is_broad_and_valid() -> None:
    catalog = Catalog.shipped()
    assert len(catalog) >= 40
    assert {c.provider for c in catalog} >= PROVIDERS
    for card in catalog:
        assert card.prices_as_of, card.id
        assert card.context_window >= card.max_output_tokens or card.provider == "local"
    families = {c.family for c in catalog}
    assert {"llama", "qwen", "mistral"} & families


def test_local_models_are_the_cheapest_and_defaults() -> None:
    catalog = Catalog.shipped()
    local = catalog.get("local/smollm2-135m")
    assert local is not None and local.input_per_mtok == 0 and local.output_per_mtok == 0
    assert local.has("json_schema")
    priced = [c.input_per_mtok or 0 for c in catalog if c.priced]
    assert min(priced) == 0
    assert Switch({}).config.default_model == "local/smollm2-135m"


def test_cost_prices_each_token_kind() -> None:
    card = ModelCard(id="x/m", context_window=100, max_output_tokens=10, input_per_mtok=2.0,
                     output_per_mtok=8.0, cached_input_per_mtok=0.5, cache_write_per_mtok=2.5,
                     reasoning_per_mtok=10.0)
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, cached_input_tokens=400_000,
                  cache_write_tokens=100_000, reasoning_tokens=200_000)
    # 500k plain in at 2 + 400k cached at 0.5 + 100k writes at 2.5 + 300k out at 8 + 200k at 10
    assert cost_usd(card, usage) == pytest.approx(1.0 + 0.2 + 0.25 + 2.4 + 2.0)


def test_reasoning_and_cache_fall_back_to_plain_rates() -> None:
    card = ModelCard(id="x/m", context_window=100, max_output_tokens=10, input_per_mtok=1.0,
                     output_per_mtok=4.0)
    usage = Usage(input_tokens=1000, output_tokens=1000, cached_input_tokens=500,
                  reasoning_tokens=800)
    assert cost_usd(card, usage) == pytest.approx((1000 * 1.0 + 1000 * 4.0) / 1e6)
    assert cost_usd(None, usage) is None
    unpriced = ModelCard(id="x/n", context_window=100, max_output_tokens=10)
    assert cost_usd(unpriced, usage) is None


def test_inconsistent_usage_never_goes_negative() -> None:
    card = ModelCard(id="x/m", context_window=100, max_output_tokens=10, input_per_mtok=1.0,
                     output_per_mtok=1.0, cached_input_per_mtok=0.1)
    cost = cost_usd(card, Usage(input_tokens=10, cached_input_tokens=50, reasoning_tokens=9))
    assert cost is not None and cost >= 0


def test_config_adds_and_overrides_models() -> None:
    switch = Switch({"models": {
        "openai/gpt-4o": {"input_per_mtok": 99.0},
        "mine": {"provider": "ollama", "name": "qwen3:8b", "input_per_mtok": 0.0,
                 "output_per_mtok": 0.0, "context_window": 32768},
    }})
    gpt = switch.catalog.get("openai/gpt-4o")
    assert gpt is not None and gpt.input_per_mtok == 99.0
    assert gpt.output_per_mtok == Catalog.shipped().get("openai/gpt-4o").output_per_mtok  # type: ignore[union-attr]
    mine = switch.catalog.get("ollama/qwen3:8b")
    assert mine is not None and mine.context_window == 32768


def test_bad_override_names_the_entry() -> None:
    with pytest.raises(ConfigError) as caught:
        Switch({"models": {"openai/gpt-4o": {"input_per_mtok": -1}}})
    assert "models.openai/gpt-4o" in str(caught.value)


def test_override_of_bare_name_is_explained() -> None:
    with pytest.raises(ConfigError) as caught:
        Switch({"models": {"gpt5": {"input_per_mtok": 1}}})
    assert "provider/name" in str(caught.value)


def test_suggestions() -> None:
    catalog = Catalog.shipped()
    assert "claude-sonnet-4-5" in catalog.suggest("claude-sonet-4-5")
    assert catalog.lookup("gpt-4o-mini") is catalog.get("openai/gpt-4o-mini")
