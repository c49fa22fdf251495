"""Per-model quality predictors: kNN, per-model logistic regression, matrix factorisation.

Each predictor maps `Features` of n prompts to an ``(n, m)`` array of predicted quality in [0, 1],
one column per model of the training table, and saves itself as plain arrays (no pickle).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
from scipy import sparse

from llmswitch.routing.learned.features import Features
from llmswitch.routing.learned.simindex import SimilarityIndex

FloatArray = npt.NDArray[np.float64]


class QualityModel(Protocol):
    """Predicts per-model quality for a batch of prompts."""

    kind: ClassVar[str]

    def predict(self, features: Features) -> FloatArray:
        """Return predicted quality, shape ``(n_prompts, n_models)``."""
        ...

    def params(self) -> dict[str, Any]:
        """JSON-serialisable hyper-parameters."""
        ...

    def to_arrays(self) -> dict[str, Any]:
        """Fitted arrays for saving."""
        ...


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))
    return out


# ----------------------------------------------------------------------------------------------
# k nearest neighbours
# ----------------------------------------------------------------------------------------------


class KNNQuality:
    """Similarity-weighted mean quality of the k most similar training prompts (cosine on TF-IDF).

    The neighbour mean is shrunk towards the training mean with ``prior`` pseudo-neighbours.
    ``task_bonus`` is added to the similarity of training prompts of the query's task (when the
    featurizer knows tasks), so neighbours come from the same task first.
    """

    kind: ClassVar[str] = "knn"

    def __init__(
        self,
        train: sparse.csr_matrix,
        quality: FloatArray,
        k: int = 25,
        prior: float = 2.0,
        train_task: FloatArray | None = None,
        task_bonus: float = 0.0,
    ):
        """Create from the training TF-IDF rows and their quality matrix."""
        self.train = sparse.csr_matrix(train, dtype=np.float32)
        self.quality = np.asarray(quality, dtype=np.float64)
        self.k = int(k)
        self.prior = float(prior)
        self.mean = self.quality.mean(axis=0)
        self.train_task = (
            np.zeros((self.quality.shape[0], 0))
            if train_task is None
            else np.asarray(train_task, dtype=np.float64)
        )
        self.task_bonus = float(task_bonus)
        self._index: SimilarityIndex | None = None

    def index(self) -> SimilarityIndex:
        """The training rows as a `SimilarityIndex` (built on first use)."""
        if self._index is None:
            self._index = SimilarityIndex(self.train)
        return self._index

    @classmethod
    def fit(
        cls,
        features: Features,
        quality: FloatArray,
        k: int = 25,
        prior: float = 2.0,
        task_bonus: float = 0.0,
    ) -> KNNQuality:
        """Store the training set (kNN has no other fitting)."""
        return cls(features.tfidf, quality, k, prior, features.task, task_bonus)

    def predict(self, features: Features) -> FloatArray:
        """Predicted quality per model."""
        out = np.empty((len(features), self.quality.shape[1]))
        k = min(self.k, self.train.shape[0])
        query = sparse.csr_matrix(features.tfidf, dtype=np.float32)
        use_task = (
            self.task_bonus > 0
            and features.task is not None
            and features.task.shape[1] == self.train_task.shape[1] > 0
        )
        for start in range(0, len(features), 512):
            stop = start + 512
            sims = self.index().similarities(query[start:stop])
            if use_task:
                assert features.task is not None
                sims += self.task_bonus * (features.task[start:stop] @ self.train_task.T)
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            w = np.clip(np.take_along_axis(sims, top, axis=1), 0.0, None) ** 2
            num = np.einsum("nk,nkm->nm", w, self.quality[top]) + self.prior * self.mean
            out[start:stop] = num / (w.sum(axis=1, keepdims=True) + self.prior)
        return out

    def params(self) -> dict[str, Any]:
        """Hyper-parameters."""
        return {"k": self.k, "prior": self.prior, "task_bonus": self.task_bonus}

    def to_arrays(self) -> dict[str, Any]:
        """Training matrix (CSR parts, float16 values), quality and task one-hot."""
        return {
            "data": self.train.data.astype(np.float16),
            "indices": self.train.indices.astype(np.int32),
            "indptr": self.train.indptr.astype(np.int64),
            "shape": np.asarray(self.train.shape, dtype=np.int64),
            "quality": self.quality.astype(np.float32),
            "task": self.train_task.astype(np.uint8),
        }

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, Any]) -> KNNQuality:
        """Rebuild from saved arrays."""
        shape = tuple(int(x) for x in arrays["shape"])
        train = sparse.csr_matrix(
            (arrays["data"].astype(np.float32), arrays["indices"], arrays["indptr"]), shape=shape
        )
        return cls(
            train,
            arrays["quality"],
            params["k"],
            params["prior"],
            arrays.get("task"),
            params.get("task_bonus", 0.0),
        )


# ----------------------------------------------------------------------------------------------
# per-model logistic regression
# ----------------------------------------------------------------------------------------------


class LogisticQuality:
    """One L2-regularised logistic regression per model on TF-IDF + lexical features."""

    kind: ClassVar[str] = "logistic"

    def __init__(self, coef: FloatArray, intercept: FloatArray, c: float = 1.0):
        """Create from fitted coefficients, shape ``(n_models, n_features)``."""
        self.coef = np.asarray(coef, dtype=np.float64)
        self.coef_t = np.ascontiguousarray(self.coef.T)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.c = float(c)

    def predict(self, features: Features) -> FloatArray:
        """Predicted probability that each model's answer is good."""
        logits = features.dot(self.coef_t) + self.intercept
        return _sigmoid(logits)

    def params(self) -> dict[str, Any]:
        """Hyper-parameters."""
        return {"c": self.c}

    def to_arrays(self) -> dict[str, Any]:
        """Coefficients (float32)."""
        return {"coef": self.coef.astype(np.float32), "intercept": self.intercept}

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, Any]) -> LogisticQuality:
        """Rebuild from saved arrays."""
        return cls(arrays["coef"], arrays["intercept"], params["c"])


