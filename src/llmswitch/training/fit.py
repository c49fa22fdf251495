"""Fitting the quality models that need scikit-learn or SciPy's solvers (offline only).

The serve-time classes (`routing.learned.quality`) only predict; these functions build them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from llmswitch.routing.learned.features import Features
from llmswitch.routing.learned.quality import (
    KNNQuality,
    LogisticQuality,
    MFQuality,
    RidgeQuality,
)

FloatArray = npt.NDArray[np.float64]


def _soft_label_rows(x: sparse.csr_matrix, q: FloatArray) -> tuple[sparse.csr_matrix, Any, Any]:
    """Rows duplicated as (label 1, weight q) and (label 0, weight 1-q) for fractional quality."""
    if np.all((q == 0) | (q == 1)):
        return x, q.astype(np.int64), np.ones(len(q))
    xx = sparse.vstack([x, x], format="csr")
    y = np.concatenate([np.ones(len(q)), np.zeros(len(q))]).astype(np.int64)
    return xx, y, np.concatenate([q, 1.0 - q]) + 1e-6


DUAL_MAX_ROWS = 6000



def fit_logistic(features: Features, quality: FloatArray, c: float = 1.0) -> LogisticQuality:
    """Fit one classifier per model (constant models get a constant prediction)."""
    from sklearn.linear_model import LogisticRegression

    x = features.stacked()
    coef = np.zeros((quality.shape[1], x.shape[1]))
    intercept = np.zeros(quality.shape[1])
    for j in range(quality.shape[1]):
        q = quality[:, j]
        mean = float(np.clip(q.mean(), 1e-4, 1 - 1e-4))
        if q.min() == q.max():
            intercept[j] = np.log(mean / (1 - mean))
            continue
        xx, y, w = _soft_label_rows(x, q)
        clf = LogisticRegression(C=c, max_iter=300, solver="lbfgs")
        clf.fit(xx, y, sample_weight=w)
        coef[j] = clf.coef_[0]
        intercept[j] = clf.intercept_[0]
    return LogisticQuality(coef, intercept, c)


def fit_ridge(features: Features, quality: FloatArray, alpha: float = 1.0) -> RidgeQuality:
    """Fit all models' regressions at once."""
    x = features.stacked()
    mean = quality.mean(axis=0)
    target = quality - mean
    if x.shape[0] <= DUAL_MAX_ROWS:
        from scipy.linalg import solve

        gram = np.asarray((x @ x.T).todense(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += alpha
        dual = solve(gram, target, assume_a="pos")
        coef = np.asarray(x.T @ dual).T
    else:
        from sklearn.linear_model import Ridge

        ridge = Ridge(alpha=alpha, solver="sparse_cg", max_iter=300, fit_intercept=False)
        ridge.fit(x, target)
        coef = np.atleast_2d(ridge.coef_)
    return RidgeQuality(coef, mean, alpha)


FITTERS: dict[str, Any] = {
    "knn": KNNQuality.fit,
    "logistic": fit_logistic,
    "ridge": fit_ridge,
    "mf": MFQuality.fit,
}
"""Kind -> function(features, quality, **params) returning a fitted `QualityModel`."""

