"""Training and cross-validating the learned cascade (offline; see `routing.learned.cascade`).

Per task, the arms' out-of-fold results pick the stored arm for every λ of the grid; replay of
a table reads the recorded probe answers (zero model calls).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.evals.replay import default_lambdas, evaluate
from llmswitch.evals.table import OutcomeTable, kfold_indices
from llmswitch.routing.learned.cascade import (
    ALL_TASKS,
    ALPHAS,
    BASE_KIND,
    BASE_PARAMS,
    ONE_SE,
    REMEMBERED,
    CascadeRouter,
    FloatArray,
    IntArray,
    Keys,
    ProbeStats,
    TaskPolicy,
    answer_keys,
    normalise_answer,
    pred_estimate,
    probe_plan,
)
from llmswitch.routing.learned.memory import AnswerMemory, relation
from llmswitch.routing.learned.policy import choose
from llmswitch.routing.learned.router import Plan
from llmswitch.training.crossval import KIND_DEFAULTS, oof_predictions, oof_task_predictions
from llmswitch.training.progress import Progress
from llmswitch.training.router import table_labels, train_router


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


def probe_answers(
    responses: dict[str, tuple[str, ...]], models: Sequence[str], probes: Sequence[int]
) -> list[list[str]]:
    """Normalised recorded answers of the probe models, one list per row."""
    cols = [[normalise_answer(x) for x in responses[models[j]]] for j in probes]
    return [list(row) for row in zip(*cols, strict=True)] if cols else []


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
    for i, (task, rows) in enumerate(groups.items()):
        if progress:
            progress("cascade: per-task policies", i, len(groups))
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
    if progress:
        progress("cascade: per-task policies", len(groups), len(groups))
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
    lambdas = default_lambdas(table)
    n, m = table.quality.shape
    finals = np.zeros((len(lambdas), n), dtype=np.int64)
    called = np.zeros((len(lambdas), n, m), dtype=bool)
    stage = f"cross-validating cascade ({folds} folds)"
    for f, (train, test) in enumerate(kfold_indices(table, folds)):
        if progress:
            progress(stage, f, folds)
        router = train_cascade(table.subset(train), folds)
        for li, plan in enumerate(replay_cascade(router, table.subset(test), lambdas, [])):
            finals[li, test] = plan.final
            called[li, test] = plan.called
    if progress:
        progress(stage, folds, folds)
    plans = [Plan(lam, finals[i], called[i]) for i, lam in enumerate(lambdas)]
    report = evaluate(table, plans, oof_task_predictions(table, folds), lambdas)
    report["cross_validation"] = {"folds": folds, "kind": "cascade", "params": dict(BASE_PARAMS)}
    return report


def replay_cascade(
    router: CascadeRouter, table: OutcomeTable, lambdas: Sequence[float], notes: list[str]
) -> list[Plan]:
    """Plans for every λ from the table's recorded probe answers (zero model calls)."""
    pred = router.base.predict(list(table.prompts), table_labels(table))
    n, m = table.quality.shape
    tasks = np.asarray(table.tasks)
    finals = np.zeros((len(lambdas), n), dtype=np.int64)
    called = np.zeros((len(lambdas), n, m), dtype=bool)
    groups: dict[str, tuple[list[int], list[str | None]]] = {}
    for task in table.task_names:
        task_rows = np.flatnonzero(tasks == task)
        found = router.known_answers([table.prompts[i] for i in task_rows], task)
        for k, i in enumerate(task_rows):
            answer = None if found is None else found[k]
            rows_known = groups.setdefault(router.policy_key(task, answer is not None), ([], []))
            rows_known[0].append(int(i))
            rows_known[1].append(answer)
    for key, (row_list, known_list) in groups.items():
        rows = np.asarray(row_list, dtype=np.int64)
        known = known_list if router.memory is not None else None
        pol = router.policies[key]
        estimates = _estimates(router, pol, table, rows, pred.quality[rows], notes, known)
        for li, lam in enumerate(lambdas):
            a, inner = pol.choice[router.grid_index(lam)]
            arm, lam_arm = pol.arms[a], router.grid[inner]
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
    router: CascadeRouter,
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
        names = [router.models[j] for j in probes]
        if table.responses is None or any(n not in table.responses for n in names):
            notes.append(f"no recorded responses of {', '.join(names)}: arm {arm} skipped")
            continue
        out[arm] = pol.stats[arm].predict(*probe_keys(sub, probes, known))
    return out
