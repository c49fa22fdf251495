"""Learned cascade: per task, call cheap *probe* models first, then keep an answer or escalate.

For every task (and ``"*"`` for prompts of unknown tasks) the cascade holds a few *arms*:

* ``pred:α`` – no probes; route on ``α·q̂(prompt) + (1−α)·q̄(task)``: the base router's
  predicted quality blended with the task's mean quality per model (α = 0 is the task-best
  policy, α = 1 the plain base router).
* ``probe:S`` – first call the probe models ``S`` (their cost is always paid), read their answers,
  and estimate every model's quality *given the answers*: a lookup of the training rows with the
  same answer letters (e.g. ``A|A|C``), shrunk towards the rows with the same agreement pattern
  (``0|0|1``) and then towards the task mean. Then choose, as the λ policy does, the model
  maximising ``q − λ·extra cost``, where a probe's answer costs nothing more and any other model
  costs its price: keep a probe's answer or escalate.

For each λ of a fine grid, the arm with the best out-of-fold ``quality − λ·cost`` on the training
table is stored per task. Offline replay reads the recorded answers of the probes
(``responses_<split>.parquet``), so it still makes zero model calls, and every probe's cost is
counted for every prompt it sees (``Plan.called``). Without recorded responses, only ``pred`` arms
are available.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.routing.learned.memory import NONE, AnswerMemory, answer_letter, relation
from llmswitch.routing.learned.parts import RouterFileError, router_from_arrays, router_to_arrays
from llmswitch.routing.learned.policy import choose
from llmswitch.routing.learned.router import LearnedRouter

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ALL_TASKS = "*"
REMEMBERED = "#remembered"  # suffix of the policy for a task's prompts with a remembered neighbour
BASE_KIND = "ridge"
BASE_PARAMS: dict[str, Any] = {"alpha": 3.0, "task_weight": 1.0, "embed_weight": 0.3}
ALPHAS = (0.0, 0.5, 1.0)
SHRINK = 3.0
ONE_SE = 1.0  # arm selection: the simplest arm within this many standard errors of the best


def normalise_answer(text: str) -> str:
    """Comparable form of an answer: a choice letter if it starts with one, else collapsed text."""
    letter = answer_letter(text)
    return letter if letter else re.sub(r"\s+", " ", text.strip().lower())[:4000]


def answer_keys(answers: Sequence[Sequence[str]]) -> tuple[list[str], list[str]]:
    """Per row of normalised probe answers: the letters key and the agreement-pattern key."""
    letters, patterns = [], []
    for row in answers:
        letters.append("|".join(a if len(a) == 1 else "?" for a in row))
        seen: dict[str, int] = {}
        patterns.append("|".join(str(seen.setdefault(a, len(seen))) for a in row))
    return letters, patterns


def _relation_keys(
    letters: list[str], patterns: list[str], relations: list[str] | None
) -> list[tuple[str | None, str | None]]:
    """Per row, the pattern and letters keys refined by the answer-memory relations (if any)."""
    if relations is None:
        return [(None, None)] * len(letters)
    return [
        (None, None) if set(r) <= {NONE} else (f"p:{p}#{r}", f"l:{lk}#{r}")
        for lk, p, r in zip(letters, patterns, relations, strict=True)
    ]


@dataclass
class ProbeStats:
    """Quality sums and counts per answer key, and the task prior.

    Keys, least specific first: the agreement pattern, the answer letters, then both refined by
    the answer-memory relations (``relations``: keys ``p:<pattern>#<rel>`` and
    ``l:<letters>#<rel>``, only for rows with a remembered neighbour).
    """

    letters: dict[str, list[float]]
    patterns: dict[str, list[float]]
    prior: list[float]
    relations: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        quality: FloatArray,
        letters: list[str],
        patterns: list[str],
        relations: list[str] | None = None,
    ) -> ProbeStats:
        """Sum quality per key; the last entry of each list is the row count."""

        def sums(keys: Sequence[Sequence[str | None]]) -> dict[str, list[float]]:
            out: dict[str, list[float]] = {}
            for i, key in ((i, k) for i, row in enumerate(keys) for k in row if k is not None):
                acc = out.setdefault(key, [0.0] * (quality.shape[1] + 1))
                for j, q in enumerate(quality[i]):
                    acc[j] += float(q)
                acc[-1] += 1.0
            return out

        prior = [float(x) for x in quality.mean(axis=0)]
        rel = _relation_keys(letters, patterns, relations)
        one_key = [[(k,) for k in keys] for keys in (letters, patterns)]
        return cls(sums(one_key[0]), sums(one_key[1]), prior, sums(rel))

    def predict(
        self, letters: list[str], patterns: list[str], relations: list[str] | None = None
    ) -> FloatArray:
        """Estimated quality of every model for each row's probe answers."""
        prior = np.asarray(self.prior)
        out = np.empty((len(letters), len(prior)))
        rel = _relation_keys(letters, patterns, relations)
        for i, (lk, pk) in enumerate(zip(letters, patterns, strict=True)):
            est = prior
            levels: tuple[tuple[dict[str, list[float]], str | None], ...] = (
                (self.patterns, pk),
                (self.letters, lk),
                (self.relations, rel[i][0]),
                (self.relations, rel[i][1]),
            )
            for table, key in levels:
                acc = None if key is None else table.get(key)
                if acc is not None:
                    est = (np.asarray(acc[:-1]) + SHRINK * est) / (acc[-1] + SHRINK)
            out[i] = est
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable form (rounded)."""

        def r(d: dict[str, list[float]]) -> dict[str, list[float]]:
            return {k: [round(x, 4) for x in v] for k, v in d.items()}

        return {
            "letters": r(self.letters),
            "patterns": r(self.patterns),
            "prior": self.prior,
            "relations": r(self.relations),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ProbeStats:
        """Inverse of `to_json`."""
        return cls(
            dict(doc["letters"]),
            dict(doc["patterns"]),
            list(doc["prior"]),
            dict(doc.get("relations", {})),
        )


def probe_plan(
    est: FloatArray,
    probes: Sequence[int],
    cost: FloatArray,
    lam: float,
    targets: Sequence[int] | None = None,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Final model and called models per row: probes always, plus the chosen escalation.

    ``targets``: the models allowed as escalation (default: all).
    """
    extra = np.broadcast_to(cost, est.shape).copy()
    extra[:, list(probes)] = 0.0
    mask = None
    if targets is not None:
        mask = np.zeros(est.shape[1], dtype=bool)
        mask[list(targets)] = True
        mask[list(probes)] = True
    final = choose(est, extra, lam, None if mask is None else mask[None, :])
    called = np.zeros(est.shape, dtype=bool)
    called[:, list(probes)] = True
    called[np.arange(len(final)), final] = True
    return final, called


@dataclass
class TaskPolicy:
    """One task's arms and, per λ of the grid, the arm to use and the grid index of its own λ'.

    Each arm's policy is replayed at every grid λ' on out-of-fold estimates; for a requested λ
    the stored pair is the arm and λ' whose out-of-fold point maximises ``quality − λ·cost``,
    which corrects arms whose estimates are over- or under-confident.
    """

    arms: list[str]
    choice: list[tuple[int, int]]
    stats: dict[str, ProbeStats] = field(default_factory=dict)
    mean_cost: list[float] = field(default_factory=list)
    mean_quality: list[float] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)


