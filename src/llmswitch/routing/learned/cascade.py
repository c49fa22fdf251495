"""Learned cascade: call cheap models first and escalate only when their answers look unreliable.

Per prompt, the base router's predictions give a *chain*: the models on the predicted
cost-quality frontier, cheapest first (at most ``max_calls``). After calling the first ``j`` models
of the chain, the candidate answer is the latest model's (normalised) answer, and a
logistic *scorer* predicts the probability ``p_j`` that this answer is good, from the agreement
between the answers so far, the base router's predictions and the answer's shape. The policy
escalates to the next chain model while ``q̂_top − p_j > λ · ĉ_next`` (the possible gain exceeds
λ times the next call's predicted cost). Trained on tables with recorded responses; offline replay
reads the recorded answers, so it still makes zero model calls. Without responses the cascade
falls back to its base router.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.table import OutcomeTable
from llmswitch.routing.learned.router import LearnedRouter, Plan, train_router

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str], None]
_LETTER = re.compile(r"^\(?([A-Ea-e])\)?(?:[\s.:)\]]|$)")
_ANSWER_IS = re.compile(r"answer(?: is)?\s*[:\-]?\s*\(?([A-E])\b")
N_STATE = 11


def normalise_answer(text: str) -> str:
    """Comparable form of an answer: a choice letter if it starts with one, else collapsed text."""
    t = text.strip()
    m = _LETTER.match(t) or _ANSWER_IS.search(t[:200])
    if m:
        return m.group(1).upper()
    return re.sub(r"\s+", " ", t.lower())[:4000]


def frontier_chain(quality: FloatArray, cost: FloatArray, max_calls: int) -> list[int]:
    """Models on the predicted frontier (each better than every cheaper one), cheapest first."""
    order = sorted(range(len(cost)), key=lambda j: (cost[j], -quality[j]))
    chain: list[int] = []
    for j in order:
        if not chain or quality[j] > quality[chain[-1]] + 1e-9:
            chain.append(j)
    if len(chain) > max_calls:
        chain = [*chain[: max_calls - 1], chain[-1]]
    return chain


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def state_features(
    chain: Sequence[int],
    answers: Sequence[str],
    raw: Sequence[str],
    quality: FloatArray,
    n_models: int,
) -> tuple[FloatArray, int]:
    """Features of the state after calling ``chain`` (answers aligned), and the answering model."""
    support = set(answers)
    vote = answers[-1]  # the latest (strongest predicted) model's answer; earlier ones vouch for it
    agree = [j for j, a in zip(chain, answers, strict=True) if a == vote]
    disagree = [j for j, a in zip(chain, answers, strict=True) if a != vote]
    answer_model = max(agree, key=lambda j: quality[j])
    k = len(chain)
    f = np.zeros(N_STATE + 2 * n_models)
    f[:N_STATE] = [
        k,
        len(agree) / k,
        len(agree),
        len(support),
        sum(_logit(quality[j]) for j in agree),
        sum(_logit(quality[j]) for j in disagree),
        max(quality[j] for j in agree),
        max((quality[j] for j in disagree), default=0.0),
        float(len(vote) <= 3),
        math.log1p(len(raw[chain.index(answer_model)])),
        quality[chain[-1]] if k else 0.0,
    ]
    for j in agree:
        f[N_STATE + j] = 1.0
    for j in disagree:
        f[N_STATE + n_models + j] = 1.0
    return f, answer_model


@dataclass
class _Trajectory:
    chain: list[int]
    states: list[FloatArray]
    answer_models: list[int]


def _trajectories(
    pred_q: FloatArray,
    pred_c: FloatArray,
    responses: dict[str, tuple[str, ...]],
    models: Sequence[str],
    max_calls: int,
) -> list[_Trajectory]:
    out = []
    for i in range(pred_q.shape[0]):
        usable = np.asarray([m in responses for m in models])
        q = np.where(usable, pred_q[i], -1.0)
        chain = [j for j in frontier_chain(q, pred_c[i], max_calls) if usable[j]]
        raw = [responses[models[j]][i] for j in chain]
        answers = [normalise_answer(r) for r in raw]
        states, answer_models = [], []
        for k in range(1, len(chain) + 1):
            f, am = state_features(chain[:k], answers[:k], raw[:k], pred_q[i], len(models))
            states.append(f)
            answer_models.append(am)
        out.append(_Trajectory(chain, states, answer_models))
    return out


@dataclass
class CascadeRouter:
    """A base `LearnedRouter` plus a learned acceptance scorer over recorded/returned answers."""

    base: LearnedRouter
    coef: FloatArray
    intercept: float
    mean: FloatArray
    scale: FloatArray
    lam: float = 0.0
    max_calls: int = 4
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "cascade"

    @property
    def models(self) -> tuple[str, ...]:
        """Models of the base router."""
        return self.base.models

    def accept_probability(self, state: FloatArray) -> float:
        """Predicted probability that the state's voted answer is good."""
        z = float(((state - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def replay_table(
        self, table: OutcomeTable, lambdas: Sequence[float], notes: list[str]
    ) -> list[Plan]:
        """Plans for every λ using the table's recorded responses (base router if none)."""
        if table.responses is None:
            notes.append("table has no recorded responses: replayed the cascade's base router only")
            return self.base.replay(list(table.prompts), lambdas)
        pred = self.base.predict(list(table.prompts))
        trajs = _trajectories(
            pred.quality, pred.cost, table.responses, table.models, self.max_calls
        )
        return _plans(self, trajs, pred.quality, pred.cost, lambdas)

    def to_file_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Meta and arrays for `save_router`."""
        from llmswitch.routing.learned.io import router_to_arrays

        base_meta, base_arrays = router_to_arrays(self.base)
        arrays = {f"base.{k}": v for k, v in base_arrays.items()}
        arrays.update(
            {"scorer/coef": self.coef, "scorer/mean": self.mean, "scorer/scale": self.scale}
        )
        meta = {
            "kind": "cascade",
            "models": list(self.models),
            "lambda": self.lam,
            "max_calls": self.max_calls,
            "intercept": self.intercept,
            "base": base_meta,
            "info": self.info,
        }
        return meta, arrays

    @classmethod
    def from_file_parts(cls, meta: dict[str, Any], arrays: dict[str, Any]) -> CascadeRouter:
        """Inverse of `to_file_parts`."""
        from llmswitch.routing.learned.io import RouterFileError, router_from_arrays

        try:
            base = router_from_arrays(
                meta["base"], {k[5:]: v for k, v in arrays.items() if k.startswith("base.")}
            )
            return cls(
                base,
                arrays["scorer/coef"],
                float(meta["intercept"]),
                arrays["scorer/mean"],
                arrays["scorer/scale"],
                float(meta["lambda"]),
                int(meta["max_calls"]),
                dict(meta.get("info", {})),
            )
        except KeyError as exc:
            raise RouterFileError(f"cascade router file is inconsistent: missing {exc}") from None


def _plans(
    router: CascadeRouter,
    trajs: list[_Trajectory],
    pred_q: FloatArray,
    pred_c: FloatArray,
    lambdas: Sequence[float],
) -> list[Plan]:
    n, m = pred_q.shape
    probs = [[router.accept_probability(s) for s in t.states] for t in trajs]
    plans = []
    for lam in lambdas:
        final = np.zeros(n, dtype=np.int64)
        called = np.zeros((n, m), dtype=bool)
        for i, t in enumerate(trajs):
            top = pred_q[i, t.chain[-1]]
            k = 0
            while (
                k + 1 < len(t.chain) and top * (1 - probs[i][k]) > lam * pred_c[i, t.chain[k + 1]]
            ):
                k += 1
            called[i, t.chain[: k + 1]] = True
            final[i] = t.answer_models[k]
        plans.append(Plan(float(lam), final, called))
    return plans


def train_cascade(
    table: OutcomeTable,
    base_kind: str = "logistic",
    folds: int = 3,
    lam: float = 0.0,
    max_calls: int = 4,
    progress: Progress | None = None,
) -> CascadeRouter:
    """Train the base router and the acceptance scorer (on out-of-fold base predictions)."""
    from sklearn.linear_model import LogisticRegression

    from llmswitch.evals.crossval import oof_predictions
    from llmswitch.routing.learned.train import default_params

    if table.responses is None:
        raise ValueError(
            "a cascade needs recorded responses (responses_<split>.parquet or --responses)"
        )
    params = default_params(base_kind)
    q, c = oof_predictions(table, base_kind, params, folds, progress)
    trajs = _trajectories(q, c, table.responses, table.models, max_calls)
    x = np.asarray([s for t in trajs for s in t.states])
    y = np.asarray([table.quality[i, am] for i, t in enumerate(trajs) for am in t.answer_models])
    mean, scale = x.mean(axis=0), np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    xs = (x - mean) / scale
    labels = (y >= 0.5).astype(np.int64)
    clf = LogisticRegression(C=1.0, max_iter=1000)
    clf.fit(xs, labels)
    base = train_router(table, base_kind, params)
    info = {
        "n_train": len(table),
        "source": table.source,
        "task_stats": base.info["task_stats"],
        "base_kind": base_kind,
        "params": params,
    }
    return CascadeRouter(
        base, clf.coef_[0], float(clf.intercept_[0]), mean, scale, lam, max_calls, info
    )


def cross_validate_cascade(
    table: OutcomeTable,
    folds: int = 5,
    progress: Progress | None = None,
    base_kind: str = "logistic",
) -> dict[str, Any]:
    """Cross-validated ``router eval`` report of the cascade (needs recorded responses)."""
    from llmswitch.evals.crossval import oof_task_predictions
    from llmswitch.evals.replay import default_lambdas, evaluate
    from llmswitch.evals.table import kfold_indices

    lambdas = default_lambdas(table)
    n, m = table.quality.shape
    finals = np.zeros((len(lambdas), n), dtype=np.int64)
    called = np.zeros((len(lambdas), n, m), dtype=bool)
    for f, (train, test) in enumerate(kfold_indices(table, folds)):
        if progress:
            progress(f"cascade: fold {f + 1}/{folds}")
        router = train_cascade(table.subset(train), base_kind)
        for li, plan in enumerate(router.replay_table(table.subset(test), lambdas, [])):
            finals[li, test] = plan.final
            called[li, test] = plan.called
    plans = [Plan(lam, finals[i], called[i]) for i, lam in enumerate(lambdas)]
    report = evaluate(table, plans, oof_task_predictions(table, folds), lambdas)
    report["cross_validation"] = {"folds": folds, "kind": "cascade", "params": {"base": base_kind}}
    return report
