"""The public API surface, request building, presets and resolution."""

from __future__ import annotations

import types

import pytest

import llmswitch
from llmswitch import Message, Request, Switch
from llmswitch.errors import BadRequestError, ConfigError, ModelNotFoundError
from llmswitch.request import ResponseFormat
from llmswitch.testing import FakeModel


def test_all_is_exactly_the_public_names() -> None:
    exported = set(llmswitch.__all__)
    assert len(exported) == len(llmswitch.__all__)
    for name in exported:
        assert hasattr(llmswitch, name), name
    public = {n for n in dir(llmswitch) if not n.startswith("_")}
    # Submodules show up as attributes once imported (by this or other tests): not API names.
    modules = {n for n in public if isinstance(getattr(llmswitch, n), types.ModuleType)}
    assert public - modules - {"__version__"} <= exported


def test_request_building_and_validation() -> None:
    switch = Switch({})
    request = switch.request("hi", system="be brief", max_tokens=5, stop="END",
                             response_format={"type": "json_object"})
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.settings.stop == ("END",)
    assert request.settings.response_format.kind == "json"
    for bad in ({"temperature": "hot"}, {"max_tokens": -5}, {"colour": "red"},
                {"tool_choice": "missing_tool"}):
        with pytest.raises(BadRequestError):
            switch.request("hi", **bad)
    with pytest.raises(BadRequestError):
        switch.request([{"role": "wizard", "content": "x"}])


def test_pydantic_class_as_response_format() -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    request = Switch({}).request("x", response_format=City)
    fmt = request.settings.response_format
    assert isinstance(fmt, ResponseFormat) and fmt.kind == "json_schema"
    assert fmt.schema is not None and fmt.schema["required"] == ["name"]


async def test_preset_fills_defaults_without_mutating() -> None:
    fake = FakeModel(name="inner")
    switch = Switch({"models": {"fast": {"model": "inner", "settings": {"temperature": 0.1,
                                                                      "max_tokens": 7},
                                         "system": "Be brief."}}},
                    models={"inner": fake})
    await switch.complete("fast", "hi", max_tokens=3)
    seen = fake.calls[0]
    assert seen.settings.temperature == 0.1
    assert seen.settings.max_tokens == 3  # the caller's value wins
    assert seen.messages[0] == Message.system("Be brief.")


async def test_caller_messages_are_not_mutated() -> None:
    fake = FakeModel(name="inner")
    switch = Switch({"models": {"fast": {"model": "inner", "system": "S"}}},
                    models={"inner": fake})
    messages = [Message.user("hi")]
    await switch.complete("fast", messages)
    assert messages == [Message.user("hi")]


def test_resolution_errors() -> None:
    with pytest.raises(ConfigError) as caught:  # found at load (it was at the first call)
        Switch({"models": {"loop": {"model": "loop2"}, "loop2": {"model": "loop"}}})
    assert "cycle" in str(caught.value)
    with pytest.raises(ModelNotFoundError) as missing:
        Switch({}).model("gpt-4o-mni")
    assert "gpt-4o-mini" in missing.value.suggestions
    with pytest.raises(ConfigError):
        Switch({"routes": {"r": {"strategy": "teleport"}}})
    with pytest.raises(ConfigError) as step:
        Switch({"routes": {"c": {"strategy": "chain", "steps": [
            {"name": "a", "target": "nosuchmodel", "prompt": "{input}"}]}}})
    assert "routes.c" in str(step.value) and "nosuchmodel" in str(step.value)
    with pytest.raises(ModelNotFoundError):
        Switch({}).model("nosuch/model")


def test_request_helpers() -> None:
    request = Request((Message.system("s"), Message.user("a"), Message.assistant("b"),
                       Message.user("c")))
    assert request.last_user_text == "c"
    assert not request.has_images
    assert request.with_settings(max_tokens=3).settings.max_tokens == 3
    assert request.settings.max_tokens is None


def test_unknown_strategy_option_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:  # at load time, not on first use
        Switch({"routes": {"careful": {"strategy": "cascade", "targets": ["a", "b"],
                                       "checkss": ["heuristics"]}}},
               models={"a": FakeModel(name="a"), "b": FakeModel(name="b")})
    message = str(caught.value)
    assert "routes.careful" in message and "'checkss' (did you mean 'checks'?)" in message


async def test_azure_target_without_endpoint_fails_only_when_called() -> None:
    from llmswitch.errors import LLMSwitchError

    switch = Switch({"routes": {"r": {"strategy": "fallback", "targets": ["azure/gpt-4o"]}}},
                    models={"other": FakeModel(name="other")}, observers=[])
    assert (await switch.complete("other", "hi")).text == "ok"  # the rest still works
    with pytest.raises(LLMSwitchError) as caught:
        await switch.complete("r", "hi")
    assert "AZURE_OPENAI_ENDPOINT" in str(caught.value)


def test_unquoted_yaml_date_for_api_version() -> None:
    import datetime

    from llmswitch.config import config_from_dict

    version = datetime.date(2024, 10, 21)
    config = config_from_dict({"providers": {"azure": {"api_version": version}}})
    assert config.providers["azure"].api_version == "2024-10-21"
