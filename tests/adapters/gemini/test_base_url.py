"""A base URL that already carries the API version (`…/v1beta`) is not given it twice."""

from __future__ import annotations

import pytest

from llmswitch.adapters.base import Target
from llmswitch.adapters.gemini import GeminiAdapter
from llmswitch.adapters.gemini.request import model_path
from llmswitch.messages import Message
from llmswitch.request import Request


@pytest.mark.parametrize(("base", "path"), [
    ("", "/v1beta/models/gemini-2.5-flash:generateContent"),
    ("https://generativelanguage.googleapis.com",
     "/v1beta/models/gemini-2.5-flash:generateContent"),
    ("http://127.0.0.1:8080/v1beta", "/models/gemini-2.5-flash:generateContent"),
    ("http://127.0.0.1:8080/v1beta/", "/models/gemini-2.5-flash:generateContent"),
    ("http://proxy/v1", "/models/gemini-2.5-flash:generateContent"),
])
def test_model_path_and_base_url(base: str, path: str) -> None:
    assert model_path("models/gemini-2.5-flash", False, base) == path


def test_build_uses_the_target_base_url() -> None:
    target = Target("gemini", "gemini-2.5-flash", base_url="http://127.0.0.1:1/v1beta")
    call = GeminiAdapter().build(Request((Message.user("hi"),)), target, stream=True)
    assert call.path == "/models/gemini-2.5-flash:streamGenerateContent"
    assert call.query == {"alt": "sse"}
