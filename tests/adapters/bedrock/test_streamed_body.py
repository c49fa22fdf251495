"""A Converse (non-streaming) request answered with a ConverseStream event stream (a server or
replay that streams regardless): the frames are read whole into one reply."""

from __future__ import annotations

import json

from llmswitch.adapters.base import Target
from llmswitch.adapters.bedrock import BedrockAdapter
from tests.support.fixtures import body_bytes, load

ADAPTER = BedrockAdapter()
TARGET = Target("bedrock", "us.amazon.nova-micro-v1:0")


def test_event_stream_body_to_a_converse_request() -> None:
    fixture = load("bedrock/converse_stream_tool_use")
    reply = ADAPTER.parse(body_bytes(fixture), TARGET)
    frames = fixture["response"]["eventstream_decoded"]
    metadata = next(f["payload"] for f in frames if f["headers"][":event-type"] == "metadata")
    assert reply.finish_reason == "tool_calls"
    assert [c.name for c in reply.tool_calls] == ["get_temperature"]
    assert json.loads(reply.tool_calls[0].arguments)
    assert reply.usage.input_tokens == metadata["usage"]["inputTokens"]
    assert reply.usage.output_tokens == metadata["usage"]["outputTokens"]


def test_json_body_still_parsed_as_converse() -> None:
    reply = ADAPTER.parse(b'  ' + body_bytes(load("bedrock/converse_max_tokens")), TARGET)
    assert reply.finish_reason == "length" and reply.text == "The capital of France is"
