"""OpenTelemetry export through the application's global providers: spans and GenAI metrics
under the semantic conventions' names, for a completion, an error, a fallback and a stream."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk not installed (extra otel)")

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.trace import SpanKind, StatusCode
from tests.observe.otel_support import Capture, attrs, capture

from llmswitch import OverloadedError, Switch
from llmswitch.models import collect
from llmswitch.observe.otel import OtelObserver
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel

DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"
SEMCONV_NAMES = {v for k, v in vars(gen_ai_attributes).items() if k.startswith("GEN_AI_")}
USAGE = {"input_tokens": 120, "cache_read_input_tokens": 2000,
         "cache_creation_input_tokens": 300, "output_tokens": 7}


@pytest.fixture
def otel() -> Iterator[Capture]:
    with capture() as captured:
        yield captured


def anthropic_switch(handler: Any, **kw: Any) -> Switch:
    return Switch({"observe": {"ledger": False}},
                  transports={"anthropic": lambda: httpx.MockTransport(handler)},
                  env={"ANTHROPIC_API_KEY": "k"}, **kw)


def sse(*events: Mapping[str, object]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def answer(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(
            {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant",
                "model": "claude-haiku-4-5-20251001", "content": [], "stop_reason": None,
                "usage": {**USAGE, "output_tokens": 1}}},
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "Hello"}},
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": " there"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": 7}},
            {"type": "message_stop"}))
    return httpx.Response(200, json={
        "id": "msg_1", "type": "message", "role": "assistant",
        "model": "claude-haiku-4-5-20251001", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "Hello there"}], "usage": USAGE})


def points(otel: Capture, name: str) -> dict[tuple[tuple[str, Any], ...], tuple[int, float]]:
    """A histogram's points as {sorted attributes: (count, sum)}."""
    return {tuple(sorted((p.attributes or {}).items())): (p.count, p.sum)
            for p in otel.points(name)}


def check_genai_names(attributes: Mapping[str, Any]) -> None:
    """Every gen_ai.* attribute we export is a name of the semantic conventions."""
    unknown = {k for k in attributes if k.startswith("gen_ai.")} - SEMCONV_NAMES
    assert not unknown, f"not semantic-convention names: {unknown}"


async def test_a_completion_is_exported_with_genai_names_and_metrics(otel: Capture) -> None:
    async with anthropic_switch(answer) as switch:
        done = await switch.complete("anthropic/claude-haiku-4-5", "secret prompt")
    spans = otel.spans()
    assert set(spans) == {"chat claude-haiku-4-5"}
    span = spans["chat claude-haiku-4-5"]
    a = attrs(span)
    assert span.kind == SpanKind.CLIENT and span.status.status_code == StatusCode.UNSET
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude-haiku-4-5"
    assert a["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
    assert a["gen_ai.usage.input_tokens"] == 2420  # includes the cached and cache-write tokens
    assert a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 300
    assert "gen_ai.usage.reasoning.output_tokens" not in a  # zero: not reported
    assert a["llmswitch.cost_usd"] == done.cost_usd
    if done.trace_id:
        assert a["llmswitch.trace_id"] == done.trace_id
    check_genai_names(a)
    assert "secret" not in json.dumps(a)  # no content unless opted in

    common = (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "anthropic"),
              ("gen_ai.request.model", "claude-haiku-4-5"),
              ("gen_ai.response.model", "claude-haiku-4-5-20251001"))
    durations = points(otel, DURATION)
    assert list(durations) == [common]
    count, seconds = durations[common]
    assert count == 1 and seconds == pytest.approx(span_seconds(span), rel=0.01, abs=1e-6)
    assert points(otel, TOKENS) == {
        tuple(sorted((*common, ("gen_ai.token.type", "input")))): (1, 2420),
        tuple(sorted((*common, ("gen_ai.token.type", "output")))): (1, 7)}


def span_seconds(span: Any) -> float:
    return float(span.end_time - span.start_time) / 1e9


async def test_an_error_is_an_error_span_and_a_failed_operation(otel: Capture) -> None:
    models = {"m": FakeModel("m", [OverloadedError("busy")], provider="openai")}
    switch = Switch({"observe": {"ledger": False}}, models=models)
    with pytest.raises(OverloadedError):
        await switch.complete("m", "hi")
    await switch.aclose()
    span = otel.spans()["chat m"]
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description and "busy" in span.status.description
    assert attrs(span)["error.type"] == "overloaded"
    assert list(points(otel, DURATION)) == [(
        ("error.type", "overloaded"), ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "m"))]
    assert points(otel, TOKENS) == {}  # no usage reported for the failed attempt