# ----------------------------------------------------------------------------------------------
# ridge regression (closed form)
# ----------------------------------------------------------------------------------------------


class RidgeQuality:
    """Linear probability model per model: ridge regression of quality on the stacked features.

    Solved in closed form: the dual ``(X Xᵀ + αI)⁻¹ (Y − ȳ)`` for up to `DUAL_MAX_ROWS` training
    prompts (one Cholesky solve for all models at once), conjugate gradients beyond. Predictions
    are clipped to [0, 1]. Seconds where the per-model logistic regression takes minutes.
    """

    kind: ClassVar[str] = "ridge"

    def __init__(self, coef: FloatArray, intercept: FloatArray, alpha: float = 1.0):
        """Create from fitted coefficients, shape ``(n_models, n_features)``."""
        self.coef = np.asarray(coef, dtype=np.float64)
        self.coef_t = np.ascontiguousarray(self.coef.T)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.alpha = float(alpha)

    def predict(self, features: Features) -> FloatArray:
        """Predicted quality per model, clipped to [0, 1]."""
        out: FloatArray = np.clip(
            features.dot(self.coef_t) + self.intercept, 0.0, 1.0
        )
        return out

    def params(self) -> dict[str, Any]:
        """Hyper-parameters."""
        return {"alpha": self.alpha}

    def to_arrays(self) -> dict[str, Any]:
        """Coefficients (float32)."""
        return {"coef": self.coef.astype(np.float32), "intercept": self.intercept}

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, Any]) -> RidgeQuality:
        """Rebuild from saved arrays."""
        return cls(arrays["coef"], arrays["intercept"], params["alpha"])


