"""``router eval``: replay a saved router (or cross-validate a kind) and render the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from llmswitch.evals.replay import default_lambdas, evaluate, task_predictions
from llmswitch.evals.table import OutcomeTable
from llmswitch.training.progress import Progress
from llmswitch.training.replay import replay_table


class EvalError(ValueError):
    """Evaluation could not proceed (the message says why)."""


def evaluate_file(table: OutcomeTable, router_path: str | Path) -> dict[str, Any]:
    """Replay the router saved at ``router_path`` over ``table``."""
    from llmswitch.routing.learned.io import RouterFileError, load_router
    from llmswitch.routing.learned.router import LearnedRouter, sweep_plans
    from llmswitch.training.router import table_labels

    try:
        router = load_router(router_path)
    except RouterFileError as exc:
        raise EvalError(str(exc)) from None
    missing = [m for m in router.models if m not in table.models]
    if missing:
        raise EvalError(
            f"table {table.source} has no outcomes for router model(s) {', '.join(missing)}"
        )
    table = table.select_models(router.models)
    lambdas = default_lambdas(table)
    notes: list[str] = []
    predicted = None
    if isinstance(router, LearnedRouter):
        pred = router.predict(list(table.prompts), table_labels(table))
        predicted = pred.quality
        plans = sweep_plans(pred.quality, pred.cost, lambdas)
    else:
        plans = replay_table(router, table, lambdas, notes)
    stats = router.info.get("task_stats")
    task_pred = task_predictions(table, stats) if stats else None
    report = evaluate(table, plans, task_pred, lambdas, predicted_quality=predicted)
    report["router"] = {
        "file": str(router_path),
        "kind": router.kind,
        "lambda": router.lam,
        "trained_on": router.info.get("source"),
        "n_train": router.info.get("n_train"),
        "notes": notes,
    }
    return report


def evaluate_kind(
    table: OutcomeTable, kind: str, folds: int = 5, progress: Progress | None = None
) -> dict[str, Any]:
    """Cross-validated report of ``kind`` (``auto``: the kind cross-validation selects).

    Needs at least ``2 * folds`` prompts, the minimum `router train` applies too.
    """
    if len(table) < 2 * folds:
        raise EvalError(
            f"table has {len(table)} prompts; need at least {2 * folds} to cross-validate with "
            f"{folds} folds (lower --folds or collect more prompts)"
        )
    from llmswitch.training.crossval import cross_validate
    from llmswitch.training.train import default_params, select_kind

    selection: list[dict[str, Any]] = []
    if kind == "auto":
        kind, params, selection = select_kind(table, k=folds, progress=progress)
    else:
        params = default_params(kind)
    if kind == "cascade":
        from llmswitch.training.cascade import cross_validate_cascade

        report = cross_validate_cascade(table, folds, progress)
    else:
        report = cross_validate(table, kind, params, folds, progress)
    report["cross_validation"]["selection"] = selection
    return report


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def render_text(report: dict[str, Any], out: TextIO) -> None:
    """Human-readable summary of a report (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=110)
    best = report["best_single"]
    console.print(
        f"{report['n_prompts']} prompts, best single model {best['model']}: "
        f"quality {best['quality']:.4f} at ${best['cost_usd']:.6f}/prompt"
    )
    summary = Table("router / baseline", "AIQ", "cost @95%", "cost @100%", "quality", "$/prompt")
    summary.add_row(
        "router",
        f"{report['aiq']:.4f}",
        _pct(report["cost_share_at_95"]),
        _pct(report["cost_share_at_100"]),
        "",
        "",
    )
    for name in ("task_best", "oracle", "zero_router"):
        b = report["baselines"].get(name)
        if b:
            summary.add_row(
                name,
                f"{b['aiq']:.4f}",
                _pct(b["cost_share_at_95"]),
                _pct(b["cost_share_at_100"]),
                f"{b['quality']:.4f}" if "quality" in b else "",
                f"{b['cost_usd']:.6f}" if "cost_usd" in b else "",
            )
    rnd = report["baselines"]["random"]
    summary.add_row("random", "", "", "", f"{rnd['quality']:.4f}", f"{rnd['cost_usd']:.6f}")
    console.print(summary)
    per_task = Table("task", "n", "best single", "AIQ", "cost @95%", "cost @100%",
                     "its calls @95%", "task-best AIQ")
    for task, row in report["per_task"].items():
        tb = row["baselines"].get("task_best", {})
        per_task.add_row(
            task,
            str(row["n_prompts"]),
            row["best_single"]["model"],
            f"{row['aiq']:.4f}",
            _pct(row["cost_share_at_95"]),
            _pct(row["cost_share_at_100"]),
            _pct(row["best_single_call_share_at_95"]),
            f"{tb['aiq']:.4f}" if tb else "",
        )
    console.print(per_task)
    basis = report.get("call_share_basis")
    if basis == "margin_sweep":
        console.print("its calls @95%: share of prompts sent to the best single model where the "
                      "router, run on a call budget (route options strong/margin), first reaches "
                      "95% of its quality", markup=False, highlight=False)
    router = report.get("router") or {}
    for note in dict.fromkeys(router.get("notes") or []):
        console.print(f"note: {note}", markup=False, highlight=False)
