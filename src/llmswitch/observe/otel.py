"""Export llmswitch traces and metrics through OpenTelemetry.

By default through the application's global providers (`opentelemetry.trace.get_tracer`,
`opentelemetry.metrics.get_meter`), so its exporters, sampler and resource apply and our spans
nest under its current span. A private SDK `TracerProvider` is built only when the config names
an exporter of its own (`observe.otel: {endpoint: ...}` or `{exporter: console}`).

Nothing is imported until a call ends, and then only if the application can have set a global
provider: the OpenTelemetry API is already imported (setting a provider imports it) or its
`OTEL_PYTHON_*_PROVIDER` variable is set. Without that, a call costs one `sys.modules` lookup.
Names follow the GenAI semantic conventions at export (`genai.py`); the trace carried by a
`Completion` keeps llmswitch's own names. Each request's tree becomes spans with the same
names and times: attempts are `CLIENT` spans, decisions `INTERNAL` ones, and a span that did not
end `ok` has status `ERROR` and `error.type`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from llmswitch.errors import LLMSwitchError
from llmswitch.observe.config import OtelConfig
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import Completion

EXTRA_HINT = "pip install 'llmswitch[otel]'"
TRACER_ENV = "OTEL_PYTHON_TRACER_PROVIDER"
METER_ENV = "OTEL_PYTHON_METER_PROVIDER"
TRACE_ID = "llmswitch.trace_id"
"""Root span attribute: the call's id in the ledger and trace store (`llmswitch traces ID`)."""

logger = logging.getLogger(__name__)


class CallOutcome(Protocol):
    """What `OtelObserver.on_end` reads from a `llmswitch.calls.CallRecord`."""

    request: Request
    trace_id: str
    attempts: list[Span]
    completion: Completion | None

    @property
    def trace(self) -> Span:
        """The call's trace tree."""


def otel_in_use(module: str, env_var: str) -> bool:
    """Whether the application may have set a global provider: the API module is imported or
    the API's environment variable names a provider. Checked instead of importing the API."""
    return module in sys.modules or env_var in os.environ


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


def private_provider(exporter: Any, service_name: str, batch: bool = True) -> Any:
    """An SDK TracerProvider of our own, exporting to `exporter` (the global one is untouched)."""
    sdk = _sdk()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = sdk.TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch
                                else SimpleSpanProcessor(exporter))
    return provider


def _log_missing(exc: ImportError) -> None:
    """A missing part matters only if the application set a provider (a warning then)."""
    try:
        from opentelemetry import trace as api

        unset = isinstance(api.get_tracer_provider(), api.ProxyTracerProvider)
    except ImportError:
        unset = True
    logger.log(logging.DEBUG if unset else logging.WARNING,
               "llmswitch: OpenTelemetry export is off: %s (%s)", exc, EXTRA_HINT)


