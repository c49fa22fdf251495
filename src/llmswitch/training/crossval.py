"""Cross-validated evaluation and model selection on a development table.

Out-of-fold predictions: each fold's prompts are predicted by a router trained on the other folds
(folds stratified by task and grouped by identical prompt text), then the λ policy is swept over
the pooled predictions and scored exactly as ``router eval`` scores a held-out table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.replay import default_lambdas, evaluate, task_predictions
from llmswitch.evals.table import OutcomeTable, kfold_indices
from llmswitch.routing.learned.features import Prepared
from llmswitch.routing.learned.router import Plan, sweep_plans
from llmswitch.training.progress import Progress
from llmswitch.training.router import table_labels, task_stats, train_router

FloatArray = npt.NDArray[np.float64]


def oof_predictions(
    table: OutcomeTable,
    kind: str,
    params: dict[str, Any] | None = None,
    k: int = 5,
    progress: Progress | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Out-of-fold predicted quality and cost (n × m) of a router of ``kind``."""
    quality = np.zeros(table.quality.shape)
    cost = np.zeros(table.cost.shape)
    embed = float((params or {}).get("embed_weight", 0.0)) > 0
    prepared = Prepared.of(table.prompts, embed=embed)  # tokenise (and embed) once for all folds
    labels = table_labels(table)
    stage = f"cross-validating {kind} ({k} folds)"
    for f, (train, test) in enumerate(kfold_indices(table, k)):
        if progress:
            progress(stage, f, k)
        router = train_router(table.subset(train), kind, params, prepared=prepared.rows(train))
        pred = router.predict(prepared.rows(test), [labels[i] for i in test])
        quality[test] = pred.quality
        cost[test] = pred.cost
    if progress:
        progress(stage, k, k)
    return quality, cost


def oof_task_predictions(table: OutcomeTable, k: int = 5) -> tuple[FloatArray, FloatArray]:
    """Out-of-fold predictions of the task-best baseline (per-task means of the training folds)."""
    quality = np.zeros(table.quality.shape)
    cost = np.zeros(table.cost.shape)
    for train, test in kfold_indices(table, k):
        q, c = task_predictions(table.subset(test), task_stats(table.subset(train)))
        quality[test], cost[test] = q, c
    return quality, cost


def cross_validate(
    table: OutcomeTable,
    kind: str,
    params: dict[str, Any] | None = None,
    k: int = 5,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The ``router eval`` report computed on out-of-fold predictions of ``table``."""
    lambdas = default_lambdas(table)
    q, c = oof_predictions(table, kind, params, k, progress)
    plans: Sequence[Plan] = sweep_plans(q, c, lambdas)
    report = evaluate(table, plans, oof_task_predictions(table, k), lambdas, predicted_quality=q)
    report["cross_validation"] = {"folds": k, "kind": kind, "params": dict(params or {})}
    return report


KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "knn": {"k": 25, "task_weight": 1.0},
    "ridge": {"alpha": 3.0, "task_weight": 1.0},
    "logistic": {"c": 1.0, "task_weight": 1.0},
    "mf": {"task_weight": 1.0},
    "ensemble": {"task_weight": 1.0},
    "cascade": {},
}


