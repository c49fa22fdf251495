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
import time
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


def otel_in_use(module: str, env_set: bool) -> bool:
    """Whether the application may have set a global provider: the API module is imported or
    the API's environment variable names a provider. Checked instead of importing the API."""
    return env_set or module in sys.modules


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
        self._want_metrics = metrics
        # Set by the environment at start-up, so read once; the modules are checked per call.
        self._env = {TRACER_ENV: TRACER_ENV in os.environ, METER_ENV: METER_ENV in os.environ}
        self._global_only = (tracer_provider is None and meter_provider is None
                             and not any(self._env.values()))
        """Only the application's global providers could be in use: while the OpenTelemetry
        API is not imported, a call has nothing to export (checked before any other work)."""
        self._spans: SpanExport | None = None
        self._metrics: Any = None
        self._failed = False

    @classmethod
    def from_config(cls, config: OtelConfig, content: bool = False) -> OtelObserver:
        """Built from `observe.otel`: the global providers, or a private exporter."""
        if config.exporter == "global":
            return cls(content=content)
        return cls(exporter_for(config), config.service_name, content)

    def on_end(self, record: CallOutcome) -> None:
        """Export a finished call (any outcome), with attempts its trace tree does not hold."""
        if (self._global_only and self._spans is None and self._metrics is None
                and "opentelemetry.trace" not in sys.modules
                and "opentelemetry.metrics" not in sys.modules):
            return  # what `_emit` would find, without a call per request (1.5 µs)
        self._emit(record.trace, record.attempts, record.request, record.completion,
                   record.trace_id)

    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """Export the trace of an answered request."""
        if completion.trace is not None:
            self._emit(completion.trace, (), request, completion,
                       getattr(completion, "trace_id", None))

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """Export the trace of a failed request."""
        trace = error.trace if isinstance(error, LLMSwitchError) else None
        if trace is not None:
            self._emit(trace, (), request, None, getattr(error, "trace_id", None))

    def _emit(self, trace: Span, registered: Sequence[Span], request: Request,
              completion: Completion | None, trace_id: str | None) -> None:
        if self._failed:
            return
        try:
            spans = self._spans or self._bind_spans()
            metrics = self._metrics or self._bind_metrics()
            live = spans if spans is not None and spans.ready() else None
            if live is None and metrics is None:
                return
            in_tree = trace.attempts()
            seen = {id(s) for s in in_tree}
            orphans = [s for s in registered if id(s) not in seen]
            if live is not None:
                extras: dict[int, dict[str, Any]] = {}
                if trace_id:
                    extras[id(trace)] = {TRACE_ID: trace_id}
                if self.content:
                    _add_content(extras, trace, in_tree, request, completion)
                live.export(trace, None, extras, orphans)
            if metrics is not None:
                metrics.record(in_tree)
                metrics.record(orphans)
        except ImportError as exc:
            self._failed = True
            _log_missing(exc)
        except Exception:  # never fail the caller's request over telemetry
            self._failed = True
            logger.exception("llmswitch: OpenTelemetry export failed and is now off")

    def _bind_spans(self) -> SpanExport | None:
        if self._tracer_provider is None and not otel_in_use("opentelemetry.trace",
                                                              self._env[TRACER_ENV]):
            return None
        self._spans = SpanExport(self._tracer_provider)
        return self._spans

    def _bind_metrics(self) -> Any:
        if not self._want_metrics or (self._meter_provider is None and not otel_in_use(
                "opentelemetry.metrics", self._env[METER_ENV])):
            return None
        from llmswitch.observe.metrics import GenAiMetrics

        metrics = GenAiMetrics(self._meter_provider)
        metrics.bind()
        self._metrics = metrics
        return metrics

    def close(self) -> None:
        """Flush and shut down the private provider (the application's are left alone)."""
        if self.provider is not None:
            self.provider.shutdown()

    async def aclose(self) -> None:
        """`close` off the event loop."""
        if self.provider is not None:
            await asyncio.to_thread(self.close)


def _add_content(extras: dict[int, dict[str, Any]], trace: Span, attempts: Sequence[Span],
                 request: Request, completion: Completion | None) -> None:
    """Messages go on the attempt that answered (else the last attempt, else the root)."""
    from llmswitch.observe.genai import content_attributes

    target = next((s for s in reversed(attempts) if s.status == "ok"),
                  attempts[-1] if attempts else trace)
    attrs = (content_attributes(request.messages, completion.text, completion.tool_calls,
                                completion.finish_reason)
             if completion is not None else content_attributes(request.messages))
    extras.setdefault(id(target), {}).update(attrs)


class SpanExport:
    """Turns llmswitch span trees into OpenTelemetry spans through one tracer (bound once)."""

    RECHECK_S = 1.0
    """While the global TracerProvider is still OpenTelemetry's placeholder, look again at
    most this often (asking costs ~2 µs; an application sets its provider at start-up)."""

    def __init__(self, provider: Any = None) -> None:
        """`provider`: an explicit TracerProvider, or `None` for the global one."""
        from opentelemetry import trace as api

        from llmswitch import __version__
        from llmswitch.observe.genai import span_attributes

        self._api = api
        self._attributes = span_attributes
        self._error = api.StatusCode.ERROR
        self.tracer = api.get_tracer("llmswitch", __version__, tracer_provider=provider)
        self._live = provider is not None
        self._recheck = 0.0

    def ready(self) -> bool:
        """Whether a real provider is behind the tracer (with none, skip all the work)."""
        if not self._live:
            now = time.monotonic()
            if now < self._recheck:
                return False
            self._recheck = now + self.RECHECK_S
            self._live = not isinstance(self._api.get_tracer_provider(),
                                        self._api.ProxyTracerProvider)
        return self._live

    def export(self, span: Span, parent: Any, extras: dict[int, dict[str, Any]],
               orphans: Sequence[Span] = ()) -> None:
        """Emit `span` and its children (plus `orphans`, at the root) as OpenTelemetry spans."""
        api = self._api
        attrs = self._attributes(span)
        more = extras.get(id(span))
        if more:
            attrs.update(more)
        start = int(span.start_time * 1e9)
        kind = api.SpanKind.CLIENT if span.kind == "attempt" else api.SpanKind.INTERNAL
        otel_span = self.tracer.start_span(span.name, context=parent, kind=kind,
                                           attributes=attrs, start_time=start)
        if not otel_span.is_recording():  # sampled out, or no SDK behind the API
            return
        if span.status != "ok":
            message = (span.error or {}).get("message", span.status)
            otel_span.set_status(api.Status(self._error, str(message)))
        context = api.set_span_in_context(otel_span, parent)
        for child in span.children:
            self.export(child, context, extras)
        for child in orphans:
            self.export(child, context, extras)
        otel_span.end(end_time=start + int(span.duration_ms * 1e6))
