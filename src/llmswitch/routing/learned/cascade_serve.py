"""A learned cascade for one live request: which models to probe, then whom to answer with.

`router eval` replays a `CascadeRouter` over recorded answers; a route serves the same policy
with live calls in two pure steps around them:

1. `plan_probes` reads the prompt (base router predictions, the answer memory) and, for the
   request's λ, the arm its task's policy stored: either no probe and a final model, or the
   cheap models to call first.
2. `choose_after_probes` turns the probes' answers into the same answer keys the policy was
   trained on (choice letters, agreement pattern, relation to a remembered answer) and picks
   the final model: a probe (its answer is used as is) or an escalation target.

``allowed`` restricts every choice to the table models the route maps to a target; an arm that
would probe an unmapped model falls back to the base router's prediction (arm ``pred:1``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from llmswitch.routing.learned.cascade import (
    CascadeRouter,
    TaskPolicy,
    answer_keys,
    normalise_answer,
    pred_estimate,
    probe_plan,
)
from llmswitch.routing.learned.memory import relation
from llmswitch.routing.learned.policy import choose

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProbePlan:
    """What to do first for one request."""

    arm: str
    """The stored arm: ``pred:<α>`` (no probe) or ``probe:<i,j>``."""
    lam: float
    """The arm's own λ′ (quality per USD)."""
    probes: tuple[str, ...]
    """Table models to call first (empty for a ``pred`` arm)."""
    final: str | None
    """The answering model when there is no probe."""
    policy: str
    """The policy key (task, ``#remembered`` when the memory knows a near-duplicate)."""
    known_answer: str | None
    """The remembered good answer of the nearest training question, if any."""
    predicted_quality: dict[str, float]
    predicted_cost: dict[str, float]


def _mask(models: Sequence[str], allowed: Collection[str]) -> npt.NDArray[np.bool_]:
    return np.asarray([m in allowed for m in models], dtype=bool)


def plan_probes(
    router: CascadeRouter,
    prompt: str,
    task: str | None,
    lam: float,
    allowed: Collection[str],
    labels: Sequence[str] | None = None,
) -> ProbePlan:
    """Step 1: the arm for this prompt at ``lam`` and the probes to call (see module doc).

    ``labels``: the base router's labels (default: just the task)."""
    models = router.models
    label = list(labels) if labels else ([task] if task is not None else None)
    pred = router.base.predict([prompt], [label] if label is not None else None)
    found = router.known_answers([prompt], task)
    known = None if found is None else found[0]
    key = router.policy_key(task, known is not None)
    pol = router.policies[key]
    a, inner = pol.choice[router.grid_index(lam)]
    arm, lam_arm = pol.arms[a], router.grid[inner]
    probes: tuple[str, ...] = ()
    if arm.startswith("probe:"):
        probes = tuple(models[int(x)] for x in arm[6:].split(","))
        if not all(p in allowed for p in probes):
            arm, lam_arm, probes = "pred:1", lam, ()
    final = None
    if not probes:
        task_q = np.broadcast_to(np.asarray(pol.mean_quality), pred.quality.shape)
        est = pred_estimate(arm, pred.quality, task_q)
        mask = _mask(models, allowed)[None, :]
        final = models[int(choose(est, pred.cost, lam_arm, mask)[0])]
    return ProbePlan(
        arm,
        lam_arm,
        probes,
        final,
        key,
        known,
        {m: float(q) for m, q in zip(models, pred.quality[0], strict=True)},
        {m: float(c) for m, c in zip(models, pred.cost[0], strict=True)},
    )


def choose_after_probes(
    router: CascadeRouter,
    plan: ProbePlan,
    prompt: str,
    answers: Sequence[str],
    allowed: Collection[str],
) -> tuple[str, dict[str, float]]:
    """Step 2: the final model given the probes' raw ``answers`` (in ``plan.probes`` order),
    and the policy's quality estimate of every model for them."""
    models = router.models
    pol: TaskPolicy = router.policies[plan.policy]
    letters, patterns = answer_keys([[normalise_answer(a) for a in answers]])
    relations = None
    if router.memory is not None:
        relations = [relation(prompt, plan.known_answer, list(answers))]
    est = pol.stats[plan.arm].predict(letters, patterns, relations)
    probes = [models.index(p) for p in plan.probes]
    targets = [j for j in (pol.targets or range(len(models))) if models[j] in allowed]
    final, _ = probe_plan(est, probes, np.asarray(pol.mean_cost), plan.lam, targets)
    return models[int(final[0])], {m: float(q) for m, q in zip(models, est[0], strict=True)}
