"""Config loading: env expansion, validation messages, file discovery, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.config import config_from_dict, load_config
from llmswitch.errors import ConfigError


def test_defaults_without_any_file() -> None:
    config = load_config()
    assert config.default_model == "local/smollm2-135m"
    assert config.routes == {}


def test_env_expansion_with_default(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("providers:\n  openai:\n    base_url: ${BASE:-http://x/v1}\n"
                    "    headers:\n      X-Team: ${TEAM}\n")
    config = load_config(path, env={"TEAM": "search"})
    assert config.providers["openai"].base_url == "http://x/v1"
    assert config.providers["openai"].headers == {"X-Team": "search"}


def test_unset_env_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"providers": {"openai": {"base_url": "${NOPE}"}}}, "f.yaml", env={})
    assert "f.yaml: providers.openai.base_url" in str(caught.value)
    assert "NOPE" in str(caught.value)


def test_config_file_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("default_model: openai/gpt-4o\n")
    monkeypatch.setenv("LLMSWITCH_CONFIG", str(path))
    assert load_config().default_model == "openai/gpt-4o"


def test_local_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llmswitch.yaml").write_text("default_model: gemini/gemini-2.5-flash\n")
    assert load_config().default_model == "gemini/gemini-2.5-flash"


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    assert load_config(path).default_model == "local/smollm2-135m"


@pytest.mark.parametrize(("data", "needle"), [
    ({"routes": {"r": {"targets": ["a"]}}}, "routes.r.strategy: Field required"),
    ({"providers": {"openai": {"timeout": "soon"}}}, "providers.openai.timeout"),
    ({"models": {"a": {"model": "x", "provider": "openai"}}}, "not both"),
    ({"models": {"a": {"model": "openai/gpt-4o", "input_per_mtok": 1}}}, "alias cannot set"),
    ({"models": {"r": {"model": "x"}}, "routes": {"r": {"strategy": "fallback"}}},
     "both a model and a route"),
    (["not", "a", "mapping"], "top level must be a mapping"),
])
def test_validation_messages(data: object, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "my.yaml")
    assert needle in str(caught.value)
    assert "my.yaml" in str(caught.value)


def test_secrets_are_not_printed() -> None:
    config = config_from_dict({"providers": {"openai": {
        "api_key": "sk-SECRET", "headers": {"Authorization": "Bearer sk-HEADER"}}}})
    shown = repr(config) + config.model_dump_json()
    assert "sk-SECRET" not in shown and "sk-HEADER" not in shown
