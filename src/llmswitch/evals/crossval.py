"""Cross-validated evaluation and model selection on a development table.

Out-of-fold predictions: each fold's prompts are predicted by a router trained on the other folds
(folds stratified by task and grouped by identical prompt text), then the λ policy is swept over
the pooled predictions and scored exactly as ``router eval`` scores a held-out table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.replay import default_lambdas, evaluate, task_predictions
from llmswitch.evals.table import OutcomeTable, kfold_indices
from llmswitch.routing.learned.features import Prepared
from llmswitch.routing.learned.router import (
    Plan,
    sweep_plans,
    table_labels,
    task_stats,
    train_router,
)

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str], None]


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
    for f, (train, test) in enumerate(kfold_indices(table, k)):
        if progress:
            progress(f"{kind}: fold {f + 1}/{k}")
        router = train_router(table.subset(train), kind, params, prepared=prepared.rows(train))
        pred = router.predict(prepared.rows(test), [labels[i] for i in test])
        quality[test] = pred.quality
        cost[test] = pred.cost
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


DEFAULT_CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("knn", {"k": 25}),
    ("knn", {"k": 25, "task_weight": 1.0}),
    ("ridge", {"alpha": 3.0}),
    ("ridge", {"alpha": 3.0, "task_weight": 1.0}),
    ("ridge", {"alpha": 3.0, "task_weight": 1.0, "embed_weight": 0.3}),
    ("cascade", {}),
)
"""What ``--kind auto`` cross-validates: fast kinds only (closed-form ridge, kNN, the cascade),
with and without the task label as a feature, ridge also with the static prompt embedding.
``logistic``, ``mf`` and ``ensemble`` stay available by name (slower to train; they did not win
on the development tables)."""
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "knn": {"k": 25, "task_weight": 1.0},
    "ridge": {"alpha": 3.0, "task_weight": 1.0},
    "logistic": {"c": 1.0, "task_weight": 1.0},
    "mf": {"task_weight": 1.0},
    "ensemble": {"task_weight": 1.0},
    "cascade": {},
}


def select_kind(
    table: OutcomeTable,
    candidates: Sequence[tuple[str, dict[str, Any]]] = DEFAULT_CANDIDATES,
    k: int = 5,
    progress: Progress | None = None,
    reports: dict[str, dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Pick a candidate by cross-validated AIQ (see `pick_candidate`); ``reports`` collects the
    cascade's cross-validated report (key ``"cascade"``) for λ calibration."""
    results = []
    for kind, params in candidates:
        if kind == "cascade":
            from llmswitch.routing.learned.cascade import cross_validate_cascade

            rep = cross_validate_cascade(table, k, progress)
            if reports is not None:
                reports["cascade"] = rep
        else:
            rep = cross_validate(table, kind, params, k, progress)
        share = rep["cost_share_at_95"]
        results.append(
            {
                "kind": kind,
                "params": params,
                "aiq": rep["aiq"],
                "cost_share_at_95": share,
                "cost_share_at_100": rep["cost_share_at_100"],
            }
        )
    best = pick_candidate(results)
    return best["kind"], dict(best["params"]), results


AIQ_TOLERANCE = 0.001
"""Cross-validated AIQs closer than this count as a tie, which the simpler kind wins."""


def pick_candidate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The simplest candidate within `AIQ_TOLERANCE` of the best AIQ, then the best AIQ, then the
    lower cost share at 95%. The cascade (probes, per-task policies) counts as more complex than
    a single predictor, so it is chosen only when it is clearly better.
    """
    top = max(r["aiq"] for r in results)
    close = [r for r in results if r["aiq"] >= top - AIQ_TOLERANCE]
    return max(
        close,
        key=lambda r: (
            r["kind"] != "cascade",
            round(r["aiq"], 4),
            -(r["cost_share_at_95"] or 9.0),
        ),
    )
