"""`strategy: learned` end to end: a router trained on a sample table, served through a Switch."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from llmswitch.errors import ConfigError, OverloadedError
from llmswitch.evals.table import load_table
from llmswitch.results import StreamEnd, TextDelta
from llmswitch.routing.learned import save_router
from llmswitch.routing.learned.io import load_router
from llmswitch.switch import Switch
from llmswitch.testing import FakeModel
from llmswitch.training.router import train_router

DATA = Path(__file__).resolve().parents[1] / "data" / "routing" / "outcomes_sample.parquet"
MODELS = ["gpt-4-1106-preview", "mixtral-8x7b-chat", "mistral-7b-chat"]
TARGETS = {"gpt-4-1106-preview": "strong", "mixtral-8x7b-chat": "mid", "mistral-7b-chat": "cheap"}


@pytest.fixture(scope="module")
def table() -> Any:
    return load_table(DATA).select_models(MODELS)


@pytest.fixture(scope="module")
def router_file(table: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("router") / "r.npz"
    save_router(train_router(table, "knn", lam=0.0), path)
    return path


def fakes() -> dict[str, FakeModel]:
    return {
        "strong": FakeModel(name="strong", script=["strong answer"], cost_per_call=0.01),
        "mid": FakeModel(name="mid", script=["mid answer"], cost_per_call=0.001),
        "cheap": FakeModel(name="cheap", script=["cheap answer"], cost_per_call=0.0001),
    }


def config(router: Path | str | None, **options: Any) -> dict[str, Any]:
    route = {"strategy": "learned", "router": None if router is None else str(router),
             "targets": dict(TARGETS), **options}
    return {"routes": {"smart": route}}


def switch(cfg: dict[str, Any], models: dict[str, FakeModel] | None = None) -> Switch:
    return Switch(cfg, models=models or fakes(), observers=[])


async def test_routes_to_the_best_predicted_model_and_traces_the_decision(
    table: Any, router_file: Path
) -> None:
    models = fakes()
    s = switch(config(router_file, **{"lambda": 0}), models)
    prompt = table.prompts[0]
    completion = await s.complete("smart", prompt)

    assert completion.text == "strong answer" and completion.model == "strong"
    assert completion.cost_usd == pytest.approx(0.01)
    assert completion.usage.input_tokens == len(models["strong"].calls[0].prompt_text) // 4 > 0
    assert models["mid"].call_count == models["cheap"].call_count == 0
    span = completion.trace
    assert span is not None
    attrs = span.attributes
    assert attrs["llmswitch.strategy"] == "learned"
    assert attrs["llmswitch.chosen"] == "strong"
    assert attrs["llmswitch.router_model"] == "gpt-4-1106-preview"
    assert attrs["llmswitch.lambda"] == 0.0 and attrs["llmswitch.router_kind"] == "knn"
    quality, cost = attrs["llmswitch.predicted_quality"], attrs["llmswitch.predicted_cost_usd"]
    assert set(quality) == set(cost) == set(MODELS)
    assert max(quality, key=quality.get) == "gpt-4-1106-preview"
    assert cost["gpt-4-1106-preview"] > cost["mistral-7b-chat"] > 0
    assert attrs["llmswitch.scores"]["q:mistral-7b-chat"] == quality["mistral-7b-chat"]
    assert attrs["llmswitch.candidates"] == ["strong", "mid", "cheap"]
    assert [c.attributes["gen_ai.request.model"] for c in span.children] == ["strong"]


async def test_lambda_and_min_quality_from_config(table: Any, router_file: Path) -> None:
    prompt = table.prompts[0]
    cheap = await switch(config(router_file, **{"lambda": 1e9})).complete("smart", prompt)
    assert cheap.model == "cheap"
    assert cheap.trace is not None and "λ=1e+09" in cheap.trace.attributes["llmswitch.reason"]
    # min_quality 0: every model qualifies, so the cheapest predicted wins
    low = await switch(config(router_file, min_quality=0.0)).complete("smart", prompt)
    assert low.model == "cheap" and low.trace is not None
    assert "cheapest predicted to reach quality 0" in low.trace.attributes["llmswitch.reason"]
    # an unreachable bar falls back to the best predicted model
    high = await switch(config(router_file, min_quality=1.0)).complete("smart", prompt)
    assert high.model == "strong" and high.trace is not None
    assert "none predicted to reach" in high.trace.attributes["llmswitch.reason"]


async def test_strong_with_margin_is_a_call_budget(table: Any, router_file: Path) -> None:
    prompt = table.prompts[0]
    router = load_router(router_file)
    quality = router.decide(prompt, candidates=MODELS).predicted_quality
    strong = "gpt-4-1106-preview"
    gain = quality[strong] - max(q for m, q in quality.items() if m != strong)
    assert gain > 0  # the fixture prompt: the strong model is predicted best
    below = await switch(config(router_file, strong=strong, margin=gain / 2)).complete(
        "smart", prompt)
    assert below.model == "strong" and below.trace is not None
    assert f"(> margin {gain / 2:g})" in below.trace.attributes["llmswitch.reason"]
    assert below.trace.attributes["llmswitch.margin"] == gain / 2
    above = await switch(config(router_file, strong=strong, margin=min(1.0, gain + 0.01)),
                         ).complete("smart", prompt)
    # not worth the strong model: the other model predicted best answers, whatever its price
    other = max((m for m in quality if m != strong), key=lambda m: quality[m])
    assert above.model == TARGETS[other] and above.trace is not None
    assert "<= margin" in above.trace.attributes["llmswitch.reason"]


async def test_streams_the_chosen_target(table: Any, router_file: Path) -> None:
    models = fakes()
    s = switch(config(router_file, **{"lambda": 1e9}), models)
    events = [e async for e in s.stream("smart", table.prompts[1])]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    end = events[-1]
    assert text == "cheap answer" and isinstance(end, StreamEnd)
    assert end.completion.cost_usd == pytest.approx(0.0001)
    assert end.completion.trace is not None
    assert end.completion.trace.attributes["llmswitch.strategy"] == "learned"
    assert end.completion.trace.attributes["llmswitch.chosen"] == "cheap"
    assert models["cheap"].call_count == 1 and models["strong"].call_count == 0


async def test_a_failing_target_raises_with_the_decision_traced(
    table: Any, router_file: Path
) -> None:
    models = fakes()
    models["cheap"] = FakeModel(name="cheap", script=[OverloadedError("busy", cost_usd=0.00005)])
    s = switch(config(router_file, **{"lambda": 1e9}), models)
    with pytest.raises(OverloadedError) as info:
        await s.complete("smart", table.prompts[0])
    trace = info.value.trace
    assert trace is not None and trace.status == "error"
    assert trace.attributes["llmswitch.strategy"] == "learned"
    assert trace.attributes["llmswitch.chosen"] == "cheap"
    assert info.value.cost_usd == pytest.approx(0.00005)


async def test_router_path_is_relative_to_the_config_file(
    table: Any, router_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "routers").mkdir()
    (tmp_path / "routers" / "r.npz").write_bytes(router_file.read_bytes())
    path = tmp_path / "llmswitch.yaml"
    path.write_text(yaml.safe_dump(config("routers/r.npz", **{"lambda": 1e9})))
    s = Switch(path, models=fakes(), observers=[])
    assert (await s.complete("smart", table.prompts[0])).model == "cheap"


def test_a_missing_relative_router_names_both_places_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "conf" / "llmswitch.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config("routers/r.npz")))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError) as info:
        Switch(path, models=fakes(), observers=[]).model("smart")
    message = str(info.value)
    assert "'routers/r.npz' found neither next to the config" in message
    assert str(path.parent.resolve()) in message and str(elsewhere) in message


async def test_exclude_and_list_targets(table: Any, router_file: Path) -> None:
    cfg = config(router_file, exclude=["mixtral-8x7b-chat"], **{"lambda": 1e9})
    cfg["routes"]["smart"]["targets"] = [
        {"model": "strong", "key": "gpt-4-1106-preview"},
        {"model": "cheap", "key": "mistral-7b-chat"},
    ]
    completion = await switch(cfg).complete("smart", table.prompts[0])
    assert completion.trace is not None
    assert set(completion.trace.attributes["llmswitch.predicted_quality"]) == {
        "gpt-4-1106-preview", "mistral-7b-chat"}


def evil_pickle(path: Path, marker: Path) -> None:
    class Evil:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Evil()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"router": "missing.npz"}, r"routes\.smart: router file 'missing\.npz' does not exist"),
        ({"targets": {"gpt-4-1106-preview": "strong", "mistral-7b-chat": "cheap"}},
         r"no target for table model\(s\) 'mixtral-8x7b-chat'"),
        ({"targets": {**TARGETS, "gpt-5": "strong"}}, r"router .* has no model 'gpt-5'"),
        ({"lambda": -1}, r"'lambda' must be a number >= 0"),
        ({"min_quality": 2}, r"'min_quality' must be a number in \[0, 1\]"),
        ({"target_cost": 0.001}, r"'target_cost' .* cannot be met per request"),
        ({"strong": "gpt-5"}, r"'strong' must be one of the routed table models, not 'gpt-5'"),
        ({"margin": 0.1}, r"'margin' needs 'strong'"),
        ({"strong": "mistral-7b-chat", "margin": 1.5}, r"'margin' must be a number in \[0, 1\]"),
        ({"strong": "mistral-7b-chat", "min_quality": 0.5},
         r"give one policy, not 'min_quality' and 'strong'"),
        ({"strong": "mistral-7b-chat", "lambda": 1e9},
         r"give one policy, not 'lambda' and 'strong'"),
        ({"lambda": float("inf")}, r"'lambda' must be a number >= 0, not inf"),
        ({"strong": "mistral-7b-chat", "margin": float("nan")}, r"'margin' must be a number"),
        ({"min_quality": float("nan")}, r"'min_quality' must be a number"),
        ({"exclude": ["mistral-7b-chat"]}, r"'mistral-7b-chat' both mapped under 'targets' and "
                                           r"listed under 'exclude'"),
        ({"targets": {**TARGETS, "mistral-7b-chat": "nobody"}},
         r'targets\.mistral-7b-chat: unknown model "nobody"'),
        ({"lamda": 2}, r"unknown option\(s\) .*'lamda' \(did you mean 'lambda'\?\)"),
        ({"router": None}, r"'router' .* is required"),
    ],
)
def test_config_errors(router_file: Path, change: dict[str, Any], message: str) -> None:
    options = {k: v for k, v in change.items() if k not in ("targets", "router")}
    cfg = config(change.get("router", router_file), **options)
    if "targets" in change:
        cfg["routes"]["smart"]["targets"] = change["targets"]
    with pytest.raises(ConfigError, match=message):
        switch(cfg).model("smart")


def test_target_cost_hint_points_to_training(router_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        switch(config(router_file, target_cost=0.001)).model("smart")
    assert "router train --target-cost USD" in (info.value.hint or "")


def test_garbage_and_pickled_files_are_config_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00not a zip at all")
    with pytest.raises(ConfigError, match=r"garbage\.npz: not a router file"):
        switch(config(garbage)).model("smart")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npz"
    evil_pickle(evil, marker)
    with pytest.raises(ConfigError, match=r"evil\.npz: not a router file"):
        switch(config(evil)).model("smart")
    objects = tmp_path / "objects.npz"
    np.savez(objects, __meta__=np.array([{"format": "llmswitch-router"}], dtype=object))
    with pytest.raises(ConfigError, match=r"routes\.smart: .*objects\.npz"):
        switch(config(objects)).model("smart")
    assert not marker.exists()


async def test_legacy_candidates_key_still_works(table: Any, router_file: Path) -> None:
    cfg = config(router_file, candidates=dict(TARGETS), **{"lambda": 1e9})
    del cfg["routes"]["smart"]["targets"]
    assert (await switch(cfg).complete("smart", table.prompts[0])).model == "cheap"


async def test_metadata_entries_reach_the_router_as_table_column_labels(tmp_path: Path) -> None:
    from llmswitch.evals.table import make_table

    # identical prompts; only the `subtask` column says which model is right
    n = 60
    subtask = tuple(("algebra", "history", "geometry")[i % 3] for i in range(n))
    quality = np.array([[0.0, 1.0] if s == "history" else [1.0, 0.0] for s in subtask])
    cost = np.tile([0.01, 0.001], (n, 1))
    columns = {"prompt_id": [f"p{i}" for i in range(n)], "task": ["quiz"] * n,
               "prompt": ["Answer the question."] * n}
    table = make_table(columns, ("big", "small"), quality, cost, {"subtask": subtask}, "synth")
    path = tmp_path / "r.npz"
    save_router(train_router(table, "ridge", {"task_weight": 1.0, "alpha": 0.1}), path)
    cfg = {"routes": {"smart": {"strategy": "learned", "router": str(path),
                                "targets": {"big": "strong", "small": "cheap"}, "lambda": 0}}}
    s = switch(cfg)
    algebra = await s.complete("smart", "Answer the question.",
                               metadata={"task": "quiz", "subtask": "algebra"})
    history = await s.complete("smart", "Answer the question.",
                               metadata={"task": "quiz", "subtask": "history"})
    assert (algebra.model, history.model) == ("strong", "cheap")
