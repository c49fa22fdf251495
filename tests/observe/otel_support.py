"""OpenTelemetry's global providers for tests.

`set_tracer_provider` / `set_meter_provider` work once per process, so the globals are set once
to switchable providers that forward to whatever a test installs (`capture()`), and to no-op
providers otherwise: every other test in the session sees OpenTelemetry unconfigured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.metrics import Histogram, Meter, MeterProvider, NoOpMeter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import NoOpTracer, NoOpTracerProvider, Tracer, TracerProvider


class _Tracer(NoOpTracer):
    def __init__(self, owner: SwitchableTracerProvider, args: tuple[Any, ...]) -> None:
        self._owner, self._args = owner, args

    def _real(self) -> Tracer:
        return self._owner.target.get_tracer(*self._args)

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._real().start_span(*args, **kwargs)

    @contextlib.contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with self._real().start_as_current_span(*args, **kwargs) as span:
            yield span


class SwitchableTracerProvider(TracerProvider):
    """A TracerProvider whose tracers forward to `target` at each call."""

    def __init__(self) -> None:
        self.target: TracerProvider = NoOpTracerProvider()

    def get_tracer(self, instrumenting_module_name: str,
                   instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: Any = None) -> Tracer:
        return _Tracer(self, (instrumenting_module_name, instrumenting_library_version,
                              schema_url, attributes))


class _Histogram(Histogram):
    def __init__(self, meter: _Meter, *args: Any, **kwargs: Any) -> None:
        self._meter, self._args, self._kwargs = meter, args, kwargs

    def record(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
        real = self._meter.owner.target.get_meter(*self._meter.args)
        real.create_histogram(*self._args, **self._kwargs).record(amount, attributes, context)


class _Meter(NoOpMeter):
    def __init__(self, owner: SwitchableMeterProvider, args: tuple[Any, ...]) -> None:
        super().__init__(args[0])
        self.owner, self.args = owner, args

    def create_histogram(self, *args: Any, **kwargs: Any) -> Histogram:
        return _Histogram(self, *args, **kwargs)


class SwitchableMeterProvider(MeterProvider):
    """A MeterProvider whose histograms forward to `target` at each `record`."""

    def __init__(self) -> None:
        self.target: MeterProvider = NoOpMeterProvider()

    def get_meter(self, name: str, version: str | None = None, schema_url: str | None = None,
                  attributes: Any = None) -> Meter:
        return _Meter(self, (name, version, schema_url, attributes))


_TRACERS = SwitchableTracerProvider()
_METERS = SwitchableMeterProvider()


def install() -> tuple[SwitchableTracerProvider, SwitchableMeterProvider]:
    """Make the switchable providers global (once per process)."""
    if trace.get_tracer_provider() is not _TRACERS:
        trace.set_tracer_provider(_TRACERS)
    if metrics.get_meter_provider() is not _METERS:
        metrics.set_meter_provider(_METERS)
    if trace.get_tracer_provider() is not _TRACERS or metrics.get_meter_provider() is not _METERS:
        pytest.skip("another global OpenTelemetry provider was set earlier in this process")
    return _TRACERS, _METERS


@dataclass
class Capture:
    """What the global providers received during one test."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> dict[str, ReadableSpan]:
        """Finished spans by name (names are unique in these tests)."""
        return {s.name: s for s in self.exporter.get_finished_spans()}

    def points(self, name: str) -> list[HistogramDataPoint]:
        """Every data point of metric `name`."""
        data = self.reader.get_metrics_data()
        out: list[HistogramDataPoint] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)  # type: ignore[arg-type]
        return out


@contextlib.contextmanager
def capture(sampler: Sampler | None = None) -> Iterator[Capture]:
    """SDK providers with in-memory exporters behind the globals for the `with` block."""
    tracers, meters = install()
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = (SdkTracerProvider(sampler=sampler) if sampler is not None
                       else SdkTracerProvider())
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = SdkMeterProvider(metric_readers=[reader])
    tracers.target, meters.target = tracer_provider, meter_provider
    try:
        yield Capture(exporter, reader)
    finally:
        tracers.target, meters.target = NoOpTracerProvider(), NoOpMeterProvider()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as a plain dict (sequences as tuples)."""
    return {k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
            for k, v in (span.attributes or {}).items()}