def pred_estimate(arm: str, pred_q: FloatArray, task_q: FloatArray) -> FloatArray:
    """Quality estimate of a ``pred:<α>`` arm: α × the base router's + (1 − α) × the task means."""
    alpha = float(arm[5:])
    out: FloatArray = alpha * pred_q + (1.0 - alpha) * task_q
    return out


Keys = tuple[list[str], list[str], list[str] | None]


@dataclass
class CascadeRouter:
    """A base `LearnedRouter` plus per-task probe/escalation policies (see module doc)."""

    base: LearnedRouter
    policies: dict[str, TaskPolicy]
    grid: list[float]
    lam: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "cascade"
    memory: AnswerMemory | None = None

    def search_task(self, task: str | None) -> str | None:
        """The task to search the answer memory in: the task if it has its own policy."""
        return task if task is not None and task in self.policies else None

    def known_answers(self, prompts: Sequence[str], task: str | None) -> list[str | None] | None:
        """Remembered good answers of the prompts' nearest training questions (see `memory`)."""
        if self.memory is None:
            return None
        return self.memory.known_answers(prompts, [self.search_task(task)] * len(prompts))

    @property
    def models(self) -> tuple[str, ...]:
        """Models of the base router."""
        return self.base.models

    def policy_key(self, task: str | None, remembered: bool = False) -> str:
        """Key of the policy for ``task`` (all tasks if unknown), for prompts with a remembered
        near-duplicate training question if ``remembered`` and such a policy exists.
        """
        key = task if task is not None and task in self.policies else ALL_TASKS
        return key + REMEMBERED if remembered and key + REMEMBERED in self.policies else key

    def policy_for(self, task: str | None, remembered: bool = False) -> TaskPolicy:
        """The policy of `policy_key`."""
        return self.policies[self.policy_key(task, remembered)]

    def grid_index(self, lam: float) -> int:
        """Index of the grid λ nearest to ``lam`` (on a log scale; 0 maps to 0)."""
        if lam <= 0:
            return 0
        logs = [math.log(g) if g > 0 else -math.inf for g in self.grid]
        return int(np.argmin([abs(math.log(lam) - g) for g in logs]))

    def answer_probability(
        self, task: str | None, model: str, answer: str, prompt: str | None = None
    ) -> float | None:
        """P(``model``'s ``answer`` is good) from the training rows where ``model`` gave the same
        normalised answer letter (task first, then all tasks), refined by the answer memory when
        ``prompt`` is given and a near-duplicate training question is remembered; `None` if
        neither signal applies.
        """
        if model not in self.models:
            return None
        j = self.models.index(model)
        known = None if prompt is None else self.known_answers([prompt], task)
        relations = None if known is None else [relation(prompt or "", known[0], [answer])]
        if len(normalise_answer(answer)) != 1 and (relations is None or relations[0] == NONE):
            return None  # free text: the answer itself carries no learned signal here
        letters, patterns = answer_keys([[normalise_answer(answer)]])
        single = self.info.get("single", {})
        for group in (task or ALL_TASKS, ALL_TASKS):
            doc = single.get(group, {}).get(str(j))
            if doc:
                stats = ProbeStats.from_json(doc)
                return float(stats.predict(letters, patterns, relations)[0, j])
        return None

    def to_file_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Meta and arrays for `save_router`."""
        base_meta, base_arrays = router_to_arrays(self.base)
        policies = {
            task: {
                "arms": p.arms,
                "choice": p.choice,
                "stats": {a: s.to_json() for a, s in p.stats.items()},
                "mean_cost": p.mean_cost,
                "mean_quality": p.mean_quality,
                "targets": p.targets,
            }
            for task, p in self.policies.items()
        }
        arrays = {f"base.{k}": v for k, v in base_arrays.items()}
        memory_meta = None
        if self.memory is not None:
            memory_meta, memory_arrays = self.memory.to_file_parts()
            arrays.update({f"memory.{k}": v for k, v in memory_arrays.items()})
        meta = {
            "kind": "cascade",
            "cascade_version": 3,
            "memory": memory_meta,
            "models": list(self.models),
            "lambda": self.lam,
            "grid": self.grid,
            "policies": policies,
            "base": base_meta,
            "info": self.info,
        }
        return meta, arrays

    @classmethod
    def from_file_parts(cls, meta: dict[str, Any], arrays: dict[str, Any]) -> CascadeRouter:
        """Inverse of `to_file_parts`."""
        if meta.get("cascade_version") not in (2, 3):
            raise RouterFileError(
                "cascade router file of an older format; retrain it with `llmswitch router train`"
            )
        try:
            base = router_from_arrays(
                meta["base"], {k[5:]: v for k, v in arrays.items() if k.startswith("base.")}
            )
            policies = {
                task: TaskPolicy(
                    list(p["arms"]),
                    [(int(a), int(li)) for a, li in p["choice"]],
                    {a: ProbeStats.from_json(s) for a, s in p["stats"].items()},
                    list(p["mean_cost"]),
                    list(p["mean_quality"]),
                    [int(j) for j in p.get("targets", [])],
                )
                for task, p in meta["policies"].items()
            }
            _check_policies(policies, len(meta["grid"]), len(base.models))
            memory = None
            if meta.get("memory"):
                parts = {k[7:]: v for k, v in arrays.items() if k.startswith("memory.")}
                memory = AnswerMemory.from_file_parts(meta["memory"], parts)
            return cls(
                base,
                policies,
                [float(x) for x in meta["grid"]],
                float(meta["lambda"]),
                dict(meta.get("info", {})),
                memory=memory,
            )
        except RouterFileError:
            raise
        except (KeyError, TypeError) as exc:
            raise RouterFileError(f"cascade router file is inconsistent: missing {exc}") from None
        except ValueError as exc:
            raise RouterFileError(f"cascade router file is inconsistent: {exc}") from None


def _check_policies(policies: dict[str, TaskPolicy], n_grid: int, n_models: int) -> None:
    """Raise `ValueError` unless every policy can be served: see `CascadeRouter.from_file_parts`."""
    if ALL_TASKS not in policies:
        raise ValueError("no policy for unknown tasks ('*')")
    for key, pol in policies.items():
        bad = (len(pol.choice) != n_grid
               or any(not (0 <= a < len(pol.arms) and 0 <= li < n_grid) for a, li in pol.choice)
               or len(pol.mean_cost) != n_models or len(pol.mean_quality) != n_models
               or any(not 0 <= j < n_models for j in pol.targets))
        for arm in pol.arms:
            if arm.startswith("probe:"):
                probes = [int(x) for x in arm[6:].split(",")]
                stats = pol.stats.get(arm)
                bad = bad or stats is None or len(stats.prior) != n_models or any(
                    not 0 <= j < n_models for j in probes)
            elif arm.startswith("pred:"):
                float(arm[5:])
            else:
                bad = True
        if bad:
            raise ValueError(f"policy {key!r} does not fit its grid of {n_grid} λs and "
                             f"{n_models} models")


