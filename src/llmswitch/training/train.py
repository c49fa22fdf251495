"""Training behind ``llmswitch router train``: kind selection, λ calibration, saving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmswitch.evals.table import OutcomeTable
from llmswitch.routing.learned.io import save_router
from llmswitch.routing.learned.policy import calibrate_lambda, lambda_from_curve
from llmswitch.routing.learned.router import KINDS, LearnedRouter
from llmswitch.training.cascade import cross_validate_cascade, train_cascade
from llmswitch.training.crossval import KIND_DEFAULTS, cross_validate, oof_predictions
from llmswitch.training.progress import Progress
from llmswitch.training.router import train_router


class TrainError(ValueError):
    """Training could not proceed (the message says why)."""


def default_params(kind: str) -> dict[str, Any]:
    """Hyper-parameters used for ``kind`` unless cross-validation picks others."""
    return dict(KIND_DEFAULTS.get(kind, {}))


def _calibrate(
    router: LearnedRouter,
    table: OutcomeTable,
    folds: int,
    lam: float | None,
    target_cost: float | None,
    min_quality: float | None,
    progress: Progress | None = None,
) -> float:
    """λ from the explicit value, a target on out-of-fold predictions, or the default target.

    The default target is the best single model's mean quality on the training table: route as
    well as the best model at the least predicted cost.
    """
    if lam is not None:
        return lam
    base_kind = router.kind
    q, c = oof_predictions(table, base_kind, router.info.get("params"), folds, progress)
    if target_cost is not None:
        return calibrate_lambda(q, c, target_cost=target_cost)
    goal = min_quality if min_quality is not None else float(table.quality.mean(axis=0).max())
    try:
        return calibrate_lambda(q, c, min_quality=goal)
    except ValueError:
        if min_quality is not None:
            raise
        return 0.0


def _calibrate_cascade(
    table: OutcomeTable,
    folds: int,
    lam: float | None,
    target_cost: float | None,
    min_quality: float | None,
    report: dict[str, Any] | None,
    progress: Progress | None,
) -> float:
    """λ of a cascade: explicit, or read off its cross-validated curve (as for other kinds, the
    default target is the best single model's mean quality at the least cost)."""
    if lam is not None:
        return lam
    if report is None:
        if progress:
            progress("calibrating λ on the cross-validated cascade")
        report = cross_validate_cascade(table, folds, progress)
    curve = report["curve"]
    if target_cost is not None:
        return lambda_from_curve(curve, target_cost=target_cost)
    goal = min_quality if min_quality is not None else float(table.quality.mean(axis=0).max())
    try:
        return lambda_from_curve(curve, min_quality=goal)
    except ValueError:
        if min_quality is not None:
            raise
        return float(max(curve, key=lambda p: (p["quality"], -p["lambda"]))["lambda"])


def train_from_table(
    table: OutcomeTable,
    kind: str,
    out: str | Path,
    *,
    folds: int = 5,
    lam: float | None = None,
    target_cost: float | None = None,
    min_quality: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train (selecting the kind by cross-validation if ``auto``), calibrate λ, save to ``out``."""
    if len(table) < 2 * folds:
        raise TrainError(
            f"table has {len(table)} prompts; need at least {2 * folds} to train with {folds} folds"
        )
    selection: list[dict[str, Any]] = []
    reports: dict[str, dict[str, Any]] = {}
    if kind == "auto":

        kind, params, selection = select_kind(table, k=folds, progress=progress, reports=reports)
    else:
        params = default_params(kind)
    if kind == "cascade":
        if progress:
            progress("training cascade scorer")
        cascade = train_cascade(table, folds=folds, progress=progress)
        cascade.lam = _calibrate_cascade(table, folds, lam, target_cost, min_quality,
                                         reports.get("cascade"), progress)
        cascade.info["selection"] = selection
        save_router(cascade, out)
        return _summary(cascade.base, "cascade", cascade.lam, selection)
    if kind not in KINDS:
        raise TrainError(
            f"unknown router kind {kind!r}; choose from auto, {', '.join(KINDS)}, cascade"
        )
    if progress:
        progress(f"training {kind} on {len(table)} prompts")
    router = train_router(table, kind, params)
    if progress:
        progress("calibrating λ on out-of-fold predictions")
    router.lam = _calibrate(router, table, folds, lam, target_cost, min_quality, progress)
    router.info["selection"] = selection
    save_router(router, out)
    return _summary(router, kind, router.lam, selection)


def _summary(
    router: LearnedRouter, kind: str, lam: float, selection: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "kind": kind,
        "params": router.info.get("params", {}),
        "n_train": router.info.get("n_train"),
        "models": list(router.models),
        "lambda": float(lam),
        "selection": selection,
        "model_mean_quality": [
            float(x) for x in np.asarray(router.info["task_stats"]["*"]["quality"])
        ],
    }


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
            from llmswitch.training.cascade import cross_validate_cascade

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

