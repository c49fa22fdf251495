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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.table import OutcomeTable, kfold_indices
from llmswitch.routing.learned.memory import NONE, AnswerMemory, answer_letter, relation
from llmswitch.routing.learned.policy import choose
from llmswitch.routing.learned.router import LearnedRouter, Plan, table_labels, train_router

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Progress = Callable[[str], None]
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


def probe_answers(
    responses: dict[str, tuple[str, ...]], models: Sequence[str], probes: Sequence[int]
) -> list[list[str]]:
    """Normalised recorded answers of the probe models, one list per row."""
    cols = [[normalise_answer(x) for x in responses[models[j]]] for j in probes]
    return [list(row) for row in zip(*cols, strict=True)] if cols else []


def mean_frontier(quality: FloatArray, cost: FloatArray) -> list[int]:
    """Models whose mean quality beats every cheaper model's (by mean cost), cheapest first."""
    q, c = quality.mean(axis=0), cost.mean(axis=0)
    order = sorted(range(len(q)), key=lambda j: (c[j], -q[j]))
    frontier: list[int] = []
    for j in order:
        if not frontier or q[j] > q[frontier[-1]] + 1e-9:
            frontier.append(j)
    return frontier


def probe_candidates(
    quality: FloatArray, cost: FloatArray, usable: Sequence[int], max_probes: int = 4
) -> list[tuple[int, ...]]:
    """Probe sets to try: subsets (size 1–3) of the cheap frontier models with responses.

    Cheap frontier: models better than every cheaper model, excluding the best one, costing at
    most a quarter of the best model's mean cost; at most ``max_probes`` of them (the best).
    """
    q, c = quality.mean(axis=0), cost.mean(axis=0)
    best = int(np.argmax(q - 1e-12 * c))
    frontier = mean_frontier(quality, cost)
    cheap = [j for j in frontier if j != best and j in usable and c[j] <= 0.25 * c[best]]
    cheap = sorted(sorted(cheap, key=lambda j: -q[j])[:max_probes])
    return [s for k in (1, 2, 3) for s in combinations(cheap, k)]


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


