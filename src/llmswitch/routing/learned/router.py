"""`LearnedRouter`: features → per-model predicted quality and cost → cost-aware choice.

A router is a pure decision: no I/O, no model calls. ``decide`` handles one request,
``decide_batch``/``predict`` many (offline replay). The quality predictor (kNN, logistic, MF or an
ensemble of them) and the λ policy are separate parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.table import OutcomeTable
from llmswitch.routing.decision import Decision
from llmswitch.routing.learned.cost import CostModel
from llmswitch.routing.learned.features import Features, Featurizer, Label, Prepared, Texts
from llmswitch.routing.learned.policy import choose
from llmswitch.routing.learned.quality import (
    KNNQuality,
    LogisticQuality,
    MFQuality,
    QualityModel,
    RidgeQuality,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QualityClass = type[KNNQuality] | type[LogisticQuality] | type[MFQuality] | type[RidgeQuality]
QUALITY_KINDS: dict[str, QualityClass] = {
    "knn": KNNQuality,
    "logistic": LogisticQuality,
    "ridge": RidgeQuality,
    "mf": MFQuality,
}
ENSEMBLE_PARTS = ("knn", "ridge")
KINDS = (*QUALITY_KINDS, "ensemble")


@dataclass(frozen=True, slots=True)
class LearnedDecision(Decision):
    """A `Decision` that also carries every candidate's predicted quality and cost (USD)."""

    predicted_quality: dict[str, float] = field(default_factory=dict)
    predicted_cost: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Offline replay of one policy setting: the answering model and all called models."""

    lam: float
    final: IntArray
    called: npt.NDArray[np.bool_]


def sweep_plans(quality: FloatArray, cost: FloatArray, lambdas: Sequence[float]) -> list[Plan]:
    """Plans of the λ policy over predicted ``quality``/``cost`` for every λ."""
    plans = []
    rows = np.arange(quality.shape[0])
    for lam in lambdas:
        final = choose(quality, cost, lam)
        called = np.zeros(quality.shape, dtype=bool)
        called[rows, final] = True
        plans.append(Plan(float(lam), final, called))
    return plans


@dataclass(frozen=True)
class Prediction:
    """Predicted quality and cost (USD) per prompt (rows) and model (columns)."""

    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray


@dataclass
class LearnedRouter:
    """A trained router over the models of its training table."""

    kind: str
    models: tuple[str, ...]
    featurizer: Featurizer
    quality_models: list[QualityModel]
    cost_model: CostModel
    lam: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def features(self, prompts: Texts, tasks: Sequence[Label] | None = None) -> Features:
        """Featurise prompts (the part that dominates the time of a decision).

        ``tasks``: each prompt's task label if known (used when the router was trained with
        task features; an unknown or missing task gets no task signal).
        """
        return self.featurizer.transform(prompts, tasks)

    def predict(
        self, prompts: Texts | Features, tasks: Sequence[Label] | None = None
    ) -> Prediction:
        """Predicted quality and cost for every prompt and model."""
        feats = prompts if isinstance(prompts, Features) else self.features(prompts, tasks)
        quality = np.mean([qm.predict(feats) for qm in self.quality_models], axis=0)
        return Prediction(self.models, quality, self.cost_model.predict(feats))

    def decide(
        self,
        request: str | Features,
        candidates: Sequence[str] | None = None,
        lam: float | None = None,
        task: Label = None,
    ) -> LearnedDecision:
        """Choose among ``candidates`` (default: all models) for one prompt (of ``task``)."""
        feats = self.features([request], [task]) if isinstance(request, str) else request
        return self.decide_batch(feats, candidates, lam)[0]

    def decide_batch(
        self,
        requests: Sequence[str] | Features,
        candidates: Sequence[str] | None = None,
        lam: float | None = None,
    ) -> list[LearnedDecision]:
        """Choose for every prompt of a batch."""
        pred = self.predict(requests)
        cols = self.candidate_columns(candidates)
        lam_value = self.lam if lam is None else lam
        chosen = choose(pred.quality[:, cols], pred.cost[:, cols], lam_value)
        out = []
        for i, c in enumerate(chosen):
            names = [self.models[j] for j in cols]
            q = {n: float(pred.quality[i, j]) for n, j in zip(names, cols, strict=True)}
            cst = {n: float(pred.cost[i, j]) for n, j in zip(names, cols, strict=True)}
            scores = {n: q[n] - lam_value * cst[n] for n in names}
            reason = (
                f"{self.kind}: max predicted quality − λ·cost (λ={lam_value:.4g}/USD): "
                f"{names[c]} q={q[names[c]]:.3f} cost=${cst[names[c]]:.6f}"
            )
            out.append(LearnedDecision(names[c], reason, scores, q, cst))
        return out

    def replay(
        self,
        prompts: Texts | Features,
        lambdas: Sequence[float],
        tasks: Sequence[Label] | None = None,
    ) -> list[Plan]:
        """Plans for every λ over a batch of prompts (zero model calls)."""
        pred = self.predict(prompts, tasks)
        return sweep_plans(pred.quality, pred.cost, lambdas)

    def replay_table(
        self, table: OutcomeTable, lambdas: Sequence[float], notes: list[str]
    ) -> list[Plan]:
        """Plans for every λ over an outcome table (its task column feeds task features)."""
        return self.replay(list(table.prompts), lambdas, table_labels(table))

    def candidate_columns(self, candidates: Sequence[str] | None) -> list[int]:
        """Column indices of ``candidates``; raise `ValueError` naming unknown ones."""
        if candidates is None:
            return list(range(len(self.models)))
        unknown = [c for c in candidates if c not in self.models]
        if unknown:
            raise ValueError(
                f"router does not know model(s) {unknown}; it knows {list(self.models)}"
            )
        if not candidates:
            raise ValueError("no candidates to choose from")
        return [self.models.index(c) for c in candidates]


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
    model: QualityModel = QUALITY_KINDS[kind].fit(feats, quality, **params)
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
