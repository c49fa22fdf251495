"""Observability: traces, metrics and the spend ledger.

The names in `__all__` are the public surface the shells (gateway, dashboard, CLI) and
applications build on; the modules behind them are internal. Imported on first use (PEP 562),
so `import llmswitch.observe` costs nothing.
"""

import typing as _typing

from llmswitch._lazy import lazy_exports as _lazy_exports

_EXPORTS: dict[str, str] = {
    "Database": "llmswitch.observe.db",
    "is_postgres": "llmswitch.observe.db",
    "sqlite_path": "llmswitch.observe.db",
    "describe_failure": "llmswitch.observe.db",
    "Ledger": "llmswitch.observe.ledger",
    "LedgerFullWarning": "llmswitch.observe.ledger",
    "CommitLedger": "llmswitch.observe.durable",
    "LedgerNotWritten": "llmswitch.observe.durable",
    "LedgerStore": "llmswitch.observe.store",
    "ObserveConfig": "llmswitch.observe.config",
    "parse_observe": "llmswitch.observe.config",
    "observers_for": "llmswitch.observe.setup",
    "attempt_rows": "llmswitch.observe.records",
    "span_from_dict": "llmswitch.observe.trace",
    "parse_since": "llmswitch.observe.report",
    "summarize": "llmswitch.observe.report",
    "cost_series": "llmswitch.observe.report",
    "save_png": "llmswitch.observe.report",
    "render_table": "llmswitch.observe.report",
    "render_terminal_chart": "llmswitch.observe.report",
}

if _typing.TYPE_CHECKING:
    from llmswitch.observe.config import ObserveConfig, parse_observe
    from llmswitch.observe.db import Database, describe_failure, is_postgres, sqlite_path
    from llmswitch.observe.durable import CommitLedger, LedgerNotWritten
    from llmswitch.observe.ledger import Ledger, LedgerFullWarning
    from llmswitch.observe.records import attempt_rows
    from llmswitch.observe.report import (
        cost_series,
        parse_since,
        render_table,
        render_terminal_chart,
        save_png,
        summarize,
    )
    from llmswitch.observe.setup import observers_for
    from llmswitch.observe.store import LedgerStore
    from llmswitch.observe.trace import span_from_dict

__all__ = [
    "CommitLedger",
    "Database",
    "Ledger",
    "LedgerFullWarning",
    "LedgerNotWritten",
    "LedgerStore",
    "ObserveConfig",
    "attempt_rows",
    "cost_series",
    "describe_failure",
    "is_postgres",
    "observers_for",
    "parse_observe",
    "parse_since",
    "render_table",
    "render_terminal_chart",
    "save_png",
    "span_from_dict",
    "sqlite_path",
    "summarize",
]


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals(), __all__)
