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

from llmswitch.routing.decision import Decision
from llmswitch.routing.learned.cost import CostModel
from llmswitch.routing.learned.features import Features, Featurizer, Label, Texts
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


