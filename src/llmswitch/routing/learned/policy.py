"""The cost-aware policy on top of any quality/cost predictor, and its calibration.

Scoring (what each model would give and cost) is kept apart from the policy (which to choose): the
policy picks, per prompt, the candidate maximising ``predicted quality − λ × predicted cost``.
λ is in quality units per USD; ``λ = 0`` picks the best predicted model whatever its price,
large λ the cheapest. `calibrate_lambda` finds λ for a target average cost per request or a
minimum average predicted quality, on predictions for a representative set of prompts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def choose(
    quality: FloatArray, cost: FloatArray, lam: float, mask: BoolArray | None = None
) -> IntArray:
    """Index of the chosen model per row: ``argmax(quality − lam · cost)`` over allowed columns.

    Ties go to the cheaper model. ``mask`` (same shape, or one row) marks allowed candidates.
    """
    score = quality - lam * cost - 1e-12 * cost  # tiny cost term: ties go to the cheaper model
    if mask is not None:
        score = np.where(mask, score, -np.inf)
    chosen: IntArray = np.argmax(score, axis=1).astype(np.int64)
    return chosen


def _mean_chosen(values: FloatArray, chosen: IntArray) -> float:
    return float(values[np.arange(len(chosen)), chosen].mean())


def calibrate_lambda(
    quality: FloatArray,
    cost: FloatArray,
    *,
    target_cost: float | None = None,
    min_quality: float | None = None,
) -> float:
    """λ meeting one target on these predictions.

    ``target_cost``: the smallest λ whose mean predicted cost per request is at most the target.
    ``min_quality``: the largest λ whose mean predicted quality is at least the target. Raises
    `ValueError` if the target cannot be met by any λ.
    """
    if (target_cost is None) == (min_quality is None):
        raise ValueError("give exactly one of target_cost or min_quality")
    scale = float(np.median(cost)) or 1.0
    lo, hi = 0.0, 1e9 / scale

    def ok(lam: float) -> bool:
        chosen = choose(quality, cost, lam)
        if target_cost is not None:
            return _mean_chosen(cost, chosen) <= target_cost
        assert min_quality is not None
        return _mean_chosen(quality, chosen) >= min_quality

    if target_cost is not None:
        if ok(lo):
            return 0.0
        if not ok(hi):
            raise ValueError(f"no λ reaches an average cost of {target_cost:g} USD per request")
        good, bad = hi, lo
    else:
        if not ok(lo):
            raise ValueError(f"no λ reaches an average predicted quality of {min_quality:g}")
        if ok(hi):
            return hi
        good, bad = lo, hi
    floor = 1e-12 / scale  # λ = 0 is an end of the search, but log-scale midpoints need > 0
    for _ in range(200):  # bisection on a log scale (λ spans many orders of magnitude)
        mid = math.sqrt(max(good, floor) * max(bad, floor))
        if ok(mid):
            good = mid
        else:
            bad = mid
        if abs(good - bad) <= 1e-6 * max(good, bad):
            break
    return good


def lambda_from_curve(
    curve: Sequence[Mapping[str, Any]],
    *,
    target_cost: float | None = None,
    min_quality: float | None = None,
) -> float:
    """λ of a replayed curve (``lambda``, ``quality``, ``cost_usd`` per point) meeting one target.

    ``target_cost``: the best-quality point costing at most the target; ``min_quality``: the
    cheapest point reaching it. Raises `ValueError` if no point does.
    """
    if (target_cost is None) == (min_quality is None):
        raise ValueError("give exactly one of target_cost or min_quality")
    if target_cost is not None:
        within = [p for p in curve if p["cost_usd"] <= target_cost]
        if not within:
            raise ValueError(f"no λ reaches an average cost of {target_cost:g} USD per request")
        return float(max(within, key=lambda p: (p["quality"], -p["lambda"]))["lambda"])
    reach = [p for p in curve if p["quality"] >= (min_quality or 0.0)]
    if not reach:
        raise ValueError(f"no λ reaches an average quality of {min_quality:g}")
    return float(min(reach, key=lambda p: (p["cost_usd"], p["lambda"]))["lambda"])
