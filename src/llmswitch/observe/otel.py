"""Export llmswitch traces through the OpenTelemetry SDK (extra `otel`).

Each finished request's `Span` tree becomes OpenTelemetry spans with the same names, times and
`gen_ai.*` / `llmswitch.*` attributes; attempts are CLIENT spans, decisions INTERNAL ones.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from llmswitch.errors import LLMSwitchError
from llmswitch.observe.config import OtelConfig
from llmswitch.observe.records import content_attributes
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import Completion

EXTRA_HINT = "pip install 'llmswitch[otel]'"


def _sdk() -> Any:
    try:
        from opentelemetry.sdk import trace as sdk_trace
    except ImportError:
        from llmswitch.errors import ConfigError

        raise ConfigError("OpenTelemetry export needs the OpenTelemetry SDK",
                          hint=EXTRA_HINT) from None
    return sdk_trace


def exporter_for(config: OtelConfig) -> Any:
    """The SDK span exporter a config names."""
    _sdk()
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)  # stdout belongs to the command's output
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        from llmswitch.errors import ConfigError

        raise ConfigError("OTLP export needs opentelemetry-exporter-otlp-proto-http",
                          hint=EXTRA_HINT + " opentelemetry-exporter-otlp-proto-http") from None
    return OTLPSpanExporter(endpoint=config.endpoint, headers=dict(config.headers))


def attribute_value(value: Any) -> Any:
    """An OpenTelemetry-legal attribute value (primitives, lists of str; JSON otherwise)."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, default=str, ensure_ascii=False)


class OtelObserver:
    """An `Observer` that exports every request's trace tree."""

    def __init__(self, exporter: Any, service_name: str = "llmswitch", content: bool = False,
                 batch: bool = True) -> None:
        sdk = _sdk()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self.provider = sdk.TracerProvider(
            resource=Resource.create({"service.name": service_name}))
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("llmswitch")
        self.content = content

    @classmethod
    def from_config(cls, config: OtelConfig, content: bool = False) -> OtelObserver:
        """Built from `observe.otel`."""
        return cls(exporter_for(config), config.service_name, content)

    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """Export the trace of an answered request."""
        if completion.trace is not None:
            extra = content_attributes(request, completion.text) if self.content else {}
            self.export(completion.trace, extra)

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """Export the trace of a failed request."""
        trace = error.trace if isinstance(error, LLMSwitchError) else None
        if trace is not None:
            self.export(trace, content_attributes(request, None) if self.content else {})

    def export(self, span: Span, extra: dict[str, Any] | None = None, parent: Any = None) -> None:
        """Emit `span` and its children as OpenTelemetry spans."""
        from opentelemetry import trace as api
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start = int(span.start_time * 1e9)
        attrs = {k: attribute_value(v) for k, v in {**span.attributes, **(extra or {})}.items()
                 if v is not None}
        kind = SpanKind.CLIENT if span.kind == "attempt" else SpanKind.INTERNAL
        otel_span = self.tracer.start_span(span.name, context=parent, kind=kind,
                                           attributes=attrs, start_time=start)
        if span.status == "error":
            error = span.error or {}
            otel_span.set_attribute("error.type", str(error.get("type", "error")))
            otel_span.set_status(Status(StatusCode.ERROR, str(error.get("message", ""))))
        context = api.set_span_in_context(otel_span)
        for child in span.children:
            self.export(child, None, context)
        otel_span.end(end_time=start + int(span.duration_ms * 1e6))

    def close(self) -> None:
        """Flush and shut the exporter down."""
        self.provider.shutdown()

    async def aclose(self) -> None:
        """`close` off the event loop."""
        await asyncio.to_thread(self.close)
