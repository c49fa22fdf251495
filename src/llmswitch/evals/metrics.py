"""Cost-quality metrics: the non-decreasing convex hull, AIQ and cost shares at a quality target.

Definitions (following RouterBench, Hu et al. 2024):

* A router swept over its cost knob (λ) yields points (mean cost per prompt, mean quality).
* Any point on a segment between two points is reachable by mixing the two settings at random, so
  the achievable frontier is the *non-decreasing convex hull*: drop dominated points, then take the
  upper concave envelope. Beyond its most expensive point the hull stays flat; below its cheapest
  point nothing is reachable (quality 0).
* **AIQ** is the hull's mean height over ``[c_min, c_max]``, the cost range of the single models on
  the same table: ``AIQ = 1/(c_max - c_min) * ∫ hull(c) dc``.
* **cost share at X%**: the least hull cost whose quality reaches X% of the best single model's
  quality, divided by that model's cost (``None`` if never reached).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass(frozen=True)
class Point:
    """One operating point: mean cost per prompt (USD) and mean quality."""

    cost: float
    quality: float


def nondecreasing_hull(points: Sequence[Point]) -> list[Point]:
    """Return the non-decreasing upper convex hull of ``points``, sorted by cost."""
    pts = sorted(points, key=lambda p: (p.cost, -p.quality))
    frontier: list[Point] = []
    for p in pts:  # keep points that strictly improve quality as cost grows
        if not frontier or p.quality > frontier[-1].quality:
            frontier.append(p)
    hull: list[Point] = []
    for p in frontier:  # upper concave envelope (monotone chain)
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    return hull


def _cross(a: Point, b: Point, c: Point) -> float:
    return (b.cost - a.cost) * (c.quality - a.quality) - (b.quality - a.quality) * (c.cost - a.cost)


def hull_quality_at(hull: Sequence[Point], cost: float) -> float:
    """Quality of the hull at ``cost`` (0 below its cheapest point, flat beyond its last)."""
    if not hull or cost < hull[0].cost:
        return 0.0
    for a, b in pairwise(hull):
        if cost <= b.cost:
            if b.cost == a.cost:
                return b.quality
            t = (cost - a.cost) / (b.cost - a.cost)
            return a.quality + t * (b.quality - a.quality)
    return hull[-1].quality


def aiq(points: Sequence[Point], c_min: float, c_max: float) -> float:
    """Average improvement in quality: the hull's mean height over ``[c_min, c_max]``."""
    hull = nondecreasing_hull(points)
    if not hull or c_max <= c_min:
        return hull_quality_at(hull, c_max) if hull else 0.0
    knots = sorted({c_min, c_max, *(p.cost for p in hull if c_min < p.cost < c_max)})
    area = 0.0
    for lo, hi in pairwise(knots):
        # the hull is linear between knots except for the jump at its first point
        start = max(lo, hull[0].cost) if hull[0].cost < hi else hi
        if start < hi:
            area += 0.5 * (hull_quality_at(hull, start) + hull_quality_at(hull, hi)) * (hi - start)
    return area / (c_max - c_min)


def cost_at_quality(points: Sequence[Point], target: float) -> float | None:
    """Least hull cost reaching mean quality ``target`` (interpolated), or ``None``."""
    hull = nondecreasing_hull(points)
    if not hull or hull[-1].quality < target - 1e-12:
        return None
    if hull[0].quality >= target:
        return hull[0].cost
    for a, b in pairwise(hull):
        if b.quality >= target:
            t = (target - a.quality) / (b.quality - a.quality)
            return a.cost + t * (b.cost - a.cost)
    return None  # pragma: no cover - unreachable


def mix_at_quality(points: Sequence[Point], target: float) -> tuple[int, int, float] | None:
    """Indices (into ``points``) of the two hull points mixed to reach ``target``, and weight."""
    hull = nondecreasing_hull(points)
    if not hull or hull[-1].quality < target - 1e-12:
        return None
    index = {(p.cost, p.quality): i for i, p in enumerate(points)}
    if hull[0].quality >= target:
        i = index[(hull[0].cost, hull[0].quality)]
        return i, i, 0.0
    for a, b in pairwise(hull):
        if b.quality >= target:
            t = (target - a.quality) / (b.quality - a.quality)
            return index[(a.cost, a.quality)], index[(b.cost, b.quality)], t
    return None  # pragma: no cover


def cost_share_at(points: Sequence[Point], target: float, reference_cost: float) -> float | None:
    """``cost_at_quality(points, target) / reference_cost`` or ``None`` if never reached."""
    cost = cost_at_quality(points, target)
    if cost is None or reference_cost <= 0:
        return None
    return cost / reference_cost


def lambda_grid(cost_scale: float, n: int = 61) -> list[float]:
    """λ values (quality per USD) from 0 to "always cheapest", geometric around ``1/cost_scale``."""
    scale = cost_scale if cost_scale > 0 else 1.0
    middle = np.geomspace(1e-3, 1e3, n) / scale
    return [0.0, *(float(x) for x in middle), 1e9 / scale]
