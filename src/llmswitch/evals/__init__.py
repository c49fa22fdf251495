"""Offline evaluation of routers: outcome tables, replay, cost-quality metrics and plots.

Import submodules directly for replay (``llmswitch.evals.replay``); this package re-exports the
table type and metrics (NumPy) on first use, so `router collect` (`evals.collect`, which calls
models and writes JSON lines) works without the ``router`` extra. Training, cross-validation and
the ``router eval`` report live in `llmswitch.training`, which builds on this package (never the
reverse); serve-time routing (`llmswitch.routing.learned`) imports neither.
"""

import typing as _typing

from llmswitch._lazy import lazy_exports as _lazy_exports

_EXPORTS = {
    "Point": "llmswitch.evals.metrics",
    "aiq": "llmswitch.evals.metrics",
    "cost_at_quality": "llmswitch.evals.metrics",
    "cost_share_at": "llmswitch.evals.metrics",
    "nondecreasing_hull": "llmswitch.evals.metrics",
    "OutcomeTable": "llmswitch.evals.table",
    "TableError": "llmswitch.evals.table",
    "kfold_indices": "llmswitch.evals.table",
    "load_table": "llmswitch.evals.table",
    "train_test_split": "llmswitch.evals.table",
}

if _typing.TYPE_CHECKING:
    from llmswitch.evals.metrics import (
        Point,
        aiq,
        cost_at_quality,
        cost_share_at,
        nondecreasing_hull,
    )
    from llmswitch.evals.table import (
        OutcomeTable,
        TableError,
        kfold_indices,
        load_table,
        train_test_split,
    )

__all__ = [
    "OutcomeTable",
    "Point",
    "TableError",
    "aiq",
    "cost_at_quality",
    "cost_share_at",
    "kfold_indices",
    "load_table",
    "nondecreasing_hull",
    "train_test_split",
]


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals(), __all__)