async def test_a_fallback_exports_its_tree_and_one_operation_per_attempt(otel: Capture) -> None:
    models = {"a": FakeModel("a", [OverloadedError("busy")], provider="bedrock"),
              "b": FakeModel("b", ["hi there"], provider="gemini")}
    switch = Switch({"observe": {"ledger": False},
                     "routes": {"r": {"strategy": "fallback", "targets": ["a", "b"],
                                      "retries": 0}}},
                    models=models, services={SERVICE_KEY: Resilience(clock=FakeClock())})
    await switch.complete("r", "secret prompt")
    await switch.aclose()
    spans = otel.spans()
    assert set(spans) == {"fallback r", "chat a", "chat b"}
    root, failed, served = spans["fallback r"], spans["chat a"], spans["chat b"]
    assert root.kind == SpanKind.INTERNAL and served.kind == SpanKind.CLIENT
    assert root.parent is None
    for child in (failed, served):
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
    assert attrs(root)["llmswitch.chosen"] == "b"
    assert attrs(root)["llmswitch.candidates"] == ("a", "b")
    assert failed.status.status_code == StatusCode.ERROR
    assert attrs(failed)["error.type"] == "overloaded"
    assert attrs(failed)["gen_ai.provider.name"] == "aws.bedrock"
    assert attrs(failed)["llmswitch.provider"] == "bedrock"
    assert attrs(failed)["gen_ai.operation.name"] == "chat"  # required, even where unrecorded
    assert attrs(served)["gen_ai.provider.name"] == "gcp.gemini"
    assert "secret" not in str([attrs(s) for s in spans.values()])

    durations = points(otel, DURATION)
    assert sorted(dict(k).get("error.type", "-") for k in durations) == ["-", "overloaded"]
    assert sorted(dict(k)["gen_ai.provider.name"] for k in durations) == ["aws.bedrock",
                                                                         "gcp.gemini"]
    tokens = points(otel, TOKENS)
    assert {dict(k)["gen_ai.provider.name"] for k in tokens} == {"gcp.gemini"}
    assert {dict(k)["gen_ai.token.type"] for k in tokens} == {"input", "output"}


async def test_a_stream_has_time_to_first_chunk_and_its_usage(otel: Capture) -> None:
    async with anthropic_switch(answer) as switch:
        done = await collect(switch.stream("anthropic/claude-haiku-4-5", "hi"))
    assert done.text == "Hello there"
    a = attrs(otel.spans()["chat claude-haiku-4-5"])
    assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(a["llmswitch.ttft_ms"] / 1000)
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 60
    assert a["gen_ai.usage.output_tokens"] == 7
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2000
    check_genai_names(a)
    tokens = {dict(k)["gen_ai.token.type"]: v for k, v in points(otel, TOKENS).items()}
    assert tokens == {"input": (1, 2420), "output": (1, 7)}
    assert [c for c, _ in points(otel, DURATION).values()] == [1]


async def test_messages_are_exported_as_role_and_parts_only_when_asked(otel: Capture) -> None:
    models = {"m": FakeModel("m", ["Paris."], provider="openai")}
    switch = Switch({"observe": {"ledger": False}}, models=models,
                    observers=[OtelObserver(content=True)])
    await switch.complete("m", [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Capital of France?"}])
    await switch.aclose()
    a = attrs(otel.spans()["chat m"])
    assert json.loads(a["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}]
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}],
         "finish_reason": "stop"}]


async def test_the_applications_sampler_applies(otel: Capture) -> None:
    with capture(sampler=ALWAYS_OFF) as sampled_out:
        switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["x"])})
        await switch.complete("m", "hi")
        await switch.aclose()
        assert sampled_out.spans() == {}
        assert len(points(sampled_out, DURATION)) == 1  # metrics are not sampled


async def test_spans_nest_under_the_applications_current_span(otel: Capture) -> None:
    switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["x"])})
    with trace.get_tracer("app").start_as_current_span("handle request") as app_span:
        await switch.complete("m", "hi")
    await switch.aclose()
    ours = otel.spans()["chat m"]
    assert ours.parent is not None and ours.parent.span_id == app_span.get_span_context().span_id
    assert ours.context.trace_id == app_span.get_span_context().trace_id


async def test_a_private_exporter_leaves_the_global_providers_alone(otel: Capture) -> None:
    own = InMemorySpanExporter()
    switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["x"])},
                    observers=[OtelObserver(own, service_name="mine", batch=False)])
    await switch.complete("m", "hi")
    await switch.aclose()
    [span] = own.get_finished_spans()
    assert span.resource.attributes["service.name"] == "mine"
    assert otel.spans() == {}
    assert len(points(otel, DURATION)) == 1  # metrics still go to the application's meter


async def test_a_broken_provider_never_fails_the_request(otel: Capture,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    observer = OtelObserver(tracer_provider=object())  # no get_tracer: export must fail
    switch = Switch({"observe": {"ledger": False}}, models={"m": FakeModel("m", ["x"])},
                    observers=[observer])
    assert (await switch.complete("m", "hi")).text == "x"
    assert (await switch.complete("m", "hi")).text == "x"
    await switch.aclose()
    assert caplog.text.count("OpenTelemetry export failed") == 1


async def test_the_private_provider_from_config_exports_to_the_console(
        otel: Capture, capsys: pytest.CaptureFixture[str]) -> None:
    switch = Switch({"observe": {"ledger": False, "otel": {"exporter": "console"}}},
                    models={"m": FakeModel("m", ["x"])})
    [observer] = switch.observers
    assert isinstance(observer, OtelObserver) and observer.provider is not None
    await switch.complete("m", "hi")
    await switch.aclose()
    assert '"gen_ai.request.model": "m"' in capsys.readouterr().err
    assert otel.spans() == {}


async def test_an_abandoned_stream_is_exported_when_the_switch_reports_every_outcome(
        otel: Capture) -> None:
    pytest.importorskip("llmswitch.calls", reason="Switch does not report every outcome yet")
    async with anthropic_switch(answer) as switch:
        events = switch.stream("anthropic/claude-haiku-4-5", "hi")
        async for _ in events:
            break  # the caller walks away after the first piece
        await events.aclose()  # type: ignore[attr-defined]
    exported = [attrs(s) for s in otel.exporter.get_finished_spans()]
    assert any(a.get("error.type") == "abandoned" for a in exported), exported
    durations = points(otel, DURATION)
    assert [dict(k).get("error.type") for k in durations] == ["abandoned"]
