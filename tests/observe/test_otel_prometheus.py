"""The GenAI metrics are Prometheus-compatible: the OpenTelemetry Prometheus exporter serves
them (names, units and labels as a scrape shows them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.exporter.prometheus",
                    reason="opentelemetry-exporter-prometheus not installed (dev extra)")

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, generate_latest

from llmswitch import OverloadedError, Switch
from llmswitch.observe.otel import OtelObserver
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


async def test_the_prometheus_exporter_serves_the_genai_metrics() -> None:
    reader = PrometheusMetricReader()  # registers itself with prometheus_client's registry
    meters = MeterProvider(metric_readers=[reader])
    try:
        models = {"a": FakeModel("a", [OverloadedError("busy")], provider="bedrock"),
                  "b": FakeModel("b", ["hello there friend"], provider="openai")}
        switch = Switch({"observe": {"ledger": False},
                         "routes": {"r": {"strategy": "fallback", "targets": ["a", "b"],
                                          "retries": 0}}},
                        models=models, services={SERVICE_KEY: Resilience(clock=FakeClock())},
                        observers=[OtelObserver(meter_provider=meters)])
        await switch.complete("r", "a prompt of some length")
        await switch.aclose()
        scrape = generate_latest(REGISTRY).decode()
    finally:
        meters.shutdown()  # also unregisters the reader
    lines = scrape.splitlines()
    assert "# TYPE gen_ai_client_operation_duration_seconds histogram" in lines
    assert "# TYPE gen_ai_client_token_usage histogram" in lines
    counts = [line for line in lines
              if line.startswith("gen_ai_client_operation_duration_seconds_count{")]
    assert len(counts) == 2
    failed = next(line for line in counts if 'error_type="overloaded"' in line)
    assert 'gen_ai_provider_name="aws.bedrock"' in failed and failed.endswith(" 1.0")
    served = next(line for line in counts if 'error_type=""' in line)  # Prometheus fills gaps
    assert 'gen_ai_provider_name="openai"' in served and 'gen_ai_request_model="b"' in served
    tokens = {line.split("{", 1)[1] for line in lines
              if line.startswith("gen_ai_client_token_usage_count{")}
    assert len(tokens) == 2
    assert any('gen_ai_token_type="input"' in t for t in tokens)
    assert any('gen_ai_token_type="output"' in t for t in tokens)
    assert 'le="0.01"' in scrape and 'le="81.92"' in scrape  # the conventions' buckets


def test_the_documented_example_runs() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "otel_prometheus.py"
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          timeout=120, check=False,
                          env={**os.environ, "LLMSWITCH_LEDGER": "off"})
    assert done.returncode == 0, done.stderr
    assert "'chat claude-haiku' kind=CLIENT" in done.stdout
    assert "gen_ai.provider.name = 'aws.bedrock'" in done.stdout
    assert 'gen_ai_token_type="output"' in done.stdout
