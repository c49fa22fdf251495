"""OpenTelemetry export of a fallback trace tree (in-memory exporter from the SDK)."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk not installed (extra otel)")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llmswitch import OverloadedError, Switch
from llmswitch.observe.otel import OtelObserver
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


async def test_trace_tree_is_exported_with_genai_attributes() -> None:
    exporter = InMemorySpanExporter()
    observer = OtelObserver(exporter, batch=False)
    models = {"a": FakeModel("a", [OverloadedError("busy")], provider="p"),
              "b": FakeModel("b", ["hi"], provider="q")}
    switch = Switch({"routes": {"r": {"strategy": "fallback", "targets": ["a", "b"],
                                      "retries": 0}}},
                    models=models, observers=[observer],
                    services={SERVICE_KEY: Resilience(clock=FakeClock())})
    await switch.complete("r", "secret prompt")
    await switch.aclose()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"fallback r", "chat a", "chat b"}
    root, failed, served = spans["fallback r"], spans["chat a"], spans["chat b"]
    assert root.kind == SpanKind.INTERNAL and served.kind == SpanKind.CLIENT
    assert failed.parent is not None and failed.parent.span_id == root.context.span_id
    assert served.parent is not None and served.parent.span_id == root.context.span_id
    assert root.attributes is not None and root.attributes["llmswitch.chosen"] == "b"
    assert tuple(root.attributes["llmswitch.candidates"]) == ("a", "b")
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["error.type"] == "overloaded"
    assert served.attributes is not None and served.attributes["gen_ai.provider.name"] == "q"
    assert "secret" not in str([dict(s.attributes or {}) for s in spans.values()])
