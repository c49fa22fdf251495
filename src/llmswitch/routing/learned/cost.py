"""Per-model cost prediction: ridge regression of log cost on the prompt's features.

Recorded costs depend on prompt length (input tokens) and on how much the model writes (output
tokens, which varies by model and by kind of prompt), so a per-model regression on the same
features as the quality models captures both. Predictions are clipped to the training range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.learned.features import Features

FloatArray = npt.NDArray[np.float64]


class CostModel:
    """``log cost_m(x) ≈ w_m · features(x) + b_m``, clipped to the training range."""

    def __init__(self, coef: FloatArray, intercept: FloatArray, low: FloatArray, high: FloatArray):
        """Create from fitted arrays."""
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)

    @classmethod
    def fit(cls, features: Features, cost: FloatArray, alpha: float = 1.0) -> CostModel:
        """Fit one ridge regression per model on ``log(cost + eps)``."""
        from sklearn.linear_model import Ridge

        x = features.stacked()
        eps = max(float(cost[cost > 0].min()) * 1e-3, 1e-12) if (cost > 0).any() else 1e-12
        target = np.log(cost + eps)
        ridge = Ridge(alpha=alpha, solver="sparse_cg", max_iter=200)
        ridge.fit(x, target)
        coef = np.atleast_2d(ridge.coef_)
        intercept = np.atleast_1d(ridge.intercept_)
        return cls(coef, intercept, cost.min(axis=0), cost.max(axis=0))

    def predict(self, features: Features) -> FloatArray:
        """Predicted cost (USD) per prompt and model."""
        log_cost = np.asarray(features.stacked() @ self.coef.T) + self.intercept
        out: FloatArray = np.clip(np.exp(log_cost), self.low, self.high)
        return out

    def to_arrays(self) -> dict[str, Any]:
        """Fitted arrays."""
        return {
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept,
            "low": self.low,
            "high": self.high,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> CostModel:
        """Rebuild from saved arrays."""
        return cls(arrays["coef"], arrays["intercept"], arrays["low"], arrays["high"])
