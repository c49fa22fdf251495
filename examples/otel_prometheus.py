"""An application's own OpenTelemetry set-up, which llmswitch's spans and metrics join.

Runs offline (fake models stand in for the providers): a fallback whose first model is
overloaded, then prints the spans llmswitch exported and the Prometheus scrape of its metrics.
Needs `pip install 'llmswitch[otel]' opentelemetry-exporter-prometheus`.

    python examples/otel_prometheus.py
"""

from __future__ import annotations

import asyncio

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY, generate_latest

from llmswitch import OverloadedError, Switch
from llmswitch.testing import FakeModel

# The application's set-up, done once at start-up (here: spans kept in memory; in production
# a BatchSpanProcessor(OTLPSpanExporter()) and `prometheus_client.start_http_server(9464)`).
resource = Resource.create({"service.name": "my-app"})
spans = InMemorySpanExporter()
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(MeterProvider(resource=resource,
                                         metric_readers=[PrometheusMetricReader()]))


async def main() -> None:
    config = {"observe": {"ledger": False},
              "routes": {"answer": {"strategy": "fallback", "retries": 0,
                                    "targets": ["claude-haiku", "gpt-4o-mini"]}}}
    models = {"claude-haiku": FakeModel("claude-haiku", [OverloadedError("busy")],
                                        provider="bedrock"),
              "gpt-4o-mini": FakeModel("gpt-4o-mini", ["Hello! How can I help?"],
                                       provider="openai")}
    async with Switch(config, models=models) as switch:
        with trace.get_tracer("my-app").start_as_current_span("handle request"):
            await switch.complete("answer", "Say hello")
    for span in spans.get_finished_spans():
        parent = span.parent.span_id if span.parent else None
        print(f"{span.name!r} kind={span.kind.name} parent={parent and f'{parent:016x}'} "
              f"status={span.status.status_code.name}")
        for key, value in (span.attributes or {}).items():
            print(f"    {key} = {value!r}")
    print()
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith("gen_ai_") and ("_count" in line or "_sum" in line):
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
