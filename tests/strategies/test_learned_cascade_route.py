"""A cascade router file served live: probes are called, their answers decide, as in the replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmswitch.errors import RateLimitedError
from llmswitch.evals.table import load_table
from llmswitch.results import StreamEnd, TextDelta
from llmswitch.routing.learned import save_router
from llmswitch.switch import Switch
from llmswitch.testing import FakeModel
from llmswitch.training.cascade import train_cascade
from llmswitch.training.replay import replay_table

DATA = Path(__file__).resolve().parents[1] / "data" / "routing"


@pytest.fixture(scope="module")
def table() -> Any:
    return load_table(DATA / "outcomes_sample.parquet", responses=DATA / "responses_sample.parquet")


@pytest.fixture(scope="module")
def cascade(table: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    router = train_cascade(table)
    path = tmp_path_factory.mktemp("cascade") / "c.npz"
    save_router(router, path)
    return router, path


def recorded_models(table: Any, fail: set[str] = frozenset()) -> dict[str, FakeModel]:
    """One fake per table model answering each prompt with its recorded response."""
    row = {p: i for i, p in enumerate(table.prompts)}

    def answer(model: str) -> Any:
        if model in fail:
            return RateLimitedError("slow down", model=model)
        return lambda request: table.responses[model][row[request.last_user_text]]

    return {m: FakeModel(name=m, script=[answer(m)], cost_per_call=0.001) for m in table.models}


def config(path: Path, models: list[str], **options: Any) -> dict[str, Any]:
    return {"routes": {"smart": {"strategy": "learned", "router": str(path),
                                 "targets": {m: m for m in models}, **options}}}


async def first_winogrande_probes(
    table: Any, cascade: tuple[Any, Path]
) -> tuple[float, int, dict[str, str], list[str]]:
    """λ, row, metadata and the probes the cascade calls on the first Winogrande prompt."""
    router, path = cascade
    lam = probe_lambdas(router, "winogrande")[0]
    i = table.tasks.index("winogrande")
    meta = {"task": "winogrande"}
    completion = await Switch(config(path, list(table.models), **{"lambda": lam}),
                              models=recorded_models(table), observers=[]).complete(
        "smart", table.prompts[i], metadata=meta)
    assert completion.trace is not None
    return lam, i, meta, list(completion.trace.attributes["llmswitch.probes"])


def probe_lambdas(router: Any, task: str) -> list[float]:
    """Grid λs at which the task's policy uses a probe arm."""
    pol = router.policies[task]
    return [router.grid[i] for i, (a, _) in enumerate(pol.choice)
            if pol.arms[a].startswith("probe:") and router.grid[i] > 0]