def _arm_plan(
    arm: str,
    rows_q: FloatArray,
    rows_c: FloatArray,
    est: FloatArray,
    lam: float,
    task_cost: FloatArray,
    targets: Sequence[int] | None = None,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Plan of one arm: ``est`` is the arm's quality estimate (n × m)."""
    if arm.startswith("probe:"):
        probes = [int(x) for x in arm[6:].split(",")]
        return probe_plan(est, probes, task_cost, lam, targets)
    final = choose(est, rows_c, lam)
    called = np.zeros(est.shape, dtype=bool)
    called[np.arange(len(final)), final] = True
    return final, called


def pred_estimate(arm: str, pred_q: FloatArray, task_q: FloatArray) -> FloatArray:
    """Quality estimate of a ``pred:<α>`` arm: α × the base router's + (1 − α) × the task means."""
    alpha = float(arm[5:])
    out: FloatArray = alpha * pred_q + (1.0 - alpha) * task_q
    return out


Keys = tuple[list[str], list[str], list[str] | None]


def _pick(keys: Keys, index: IntArray) -> Keys:
    letters, patterns, relations = keys
    rel = None if relations is None else [relations[i] for i in index]
    return [letters[i] for i in index], [patterns[i] for i in index], rel


def _oof_probe_estimates(quality: FloatArray, keys: Keys, folds: list[IntArray]) -> FloatArray:
    """Out-of-fold lookup estimates on one task's rows (``folds``: test index per fold)."""
    est = np.zeros(quality.shape)
    everything = np.arange(len(keys[0]))
    for test in folds:
        train = np.setdiff1d(everything, test)
        stats = ProbeStats.fit(quality[train], *_pick(keys, train))
        est[test] = stats.predict(*_pick(keys, test))
    return est


def oof_known_answers(
    table: OutcomeTable,
    memory: AnswerMemory | None,
    rows: IntArray,
    search_task: str | None,
    folds: list[IntArray],
) -> list[str | None] | None:
    """Per row of ``table`` (rows ``rows`` of the memory's table): the remembered good answer of
    its nearest neighbour outside its own fold (``folds``: test index per fold), or `None`.
    """
    if memory is None:
        return None
    known: list[str | None] = [None] * len(table)
    for test in folds:
        found = memory.without_rows(rows[test]).known_answers(
            [table.prompts[i] for i in test], [search_task] * len(test)
        )
        for i, answer in zip(test, found, strict=True):
            known[int(i)] = answer
    return known


def probe_keys(
    table: OutcomeTable, probes: Sequence[int], known: Sequence[str | None] | None
) -> Keys:
    """Letters, agreement-pattern and (with ``known`` answers) relation keys of a probe set."""
    assert table.responses is not None
    letters, patterns = answer_keys(probe_answers(table.responses, table.models, probes))
    relations = None
    if known is not None:
        raw = [table.responses[table.models[j]] for j in probes]
        relations = [
            relation(table.prompts[i], known[i], [col[i] for col in raw]) for i in range(len(table))
        ]
    return letters, patterns, relations


def _arm_rank(arm: str) -> int:
    """Complexity of an arm: task-best < blends < the base router < probe sets (by size)."""
    if arm.startswith("pred:"):
        return {0.0: 0, 0.5: 1}.get(float(arm[5:]), 2)
    return 2 + len(arm[6:].split(","))


def _select(per_row: FloatArray, lam: float, ranks: Sequence[int]) -> tuple[int, int]:
    """The (arm, inner λ') to use at ``lam``: of the pairs whose out-of-fold ``q − λ·c`` is within
    `ONE_SE` standard errors of the best pair's (paired over rows), the simplest arm, then the
    best score. Guards against picking an arm that won on the training rows by chance.
    """
    values = per_row[:, :, 0] - lam * per_row[:, :, 1]  # arms × λ' × rows
    score = values.mean(axis=2)
    best = np.unravel_index(int(np.argmax(score)), score.shape)
    diff = values[best][None, None, :] - values
    n = values.shape[2]
    se = diff.std(axis=2, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(score.shape)
    close = diff.mean(axis=2) <= ONE_SE * se + 1e-12
    rank = np.asarray(ranks, dtype=np.float64)[:, None] * np.ones(score.shape)
    key = np.where(close, -rank * 1e6 + score, -np.inf)
    arm, inner = np.unravel_index(int(np.argmax(key)), key.shape)
    return int(arm), int(inner)


def fit_task_policy(
    table: OutcomeTable,
    pred_q: FloatArray,
    pred_c: FloatArray,
    lambdas: Sequence[float],
    folds: int,
    known: list[str | None] | None = None,
) -> TaskPolicy:
    """Arms of one task's rows and the best arm per λ by out-of-fold quality − λ·cost.

    ``pred_q``/``pred_c`` are the base router's out-of-fold predictions for these rows;
    ``known`` the out-of-fold remembered answers (see `oof_known_answers`), if any.
    """
    q_mean, c_mean = table.quality.mean(axis=0), table.cost.mean(axis=0)
    task_q = np.broadcast_to(q_mean, table.quality.shape)
    targets = mean_frontier(table.quality, table.cost)
    arms = [f"pred:{a:g}" for a in ALPHAS]
    estimates = [pred_estimate(a, pred_q, task_q) for a in arms]
    keys: dict[str, Keys] = {}
    if table.responses is not None and len(table) >= 2 * folds:
        usable = [j for j, m in enumerate(table.models) if m in table.responses]
        test_folds = [te for _, te in kfold_indices(table, folds)]
        for probes in probe_candidates(table.quality, table.cost, usable):
            arm = "probe:" + ",".join(str(j) for j in probes)
            keys[arm] = probe_keys(table, probes, known)
            estimates.append(_oof_probe_estimates(table.quality, keys[arm], test_folds))
            arms.append(arm)
    rows = np.arange(len(table))
    # out-of-fold quality and cost of every row, per arm and inner λ'
    per_row = np.zeros((len(arms), len(lambdas), 2, len(table)))
    for a, (arm, est) in enumerate(zip(arms, estimates, strict=True)):
        for li, lam in enumerate(lambdas):
            final, called = _arm_plan(arm, table.quality, pred_c, est, lam, c_mean, targets)
            per_row[a, li] = table.quality[rows, final], (table.cost * called).sum(1)
    ranks = [_arm_rank(arm) for arm in arms]
    choice = [_select(per_row, lam, ranks) for lam in lambdas]
    used = sorted({a for a, _ in choice})
    stats = {
        arms[i]: ProbeStats.fit(table.quality, *keys[arms[i]])
        for i in used
        if arms[i].startswith("probe:")
    }
    remap = {old: new for new, old in enumerate(used)}
    return TaskPolicy(
        [arms[i] for i in used],
        [(remap[a], li) for a, li in choice],
        stats,
        [float(x) for x in c_mean],
        [float(x) for x in q_mean],
        targets,
    )


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

    def replay_table(
        self, table: OutcomeTable, lambdas: Sequence[float], notes: list[str]
    ) -> list[Plan]:
        """Plans for every λ from the table's recorded probe answers (zero model calls)."""
        pred = self.base.predict(list(table.prompts), table_labels(table))
        n, m = table.quality.shape
        tasks = np.asarray(table.tasks)
        finals = np.zeros((len(lambdas), n), dtype=np.int64)
        called = np.zeros((len(lambdas), n, m), dtype=bool)
        groups: dict[str, tuple[list[int], list[str | None]]] = {}
        for task in table.task_names:
            task_rows = np.flatnonzero(tasks == task)
            found = self.known_answers([table.prompts[i] for i in task_rows], task)
            for k, i in enumerate(task_rows):
                answer = None if found is None else found[k]
                rows_known = groups.setdefault(self.policy_key(task, answer is not None), ([], []))
                rows_known[0].append(int(i))
                rows_known[1].append(answer)
        for key, (row_list, known_list) in groups.items():
            rows = np.asarray(row_list, dtype=np.int64)
            known = known_list if self.memory is not None else None
            pol = self.policies[key]
            estimates = self._estimates(pol, table, rows, pred.quality[rows], notes, known)
            for li, lam in enumerate(lambdas):
                a, inner = pol.choice[self.grid_index(lam)]
                arm, lam_arm = pol.arms[a], self.grid[inner]
                if arm not in estimates:
                    arm, lam_arm = "pred:1", lam
                    estimates.setdefault(arm, pred.quality[rows])
                final, call = _arm_plan(
                    arm,
                    pred.quality[rows],
                    pred.cost[rows],
                    estimates[arm],
                    lam_arm,
                    np.asarray(pol.mean_cost),
                    pol.targets or None,
                )
                finals[li, rows], called[li, rows] = final, call
        return [Plan(float(lam), finals[i], called[i]) for i, lam in enumerate(lambdas)]

    def _estimates(
        self,
        pol: TaskPolicy,
        table: OutcomeTable,
        rows: IntArray,
        pred_q: FloatArray,
        notes: list[str],
        known: list[str | None] | None = None,
    ) -> dict[str, FloatArray]:
        task_q = np.broadcast_to(np.asarray(pol.mean_quality), pred_q.shape)
        out: dict[str, FloatArray] = {}
        sub = table.subset(rows)
        for arm in pol.arms:
            if arm.startswith("pred:"):
                out[arm] = pred_estimate(arm, pred_q, task_q)
                continue
            probes = [int(x) for x in arm[6:].split(",")]
            names = [self.models[j] for j in probes]
            if table.responses is None or any(n not in table.responses for n in names):
                notes.append(f"no recorded responses of {', '.join(names)}: arm {arm} skipped")
                continue
            out[arm] = pol.stats[arm].predict(*probe_keys(sub, probes, known))
        return out

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
        from llmswitch.routing.learned.io import router_to_arrays

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
        from llmswitch.routing.learned.io import RouterFileError, router_from_arrays

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


def _single_stats(
    table: OutcomeTable, memory: AnswerMemory | None, groups: dict[str, IntArray], folds: int
) -> dict[str, dict[str, Any]]:
    """Per task group, per model with responses: answer statistics (for scoring answers)."""
    out: dict[str, dict[str, Any]] = {}
    if table.responses is None:
        return out
    for task, rows in groups.items():
        sub = table.subset(rows)
        assert sub.responses is not None
        test_folds = [te for _, te in kfold_indices(sub, folds)] if len(sub) >= 2 * folds else []
        search = None if task == ALL_TASKS else task
        known = oof_known_answers(sub, memory, rows, search, test_folds) if test_folds else None
        per: dict[str, Any] = {}
        for j, name in enumerate(table.models):
            if name in sub.responses:
                keys = probe_keys(sub, [j], known)
                per[str(j)] = ProbeStats.fit(sub.quality, *keys).to_json()
        out[task] = per
    return out


def train_cascade(
    table: OutcomeTable,
    folds: int = 5,
    lam: float = 0.0,
    progress: Progress | None = None,
    base_kind: str = BASE_KIND,
    base_params: dict[str, Any] | None = None,
) -> CascadeRouter:
    """Train the base router and every task's policy (arms chosen on out-of-fold results)."""
    from llmswitch.evals.crossval import KIND_DEFAULTS, oof_predictions
    from llmswitch.evals.replay import default_lambdas

    if base_params is None:
        base_params = BASE_PARAMS if base_kind == BASE_KIND else KIND_DEFAULTS.get(base_kind, {})
    params = dict(base_params)
    grid = [float(x) for x in default_lambdas(table)]
    pred_q, pred_c = oof_predictions(table, base_kind, params, folds, progress)
    tasks = np.asarray(table.tasks)
    groups = {t: np.flatnonzero(tasks == t) for t in table.task_names}
    all_groups = {**groups, ALL_TASKS: np.arange(len(table))}
    groups = {t: rows for t, rows in groups.items() if len(rows) >= 4 * folds}
    groups[ALL_TASKS] = np.arange(len(table))
    memory = None
    if table.responses is not None and table.responses:
        memory = AnswerMemory.build(
            table.prompts, table.tasks, table.responses, table.models, table.quality
        )
    policies = {}
    for task, rows in groups.items():
        if progress:
            progress(f"cascade: policy for task {task}")
        sub = table.subset(rows)
        test_folds = [te for _, te in kfold_indices(sub, folds)]
        search = None if task == ALL_TASKS else task
        known = oof_known_answers(sub, memory, rows, search, test_folds)
        split = [np.arange(len(rows))]
        if known is not None:
            has = np.asarray([k is not None for k in known])
            if min(int(has.sum()), int((~has).sum())) >= 4 * folds:
                split = [np.flatnonzero(~has), np.flatnonzero(has)]
        for part, keep in zip(("", REMEMBERED), split, strict=False):
            kept = None if known is None else [known[i] for i in keep]
            policies[task + part] = fit_task_policy(
                sub.subset(keep), pred_q[rows[keep]], pred_c[rows[keep]], grid, folds, kept
            )
    base = train_router(table, base_kind, params)
    info = {
        "n_train": len(table),
        "source": table.source,
        "task_stats": base.info["task_stats"],
        "params": {"base_kind": base_kind, **params},
        "single": _single_stats(table, memory, all_groups, folds),
    }
    return CascadeRouter(base, policies, grid, lam, info, memory=memory)


def cross_validate_cascade(
    table: OutcomeTable,
    folds: int = 5,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Cross-validated ``router eval`` report of the cascade (nested: policies chosen in-fold)."""
    from llmswitch.evals.crossval import oof_task_predictions
    from llmswitch.evals.replay import default_lambdas, evaluate

    lambdas = default_lambdas(table)
    n, m = table.quality.shape
    finals = np.zeros((len(lambdas), n), dtype=np.int64)
    called = np.zeros((len(lambdas), n, m), dtype=bool)
    for f, (train, test) in enumerate(kfold_indices(table, folds)):
        if progress:
            progress(f"cascade: fold {f + 1}/{folds}")
        router = train_cascade(table.subset(train), folds)
        for li, plan in enumerate(router.replay_table(table.subset(test), lambdas, [])):
            finals[li, test] = plan.final
            called[li, test] = plan.called
    plans = [Plan(lam, finals[i], called[i]) for i, lam in enumerate(lambdas)]
    report = evaluate(table, plans, oof_task_predictions(table, folds), lambdas)
    report["cross_validation"] = {"folds": folds, "kind": "cascade", "params": dict(BASE_PARAMS)}
    return report
