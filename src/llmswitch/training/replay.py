"""Replay of a trained router over an outcome table: its plan for every λ, zero model calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmswitch.evals.table import OutcomeTable
from llmswitch.routing.learned.cascade import CascadeRouter
from llmswitch.routing.learned.router import Plan
from llmswitch.training.cascade import replay_cascade
from llmswitch.training.router import table_labels


def replay_table(
    router: Any, table: OutcomeTable, lambdas: Sequence[float], notes: list[str]
) -> list[Plan]:
    """Plans for every λ: a cascade reads the table's recorded probe answers; a single router
    predicts from the prompts and their labels (task and categorical columns)."""
    if isinstance(router, CascadeRouter):
        return replay_cascade(router, table, lambdas, notes)
    plans: list[Plan] = router.replay(list(table.prompts), lambdas, table_labels(table))
    return plans
