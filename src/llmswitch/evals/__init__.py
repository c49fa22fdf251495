"""Offline evaluation of routers: outcome tables, replay, cost-quality metrics and plots.

Import submodules directly for replay (``llmswitch.evals.replay``); this package only re-exports
the table type and metrics, which need nothing beyond NumPy. Training, cross-validation and the
``router eval`` report live in `llmswitch.training`, which builds on this package (never the
reverse); serve-time routing (`llmswitch.routing.learned`) imports neither.
"""

from llmswitch.evals.metrics import Point, aiq, cost_at_quality, cost_share_at, nondecreasing_hull
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
