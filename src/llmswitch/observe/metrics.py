"""GenAI client metrics through the OpenTelemetry metrics API (the application's MeterProvider).

Per attempt (each call that reached a provider, failed ones included):

* `gen_ai.client.operation.duration` (histogram, seconds), with `error.type` when it failed;
* `gen_ai.client.token.usage` (histogram, tokens), once with `gen_ai.token.type=input` and
  once with `output`, when the attempt has token counts.

Both carry `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model` and
`gen_ai.response.model`. Instruments are created once; attribute dicts are built once per
combination and reused, so recording costs a dict lookup and the instrument's own `record`
(a no-op until the application installs a MeterProvider).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmswitch.observe.genai import (
    CHAT,
    ERROR_TYPE,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    PROVIDER,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    TOKEN_INPUT,
    TOKEN_OUTPUT,
    TOKEN_TYPE,
    error_type,
    provider_name,
)
from llmswitch.observe.trace import Span

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)
"""The conventions' advised boundaries for `gen_ai.client.operation.duration` (seconds)."""
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
"""The conventions' advised boundaries for `gen_ai.client.token.usage`."""
MAX_ATTRIBUTE_SETS = 4096
"""Cached attribute dicts; past this the cache starts over (bounds memory, not cardinality)."""

_Key = tuple[Any, Any, Any, Any, Any]


class GenAiMetrics:
    """Records the GenAI client metrics for finished attempts."""

    def __init__(self, meter_provider: Any = None) -> None:
        """`meter_provider`: the global one (the default) or one of the application's."""
        self.meter_provider = meter_provider
        self._duration: Any = None
        self._tokens: Any = None
        self._attributes: dict[_Key, dict[str, Any]] = {}
        self._token_attributes: dict[_Key, tuple[dict[str, Any], dict[str, Any]]] = {}

    def bind(self) -> None:
        """Create the instruments (needs the OpenTelemetry API and semantic conventions)."""
        from opentelemetry import metrics
        from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as gm

        from llmswitch import __version__

        meter = metrics.get_meter("llmswitch", __version__, meter_provider=self.meter_provider)
        self._duration = meter.create_histogram(
            gm.GEN_AI_CLIENT_OPERATION_DURATION, unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self._tokens = meter.create_histogram(
            gm.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)

    def record(self, attempts: Iterable[Span]) -> None:
        """Record the duration and token usage of each attempt span."""
        if self._duration is None:
            self.bind()
        for span in attempts:
            a = span.attributes
            key = (a.get(OPERATION), a.get(PROVIDER), a.get(REQUEST_MODEL),
                   a.get(RESPONSE_MODEL), error_type(span))
            attributes = self._attributes.get(key)
            if attributes is None:
                attributes = self._remember(self._attributes, key, _attributes(key))
            self._duration.record(span.duration_ms / 1000, attributes)
            input_tokens, output_tokens = a.get(INPUT_TOKENS), a.get(OUTPUT_TOKENS)
            if input_tokens is None and output_tokens is None:
                continue
            pair = self._token_attributes.get(key)
            if pair is None:
                pair = self._remember(self._token_attributes, key, (
                    {**attributes, TOKEN_TYPE: TOKEN_INPUT},
                    {**attributes, TOKEN_TYPE: TOKEN_OUTPUT}))
            self._tokens.record(int(input_tokens or 0), pair[0])
            self._tokens.record(int(output_tokens or 0), pair[1])

    @staticmethod
    def _remember(cache: dict[_Key, Any], key: _Key, value: Any) -> Any:
        if len(cache) >= MAX_ATTRIBUTE_SETS:
            cache.clear()
        cache[key] = value
        return value


def _attributes(key: _Key) -> dict[str, Any]:
    operation, provider, request_model, response_model, error = key
    out: dict[str, Any] = {OPERATION: operation or CHAT}
    if provider is not None:
        out[PROVIDER] = provider_name(str(provider))
    if request_model is not None:
        out[REQUEST_MODEL] = str(request_model)
    if response_model is not None:
        out[RESPONSE_MODEL] = str(response_model)
    if error is not None:
        out[ERROR_TYPE] = error
    return out

