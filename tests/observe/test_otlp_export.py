"""Real OTLP/HTTP export: spans reach a collector endpoint (a loopback server here)."""

from __future__ import annotations

import pytest
from tests.support.replay import Scripted, serving

from llmswitch import Switch
from llmswitch.testing import FakeModel

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                    reason="the otel extra's OTLP exporter is not installed")


async def test_spans_are_posted_to_the_otlp_endpoint() -> None:
    collector = Scripted(200, {"content-type": "application/x-protobuf"}, b"")
    with serving(collector) as server:
        config = {"observe": {"ledger": False,
                              "otel": {"endpoint": server.url + "/v1/traces",
                                       "service_name": "otlp-test"}}}
        switch = Switch(config, models={"m": FakeModel(name="m", script=["hello"])})
        done = await switch.complete("m", "ZEBRA-PROMPT-7")
        await switch.aclose()  # flushes the batch processor
    assert done.text == "hello"
    posts = [r for r in server.received if r.path == "/v1/traces"]
    assert posts, "no OTLP request reached the collector"
    assert posts[0].headers["content-type"] == "application/x-protobuf"
    body = b"".join(r.body for r in posts)
    assert b"otlp-test" in body  # the service name travels in the resource
    assert b"gen_ai.request.model" in body
    assert b"ZEBRA-PROMPT-7" not in body  # prompt content stays out unless opted in
