"""A base URL that already ends in `/v1` gets `/messages`, not `/v1/v1/messages`."""

from __future__ import annotations

import pytest

from llmswitch.adapters.anthropic import AnthropicAdapter
from llmswitch.adapters.base import Target
from llmswitch.messages import Message
from llmswitch.request import Request


@pytest.mark.parametrize(("base", "path"), [
    ("https://api.anthropic.com", "/v1/messages"),
    ("http://127.0.0.1:8080/", "/v1/messages"),
    ("http://127.0.0.1:8080/v1", "/messages"),
    ("http://127.0.0.1:8080/v1/", "/messages"),
])
def test_messages_path(base: str, path: str) -> None:
    target = Target("anthropic", "claude-haiku-4-5", base_url=base)
    assert AnthropicAdapter().build(Request((Message.user("hi"),)), target, False).path == path
