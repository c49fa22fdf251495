"""Replay routers over an outcome table and report the cost-quality curve, AIQ and baselines.

Nothing is called: a plan says, per prompt, which model answered and which models were called; the
table says what each model's answer was worth and cost. `evaluate` builds the public ``--json``
report of ``llmswitch router eval`` (documented in ``docs/routing.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.metrics import (
    Point,
    aiq,
    cost_at_quality,
    cost_share_at,
    lambda_grid,
    mix_at_quality,
)
from llmswitch.evals.table import OutcomeTable
from llmswitch.routing.learned.policy import choose
from llmswitch.routing.learned.router import Plan, sweep_plans

FloatArray = npt.NDArray[np.float64]


def plan_point(
    table: OutcomeTable, plan: Plan, rows: npt.NDArray[np.bool_] | None = None
) -> dict[str, Any]:
    """Mean quality, mean cost and per-model call shares of ``plan`` (on ``rows``)."""
    sel = np.ones(len(table), dtype=bool) if rows is None else rows
    idx = np.flatnonzero(sel)
    quality = table.quality[idx, plan.final[idx]]
    cost = (table.cost[idx] * plan.called[idx]).sum(axis=1)
    shares = plan.called[idx].mean(axis=0)
    return {
        "lambda": plan.lam,
        "quality": float(quality.mean()),
        "cost_usd": float(cost.mean()),
        "model_shares": {m: round(float(s), 6) for m, s in zip(table.models, shares, strict=True)},
    }


def _best_single(table: OutcomeTable, rows: npt.NDArray[np.bool_]) -> tuple[int, float, float]:
    q = table.quality[rows].mean(axis=0)
    c = table.cost[rows].mean(axis=0)
    order = sorted(range(len(table.models)), key=lambda j: (-q[j], c[j]))
    return order[0], float(q[order[0]]), float(c[order[0]])


def curve_summary(
    table: OutcomeTable, curve: Sequence[dict[str, Any]], rows: npt.NDArray[np.bool_]
) -> dict[str, Any]:
    """AIQ and cost shares at 95%/100% of the best single model for a curve on ``rows``."""
    best, best_q, best_c = _best_single(table, rows)
    costs = table.cost[rows].mean(axis=0)
    points = [Point(p["cost_usd"], p["quality"]) for p in curve]
    out: dict[str, Any] = {
        "aiq": aiq(points, float(costs.min()), float(costs.max())),
        "cost_share_at_95": cost_share_at(points, 0.95 * best_q, best_c),
        "cost_share_at_100": cost_share_at(points, best_q, best_c),
    }
    for pct in (95, 100):
        mix = mix_at_quality(points, pct / 100 * best_q)
        key = f"best_single_call_share_at_{pct}"
        if mix is None:
            out[key] = None
        else:
            a, b, t = mix
            share_a = curve[a]["model_shares"][table.models[best]]
            share_b = curve[b]["model_shares"][table.models[best]]
            out[key] = (1 - t) * share_a + t * share_b
    return out


def baselines(
    table: OutcomeTable,
    task_pred: tuple[FloatArray, FloatArray] | None,
    lambdas: Sequence[float],
    rows: npt.NDArray[np.bool_],
) -> dict[str, Any]:
    """Single models, best single, random, zero router, task-best and oracle on ``rows``."""
    q = table.quality[rows].mean(axis=0)
    c = table.cost[rows].mean(axis=0)
    single = {
        m: {"quality": float(q[j]), "cost_usd": float(c[j])} for j, m in enumerate(table.models)
    }
    singles = [Point(float(c[j]), float(q[j])) for j in range(len(table.models))]
    _, best_q, best_c = _best_single(table, rows)
    out: dict[str, Any] = {
        "single": single,
        "random": {"quality": float(q.mean()), "cost_usd": float(c.mean())},
        "zero_router": {
            "aiq": aiq(singles, float(c.min()), float(c.max())),
            "cost_share_at_95": cost_share_at(singles, 0.95 * best_q, best_c),
            "cost_share_at_100": cost_share_at(singles, best_q, best_c),
        },
    }
    oracle = sweep_plans(table.quality, table.cost, lambdas)
    out["oracle"] = _baseline_curve(table, oracle, rows, first=True)
    if task_pred is not None:
        out["task_best"] = _baseline_curve(
            table, sweep_plans(*task_pred, lambdas), rows, first=True
        )
    return out


def _baseline_curve(
    table: OutcomeTable, plans: list[Plan], rows: npt.NDArray[np.bool_], first: bool
) -> dict[str, Any]:
    curve = [plan_point(table, p, rows) for p in plans]
    top = curve[0]  # λ = 0: the best predicted model per prompt
    return {
        "quality": top["quality"],
        "cost_usd": top["cost_usd"],
        **curve_summary(table, curve, rows),
    }


def task_predictions(
    table: OutcomeTable, stats: dict[str, dict[str, list[float]]]
) -> tuple[FloatArray, FloatArray]:
    """Per-row predictions of the task-best baseline from per-task training means."""
    fallback = stats.get("*") or next(iter(stats.values()))
    q = np.asarray([stats.get(t, fallback)["quality"] for t in table.tasks], dtype=np.float64)
    c = np.asarray([stats.get(t, fallback)["cost"] for t in table.tasks], dtype=np.float64)
    return q, c


CALL_MARGINS: tuple[float, ...] = (
    -1e9, 0.0, *(float(x) for x in np.geomspace(1e-4, 1.0, 121)), 1e9
)
"""Margins of the call-budget sweep: −1e9 "always the strong model", then 0 to "never"."""


def call_budget_summary(
    table: OutcomeTable, predicted: FloatArray, rows: npt.NDArray[np.bool_]
) -> dict[str, Any]:
    """Share of calls to the best single model at 95%/100% of its quality, margin policy.

    RouteLLM's cost measure is the share of prompts sent to the strong model, and its routers
    send a prompt there when the predicted gain exceeds a threshold. This sweeps that policy over
    ``predicted`` quality: at margin μ the best single model answers where its predicted quality
    beats every other model's by more than μ, else the other model predicted best (`choose` with
    a unit cost on the best single model). Dollar costs play no part, so a long prompt is not
    held back from the strong model because it costs more, which the λ sweep rightly does.
    """
    best, best_q, _ = _best_single(table, rows)
    idx = np.flatnonzero(rows)
    pred = predicted[idx]
    unit = np.zeros(pred.shape)
    unit[:, best] = 1.0
    points: list[Point] = []
    curve: list[dict[str, Any]] = []
    for margin in CALL_MARGINS:
        final = choose(pred, unit, margin)
        share = float((final == best).mean())
        quality = float(table.quality[idx, final].mean())
        if not curve or (curve[-1]["best_single_share"], curve[-1]["quality"]) != (share, quality):
            curve.append({"margin": margin, "quality": quality, "best_single_share": share})
            points.append(Point(share, quality))
    out: dict[str, Any] = {
        f"best_single_call_share_at_{pct}": cost_at_quality(points, pct / 100 * best_q)
        for pct in (95, 100)
    }
    return {**out, "call_share_basis": "margin_sweep", "call_curve": curve}


def evaluate(
    table: OutcomeTable,
    plans: Sequence[Plan],
    task_pred: tuple[FloatArray, FloatArray] | None = None,
    lambdas: Sequence[float] | None = None,
    predicted_quality: FloatArray | None = None,
) -> dict[str, Any]:
    """The ``router eval`` report for ``plans`` replayed on ``table``.

    With the router's ``predicted_quality`` (rows × models), the best-single call shares come
    from `call_budget_summary`; without it (a cascade) they are read off the λ sweep's plans.
    """
    grid = list(lambdas) if lambdas is not None else default_lambdas(table)

    def summary(curve: list[dict[str, Any]], rows: npt.NDArray[np.bool_]) -> dict[str, Any]:
        out = {**curve_summary(table, curve, rows), "call_share_basis": "lambda_sweep"}
        if predicted_quality is not None:
            out.update(call_budget_summary(table, predicted_quality, rows))
        return out

    all_rows = np.ones(len(table), dtype=bool)
    curve = [plan_point(table, p) for p in plans]
    best, best_q, best_c = _best_single(table, all_rows)
    report: dict[str, Any] = {
        "n_prompts": len(table),
        "models": list(table.models),
        "best_single": {"model": table.models[best], "quality": best_q, "cost_usd": best_c},
        **summary(curve, all_rows),
        "curve": curve,
        "baselines": baselines(table, task_pred, grid, all_rows),
        "per_task": {},
    }
    tasks = np.asarray(table.tasks)
    for task in table.task_names:
        rows = tasks == task
        t_curve = [plan_point(table, p, rows) for p in plans]
        b, bq, bc = _best_single(table, rows)
        report["per_task"][task] = {
            "n_prompts": int(rows.sum()),
            "best_single": {"model": table.models[b], "quality": bq, "cost_usd": bc},
            **summary(t_curve, rows),
            "baselines": baselines(table, task_pred, grid, rows),
        }
    return report


def default_lambdas(table: OutcomeTable) -> list[float]:
    """The λ grid used for a table: geometric around the median model cost."""
    return lambda_grid(float(np.median(table.cost.mean(axis=0))))
