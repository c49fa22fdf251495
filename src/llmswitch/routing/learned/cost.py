"""Per-model cost prediction: ridge regression of log cost on the prompt's dense features.

Recorded costs depend on prompt length (input tokens) and on how much the model writes (output
tokens, which varies by model and by kind of prompt), so a per-model regression on the lexical
statistics (log length, lines, code and math marks) and the task one-hot (when the featurizer
has one) captures both. Closed form; predictions are clipped to the training range.
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
        """Fit one ridge regression per model on ``log(cost + eps)`` (normal equations)."""
        x = features.dense
        eps = max(float(cost[cost > 0].min()) * 1e-3, 1e-12) if (cost > 0).any() else 1e-12
        target = np.log(cost + eps)
        x_mean, y_mean = x.mean(axis=0), target.mean(axis=0)
        xc = x - x_mean
        gram = xc.T @ xc + alpha * np.eye(x.shape[1])
        coef = np.linalg.solve(gram, xc.T @ (target - y_mean)).T
        intercept = y_mean - coef @ x_mean
        return cls(coef, intercept, cost.min(axis=0), cost.max(axis=0))

    def predict(self, features: Features) -> FloatArray:
        """Predicted cost (USD) per prompt and model."""
        log_cost = np.asarray(features.dense @ self.coef.T) + self.intercept
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
