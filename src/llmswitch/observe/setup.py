"""The observers a `Switch` gets from its config: the ledger (with the trace store) and the
OpenTelemetry exporter (the application's global providers unless `observe.otel` names an
exporter of its own; `otel: false` turns it off). Nothing is opened or imported until the
first request ends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from llmswitch.config.schema import Config
from llmswitch.observe.config import parse_observe

if TYPE_CHECKING:
    from llmswitch.switch import Observer


def observers_for(config: Config, env: Mapping[str, str] | None = None) -> list[Observer]:
    """Observers for `config.observe` (see docs/observability.md)."""
    settings = parse_observe(config.observe, env, config.source)
    out: list[Observer] = []
    if settings.ledger is not None:
        from llmswitch.observe.ledger import Ledger

        out.append(Ledger(settings.ledger, settings))
    if settings.otel is not None:
        from llmswitch.observe.otel import OtelObserver

        out.append(OtelObserver.from_config(settings.otel, content=settings.content))
    return out