# ----------------------------------------------------------------------------------------------
# matrix factorisation (RouteLLM style)
# ----------------------------------------------------------------------------------------------


def _adam_step(
    p: FloatArray, grad: FloatArray, mom: FloatArray, vel: FloatArray, t: int, lr: float
) -> None:
    """One in-place Adam update of ``p``."""
    b1, b2 = 0.9, 0.999
    mom *= b1
    mom += (1 - b1) * grad
    vel *= b2
    vel += (1 - b2) * grad * grad
    p -= lr * (mom / (1 - b1**t)) / (np.sqrt(vel / (1 - b2**t)) + 1e-8)


class MFQuality:
    """Low-rank bilinear model: ``P(good | x, m) = σ(v_m · (Pᵀx) + b_m + u_mᵀ d(x))``.

    As in RouteLLM's matrix-factorisation router, prompts are projected into a small latent space
    shared by all models and each model has an embedding there; trained jointly over all models
    with cross-entropy on (soft) quality labels, full-batch Adam.
    """

    kind: ClassVar[str] = "mf"

    def __init__(
        self,
        proj: FloatArray,
        emb: FloatArray,
        bias: FloatArray,
        dense_w: FloatArray,
        rank: int = 32,
        reg: float = 1e-4,
        epochs: int = 300,
    ):
        """Create from fitted parameters."""
        self.proj = np.asarray(proj, dtype=np.float64)
        self.emb = np.asarray(emb, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)
        self.dense_w = np.asarray(dense_w, dtype=np.float64)
        self.rank, self.reg, self.epochs = int(rank), float(reg), int(epochs)

    @classmethod
    def fit(
        cls,
        features: Features,
        quality: FloatArray,
        rank: int = 32,
        reg: float = 1e-4,
        epochs: int = 300,
        seed: int = 0,
    ) -> MFQuality:
        """Fit by full-batch Adam on the mean cross-entropy."""
        rng = np.random.default_rng(seed)
        x, d = features.tfidf, features.dense
        n, m = quality.shape
        mean = np.clip(quality.mean(axis=0), 1e-3, 1 - 1e-3)
        params = [
            rng.normal(0, 0.1, (x.shape[1], rank)),  # proj
            rng.normal(0, 0.1, (m, rank)),  # emb
            np.log(mean / (1 - mean)),  # bias
            np.zeros((m, d.shape[1])),  # dense_w
        ]
        moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
        lr = 0.02
        for t in range(1, epochs + 1):
            z = np.asarray(x @ params[0])
            logits = z @ params[1].T + params[2] + d @ params[3].T
            g = (_sigmoid(logits) - quality) / n
            grads = [
                np.asarray(x.T @ (g @ params[1])) + reg * params[0],
                g.T @ z + reg * params[1],
                g.sum(axis=0),
                g.T @ d + reg * params[3],
            ]
            for p, gr, (mom, vel) in zip(params, grads, moments, strict=True):
                _adam_step(p, gr, mom, vel, t, lr)
        return cls(params[0], params[1], params[2], params[3], rank, reg, epochs)

    def predict(self, features: Features) -> FloatArray:
        """Predicted quality per model."""
        z = np.asarray(features.tfidf @ self.proj)
        return _sigmoid(z @ self.emb.T + self.bias + features.dense @ self.dense_w.T)

    def params(self) -> dict[str, Any]:
        """Hyper-parameters."""
        return {"rank": self.rank, "reg": self.reg, "epochs": self.epochs}

    def to_arrays(self) -> dict[str, Any]:
        """Fitted parameters (float32)."""
        return {
            "proj": self.proj.astype(np.float32),
            "emb": self.emb,
            "bias": self.bias,
            "dense_w": self.dense_w,
        }

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, Any]) -> MFQuality:
        """Rebuild from saved arrays."""
        return cls(arrays["proj"], arrays["emb"], arrays["bias"], arrays["dense_w"], **params)
