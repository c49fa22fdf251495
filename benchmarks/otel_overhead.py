"""CPU cost of OpenTelemetry export per call, on the request path (the observer's work).

The observer runs when a call ends, in the caller's task, so its cost adds to every call
(llmswitch's whole budget is ~150 µs CPU per call). Measured for a one-attempt call and a
two-attempt fallback, in the situations an application can be in, in this order in one process:

1. no OpenTelemetry imported: the default for an application without it;
2. the API imported, no provider set: OpenTelemetry's no-op;
3. a metrics-only SDK (a MeterProvider with a reader, as for a Prometheus scrape);
4. the full SDK: TracerProvider with a BatchSpanProcessor (exporter dropping spans) + metrics.

    python benchmarks/otel_overhead.py  # a table; writes benchmarks/results/otel_overhead.json
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from llmswitch.messages import Message
from llmswitch.observe.otel import OtelObserver
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import Completion, Usage

REPEATS = 5
CALLS = {"no OpenTelemetry imported": 50_000, "API only (no-op)": 20_000,
         "SDK metrics only": 10_000, "SDK traces + metrics": 5_000}


def attempt(model: str, provider: str, ok: bool = True) -> Span:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
        "gen_ai.request.model": model, "gen_ai.request.max_tokens": 50,
        "llmswitch.attempt_id": "0123456789abcdef0123456789abcdef-1",
    }
    span = Span(f"chat {model}", "attempt", attrs, duration_ms=412.0)
    if ok:
        attrs.update({"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 48,
                      "gen_ai.usage.cached_input_tokens": 64, "gen_ai.usage.cache_write_tokens": 0,
                      "gen_ai.usage.reasoning_tokens": 0, "llmswitch.cost_usd": 4.2e-05,
                      "gen_ai.response.finish_reasons": ["stop"],
                      "gen_ai.response.model": model + "-2024-07-18",
                      "llmswitch.latency_ms": 412.0, "llmswitch.ttft_ms": 180.0})
    else:
        attrs.update({"error.type": "overloaded", "http.response.status_code": 503})
        span.status, span.error = "error", {"type": "overloaded", "message": "busy"}
    return span


def completion(trace: Span) -> Completion:
    return Completion("Hello! How can I help?", "stop", Usage(120, 48, 64), 4.2e-05, "openai",
                      "gpt-4o-mini", trace=trace, trace_id="0123456789abcdef0123456789abcdef")


def calls() -> dict[str, Completion]:
    single = attempt("gpt-4o-mini", "openai")
    root = Span("fallback answer", "strategy", {
        "llmswitch.strategy": "fallback", "llmswitch.route": "answer",
        "llmswitch.candidates": ["claude-haiku", "gpt-4o-mini"],
        "llmswitch.chosen": "gpt-4o-mini", "llmswitch.attempts": 2},
        [attempt("claude-haiku", "anthropic", ok=False), attempt("gpt-4o-mini", "openai")],
        duration_ms=900.0)
    return {"1 attempt": completion(single), "fallback, 2 attempts": completion(root)}


def cpu_us(observer: OtelObserver, done: Completion, n: int) -> float:
    """Best of REPEATS runs: CPU µs per call of `on_completion`."""
    request = Request((Message.user("Say hello"),))
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(n):
            observer.on_completion("answer", request, done)
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def install(stage: str) -> Any:
    """Set up the process for `stage`; returns what must be shut down."""
    if stage == "API only (no-op)":
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401
    if stage == "SDK metrics only":
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    if stage == "SDK traces + metrics":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

        class Drop(SpanExporter):
            def export(self, spans: Any) -> Any:
                from opentelemetry.sdk.trace.export import SpanExportResult

                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=100_000))
        trace.set_tracer_provider(provider)
        return provider
    return None


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    for stage, n in CALLS.items():
        provider = install(stage)
        results[stage] = {}
        for shape, done in calls().items():
            observer = OtelObserver()
            observer.on_completion("answer", Request((Message.user("x"),)), done)  # bind once
            results[stage][shape] = round(cpu_us(observer, done, n), 2)
        if stage == "no OpenTelemetry imported":
            assert not [m for m in sys.modules if m.startswith("opentelemetry")]
        if provider is not None:
            provider.shutdown()
    shapes = list(calls())
    print(f"{'situation':28} " + "  ".join(f"{s:>22}" for s in shapes))
    for stage, row in results.items():
        print(f"{stage:28} " + "  ".join(f"{row[s]:>19.2f} µs" for s in shapes))
    out = {"what": "CPU µs per call of OtelObserver.on_completion (best of 5 runs)",
           "python": platform.python_version(), "machine": platform.machine(),
           "results": results}
    path = Path(__file__).parent / "results" / "otel_overhead.json"
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