class OtelObserver:
    """An `Observer` that exports every call's trace tree as spans and records GenAI metrics.

    `OtelObserver()` uses the global providers; `OtelObserver(exporter)` a private
    TracerProvider exporting to `exporter`; `tracer_provider=`/`meter_provider=` name the
    application's own. `content=True` adds the messages (`gen_ai.input.messages`, ...).
    """

    def __init__(self, exporter: Any = None, service_name: str = "llmswitch",
                 content: bool = False, batch: bool = True, *, tracer_provider: Any = None,
                 meter_provider: Any = None, metrics: bool = True) -> None:
        self.content = content
        self.provider: Any = None
        """The private TracerProvider this observer owns (shut down by `close`), if any."""
        if exporter is not None:
            self.provider = tracer_provider = private_provider(exporter, service_name, batch)
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer: Any = None
        self._metrics: Any = None
        self._want_metrics = metrics
        self._failed = False

    @classmethod
    def from_config(cls, config: OtelConfig, content: bool = False) -> OtelObserver:
        """Built from `observe.otel`: the global providers, or a private exporter."""
        if config.exporter == "global":
            return cls(content=content)
        return cls(exporter_for(config), config.service_name, content)

    def on_end(self, record: CallOutcome) -> None:
        """Export a finished call (any outcome), with attempts its trace tree does not hold."""
        trace = record.trace
        in_tree = trace.attempts()
        seen = {id(s) for s in in_tree}
        orphans = [s for s in record.attempts if id(s) not in seen]
        self._emit(trace, [*in_tree, *orphans], orphans, record.request, record.completion,
                   record.trace_id)

    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """Export the trace of an answered request."""
        if completion.trace is not None:
            self._emit(completion.trace, completion.trace.attempts(), (), request, completion,
                       completion.trace_id)

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """Export the trace of a failed request."""
        trace = error.trace if isinstance(error, LLMSwitchError) else None
        if trace is not None:
            self._emit(trace, trace.attempts(), (), request, None,
                       getattr(error, "trace_id", None))

    def _emit(self, trace: Span, attempts: Sequence[Span], orphans: Sequence[Span],
              request: Request, completion: Completion | None, trace_id: str | None) -> None:
        if self._failed:
            return
        try:
            tracer = self._bound_tracer()
            if tracer is not None:
                extras: dict[int, dict[str, Any]] = {}
                if trace_id:
                    extras[id(trace)] = {TRACE_ID: trace_id}
                if self.content:
                    self._add_content(extras, trace, request, completion)
                self._export(tracer, trace, None, extras, orphans)
            metrics = self._bound_metrics()
            if metrics is not None:
                metrics.record(attempts)
        except ImportError as exc:
            self._failed = True
            _log_missing(exc)
        except Exception:  # never fail the caller's request over telemetry
            self._failed = True
            logger.exception("llmswitch: OpenTelemetry export failed and is now off")

    def _bound_tracer(self) -> Any:
        if self._tracer is None:
            if self._tracer_provider is None and not otel_in_use("opentelemetry.trace",
                                                                  TRACER_ENV):
                return None
            from opentelemetry import trace as api

            from llmswitch import __version__
            from llmswitch.observe import genai  # noqa: F401 - ImportError here if missing

            self._tracer = api.get_tracer("llmswitch", __version__,
                                          tracer_provider=self._tracer_provider)
        return self._tracer

    def _bound_metrics(self) -> Any:
        if self._metrics is None:
            if not self._want_metrics or (self._meter_provider is None and not otel_in_use(
                    "opentelemetry.metrics", METER_ENV)):
                return None
            from llmswitch.observe.metrics import GenAiMetrics

            metrics = GenAiMetrics(self._meter_provider)
            metrics.bind()
            self._metrics = metrics
        return self._metrics

    @staticmethod
    def _add_content(extras: dict[int, dict[str, Any]], trace: Span, request: Request,
                     completion: Completion | None) -> None:
        """Messages go on the attempt that answered (else the last attempt, else the root)."""
        from llmswitch.observe.genai import content_attributes

        attempts = trace.attempts()
        target = next((s for s in reversed(attempts) if s.status == "ok"),
                      attempts[-1] if attempts else trace)
        attrs = (content_attributes(request.messages, completion.text, completion.tool_calls,
                                    completion.finish_reason)
                 if completion is not None else content_attributes(request.messages))
        extras.setdefault(id(target), {}).update(attrs)

    def _export(self, tracer: Any, span: Span, parent: Any, extras: dict[int, dict[str, Any]],
                orphans: Sequence[Span] = ()) -> None:
        """Emit `span` and its children (plus `orphans`, at the root) as OpenTelemetry spans."""
        from opentelemetry import trace as api
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from llmswitch.observe.genai import span_attributes

        attrs = span_attributes(span)
        attrs.update(extras.get(id(span)) or {})
        start = int(span.start_time * 1e9)
        kind = SpanKind.CLIENT if span.kind == "attempt" else SpanKind.INTERNAL
        otel_span = tracer.start_span(span.name, context=parent, kind=kind, attributes=attrs,
                                      start_time=start)
        if not otel_span.is_recording():  # sampled out, or no SDK behind the API
            return
        if span.status != "ok":
            otel_span.set_status(Status(StatusCode.ERROR,
                                        str((span.error or {}).get("message", span.status))))
        context = api.set_span_in_context(otel_span, parent)
        for child in [*span.children, *orphans]:
            self._export(tracer, child, context, extras)
        otel_span.end(end_time=start + int(span.duration_ms * 1e6))

    def close(self) -> None:
        """Flush and shut down the private provider (the application's are left alone)."""
        if self.provider is not None:
            self.provider.shutdown()

    async def aclose(self) -> None:
        """`close` off the event loop."""
        if self.provider is not None:
            await asyncio.to_thread(self.close)
