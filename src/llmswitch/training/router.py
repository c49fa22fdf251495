"""Training learned routers on outcome tables (offline; never imported at serve time).

`train_router` fits the featurizer, the quality model(s) of a kind and the cost model;
`table_labels` turns a table's task and categorical columns into the labels the router reads
(at serve time the same labels come from request metadata, `strategies.learned`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.table import OutcomeTable
from llmswitch.routing.learned.cost import CostModel
from llmswitch.routing.learned.features import Features, Featurizer, Prepared, Texts
from llmswitch.routing.learned.quality import QualityModel
from llmswitch.routing.learned.router import ENSEMBLE_PARTS, KINDS, QUALITY_KINDS, LearnedRouter
from llmswitch.training.fit import FITTERS

FloatArray = npt.NDArray[np.float64]


def fit_quality(
    kind: str, feats: Features, quality: FloatArray, params: dict[str, Any]
) -> list[QualityModel]:
    """Fit the quality model(s) of ``kind`` (``ensemble`` fits each of `ENSEMBLE_PARTS`)."""
    if kind == "ensemble":
        return [
            fit_quality(part, feats, quality, params.get(part, {}))[0] for part in ENSEMBLE_PARTS
        ]
    if kind not in QUALITY_KINDS:
        raise ValueError(f"unknown router kind {kind!r}; choose from {', '.join(KINDS)}")
    model: QualityModel = FITTERS[kind](feats, quality, **params)
    return [model]


def train_router(
    table: OutcomeTable,
    kind: str = "ridge",
    params: dict[str, Any] | None = None,
    lam: float = 0.0,
    prepared: Prepared | None = None,
) -> LearnedRouter:
    """Train a router of ``kind`` on ``table`` (hyper-parameters in ``params``).

    ``params["task_weight"]`` (default 0) appends the task one-hot, scaled by it, to the features
    (kNN: a similarity bonus for same-task neighbours); ``params["embed_weight"]`` (default 0)
    mixes the static prompt embedding into the similarity features (see `Featurizer`).
    ``prepared``: the table's prompts already
    tokenised (`Prepared.of`), to save time in cross-validation.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown router kind {kind!r}; choose from {', '.join(KINDS)}")
    model_params = dict(params or {})
    task_weight = float(model_params.pop("task_weight", 0.0))
    embed_weight = float(model_params.pop("embed_weight", 0.0))
    texts: Texts = prepared if prepared is not None else table.prompts
    if embed_weight > 0 and (prepared is None or prepared.emb is None):
        texts = Prepared.of(table.prompts, embed=True)
    labels = table_labels(table)
    featurizer = Featurizer.fit(
        texts, tasks=labels, task_weight=task_weight, embed_weight=embed_weight
    )
    feats = featurizer.transform(texts, labels)
    if kind == "knn" and task_weight > 0:
        model_params.setdefault("task_bonus", task_weight)
    if kind == "ensemble" and task_weight > 0:
        model_params["knn"] = {"task_bonus": task_weight, **model_params.get("knn", {})}
    quality_models = fit_quality(kind, feats, table.quality, model_params)
    cost_model = CostModel.fit(feats, table.cost)
    info = {
        "n_train": len(table),
        "source": table.source,
        "task_stats": task_stats(table),
        "params": dict(params or {}),
    }
    return LearnedRouter(kind, table.models, featurizer, quality_models, cost_model, lam, info)


NOT_LABELS = frozenset({
    "reference", "references", "answer", "answers", "expected", "gold", "label", "labels",
    "target", "solution", "response", "responses", "error", "errors", "grade", "grader",
})
"""Columns never used as labels: they hold (or derive from) the answer, unknown at serve time —
`router collect` writes ``reference`` and ``errors`` beside every prompt."""


def label_columns(table: OutcomeTable) -> list[str]:
    """Extra columns used as categorical labels: strings, 3–500 distinct values, short.

    E.g. RouteLLM's MMLU ``subtask`` (the subject); not free text (``prompt_turn2``), not
    two-valued bookkeeping columns (``source_split``), and never a column of `NOT_LABELS`.
    """
    out = []
    for name, values in sorted(table.extras.items()):
        if name.lower() in NOT_LABELS or not values or not all(isinstance(v, str) for v in values):
            continue
        distinct = set(values)
        if 3 <= len(distinct) <= 500 and sum(len(v) for v in distinct) / len(distinct) <= 40:
            out.append(name)
    return out


def table_labels(table: OutcomeTable, columns: Sequence[str] | None = None) -> list[list[str]]:
    """Per row: its task, then ``column=value`` for each label column (see `label_columns`)."""
    cols = label_columns(table) if columns is None else list(columns)
    return [
        [task, *(f"{c}={table.extras[c][i]}" for c in cols)] for i, task in enumerate(table.tasks)
    ]


def task_stats(table: OutcomeTable) -> dict[str, dict[str, list[float]]]:
    """Per task: mean quality and mean cost of each model (for the task-best baseline)."""
    out: dict[str, dict[str, list[float]]] = {}
    tasks = np.asarray(table.tasks)
    for task in table.task_names:
        rows = tasks == task
        out[task] = {
            "quality": [float(x) for x in table.quality[rows].mean(axis=0)],
            "cost": [float(x) for x in table.cost[rows].mean(axis=0)],
        }
    out["*"] = {
        "quality": [float(x) for x in table.quality.mean(axis=0)],
        "cost": [float(x) for x in table.cost.mean(axis=0)],
    }
    return out