async def test_served_choices_match_the_replay(table: Any, cascade: tuple[Any, Path]) -> None:
    router, path = cascade
    tasks = np.asarray(table.tasks)
    checked = 0
    for task in ("arc-challenge", "winogrande"):
        lams = probe_lambdas(router, task)
        assert lams, f"the sample cascade should probe on {task}"
        lam = lams[len(lams) // 2]
        plan = replay_table(router, table, [lam], [])[0]
        models = recorded_models(table)
        s = Switch(config(path, list(table.models), **{"lambda": lam}), models=models,
                   observers=[])
        for i in np.flatnonzero(tasks == task):
            completion = await s.complete("smart", table.prompts[i], metadata={"task": task})
            assert completion.model == table.models[plan.final[i]], (task, i)
            called = {m for m, fake in models.items() if fake.calls and
                      fake.calls[-1] is not None and fake.calls[-1].last_user_text
                      == table.prompts[i]}
            assert called == {table.models[j] for j in np.flatnonzero(plan.called[i])}
            checked += 1
    assert checked == int(np.isin(tasks, ["arc-challenge", "winogrande"]).sum())


async def test_probe_calls_are_summed_and_traced(table: Any, cascade: tuple[Any, Path]) -> None:
    router, path = cascade
    lam = probe_lambdas(router, "winogrande")[0]
    models = recorded_models(table)
    s = Switch(config(path, list(table.models), **{"lambda": lam}), models=models, observers=[])
    i = table.tasks.index("winogrande")
    completion = await s.complete("smart", table.prompts[i], metadata={"task": "winogrande"})
    span = completion.trace
    assert span is not None
    attrs = span.attributes
    probes = attrs["llmswitch.probes"]
    assert attrs["llmswitch.arm"].startswith("probe:") and probes
    assert attrs["llmswitch.policy"].startswith("winogrande")
    assert len(attrs["llmswitch.probe_answers"]) == len(probes)
    assert set(attrs["llmswitch.estimated_quality"]) == set(table.models)
    calls = sum(fake.call_count for fake in models.values())
    assert calls == len(probes) + (0 if completion.model in probes else 1)
    assert completion.cost_usd == pytest.approx(0.001 * calls)
    assert len(span.children) == calls


async def test_a_failed_probe_escalates_to_the_base_choice(
    table: Any, cascade: tuple[Any, Path]
) -> None:
    _, path = cascade
    lam, i, meta, probes = await first_winogrande_probes(table, cascade)
    models = recorded_models(table, fail={probes[0]})
    s = Switch(config(path, list(table.models), **{"lambda": lam}), models=models, observers=[])
    completion = await s.complete("smart", table.prompts[i], metadata=meta)
    assert completion.model != probes[0]
    assert "a probe failed" in completion.trace.attributes["llmswitch.reason"]
    assert models[probes[0]].call_count == 1


async def test_streaming_replays_a_kept_probe_or_streams_the_escalation(
    table: Any, cascade: tuple[Any, Path]
) -> None:
    router, path = cascade
    lam = probe_lambdas(router, "arc-challenge")[0]
    s = Switch(config(path, list(table.models), **{"lambda": lam}),
               models=recorded_models(table), observers=[])
    seen = set()
    for i in [k for k, t in enumerate(table.tasks) if t == "arc-challenge"][:15]:
        events = [e async for e in s.stream("smart", table.prompts[i],
                                            metadata={"task": "arc-challenge"})]
        end = events[-1]
        assert isinstance(end, StreamEnd)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text == end.completion.text == table.responses[end.completion.model][i]
        probes = end.completion.trace.attributes["llmswitch.probes"]
        seen.add(end.completion.model in probes)
    assert seen == {True, False}  # both paths taken on these prompts


async def test_probes_false_serves_the_base_router(
    table: Any, cascade: tuple[Any, Path]
) -> None:
    router, path = cascade
    lam = probe_lambdas(router, "winogrande")[0]
    models = recorded_models(table)
    s = Switch(config(path, list(table.models), probes=False, **{"lambda": lam}),
               models=models, observers=[])
    i = table.tasks.index("winogrande")
    await s.complete("smart", table.prompts[i], metadata={"task": "winogrande"})
    assert sum(f.call_count for f in models.values()) == 1


async def test_an_unmapped_probe_falls_back_to_the_base_prediction(
    table: Any, cascade: tuple[Any, Path]
) -> None:
    _, path = cascade
    lam, i, meta, probes = await first_winogrande_probes(table, cascade)
    kept = [m for m in table.models if m != probes[0]]
    cfg = config(path, kept, exclude=[probes[0]], **{"lambda": lam})
    models = recorded_models(table)
    completion = await Switch(cfg, models=models, observers=[]).complete(
        "smart", table.prompts[i], metadata=meta)
    assert completion.trace.attributes["llmswitch.arm"] == "pred:1"
    assert completion.model in kept and models[probes[0]].call_count == 0
    assert sum(f.call_count for f in models.values()) == 1


@pytest.mark.parametrize("unknown_task", [False, True])
def test_live_decisions_equal_the_replay_over_the_grid(
    table: Any, cascade: tuple[Any, Path], unknown_task: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every third λ of the grid, every prompt: pred arms, probe arms, the '*' policy."""
    import copy
    import dataclasses

    from llmswitch.routing.learned.cascade_serve import choose_after_probes, plan_probes

    router, _ = cascade
    # A prompt's prediction and remembered answer do not depend on λ: computed once per
    # prompt instead of once per (λ, prompt), which was nearly all of this test's time.
    for owner, name in ((router.base, "predict"), (router, "known_answers")):
        original, seen = getattr(owner, name), {}

        def memo(*args: Any, _original: Any = original, _seen: Any = seen) -> Any:
            key = repr(args)
            if key not in _seen:
                _seen[key] = _original(*args)
            return copy.deepcopy(_seen[key])  # a caller may modify what it gets

        monkeypatch.setattr(owner, name, memo)
    data = dataclasses.replace(table, tasks=("zzz",) * len(table)) if unknown_task else table
    lams = router.grid[::3]
    plans = replay_table(router, data, lams, [])
    models = set(table.models)
    for li, lam in enumerate(lams):
        for i, prompt in enumerate(table.prompts):
            task = data.tasks[i]
            step = plan_probes(router, prompt, task, lam, models)
            if step.final is not None:
                final = step.final
            else:
                answers = [table.responses[p][i] for p in step.probes]
                final, _ = choose_after_probes(router, step, prompt, answers, models)
            assert final == table.models[plans[li].final[i]], (lam, i, step.arm)


async def test_every_probe_failing_with_nothing_else_routed_is_one_typed_error(
    table: Any, cascade: tuple[Any, Path]
) -> None:
    from llmswitch.errors import AllAttemptsFailedError

    _, path = cascade
    lam, i, meta, probes = await first_winogrande_probes(table, cascade)
    others = [m for m in table.models if m not in probes]
    cfg = config(path, list(probes), exclude=others, **{"lambda": lam})
    models = recorded_models(table, fail=set(probes))
    with pytest.raises(AllAttemptsFailedError) as info:
        await Switch(cfg, models=models, observers=[]).complete(
            "smart", table.prompts[i], metadata=meta)
    assert len(info.value.errors) == len(probes)
