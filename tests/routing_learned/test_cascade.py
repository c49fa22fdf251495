"""The learned cascade (probe cheap models, keep or escalate), task features and the scorer."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from llmswitch.cli.router import router as router_cli
from llmswitch.evals.replay import default_lambdas, evaluate
from llmswitch.evals.table import OutcomeTable, load_table
from llmswitch.messages import Message
from llmswitch.request import Request
from llmswitch.results import Completion, Usage
from llmswitch.routing.learned import load_answer_scorer, load_router, save_router
from llmswitch.routing.learned.cascade import answer_keys
from llmswitch.training.cascade import train_cascade
from llmswitch.training.replay import replay_table
from llmswitch.training.router import train_router

DATA = Path(__file__).resolve().parents[1] / "data" / "routing"
SAMPLE = DATA / "outcomes_sample.parquet"
MODELS = ("strong", "cheap", "tiny")


def synthetic(n: int = 240, seed: int = 7) -> OutcomeTable:
    """`cheap` answers "A" when right and "B" when wrong; `strong` is always right."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    cheap_ok = np.asarray([rng.random() < 0.7 for _ in range(n)], dtype=float)
    tiny_ok = np.asarray([rng.random() < 0.4 for _ in range(n)], dtype=float)
    quality = np.stack([np.ones(n), cheap_ok, tiny_ok], axis=1)
    cost = np.tile([100.0, 1.0, 0.5], (n, 1)) * 1e-6
    prompts = tuple(f"q{i} " + " ".join(rng.choice(words) for _ in range(6)) for i in range(n))
    responses = {
        "strong": tuple("C" for _ in range(n)),
        "cheap": tuple("A" if ok else "B" for ok in cheap_ok),
        "tiny": tuple(rng.choice("AB") for _ in range(n)),
    }
    return OutcomeTable(
        tuple(f"p{i}" for i in range(n)),
        tuple("mc" for _ in range(n)),
        prompts,
        MODELS,
        quality,
        cost,
        {},
        responses,
        "synthetic",
    )


@pytest.fixture(scope="module")
def synth() -> OutcomeTable:
    return synthetic()


@pytest.fixture(scope="module")
def synth_cascade(synth: OutcomeTable):
    return train_cascade(synth, folds=3)


def test_answer_keys() -> None:
    letters, patterns = answer_keys([["A", "A", "C"], ["b", "some text", "b"]])
    assert letters == ["A|A|C", "b|?|b"]
    assert patterns == ["0|0|1", "0|1|0"]


def test_cascade_probes_cheap_model_and_escalates_on_its_doubt(synth, synth_cascade) -> None:
    lambdas = default_lambdas(synth)
    plans = replay_table(synth_cascade, synth, lambdas, [])
    rows = np.arange(len(synth))
    cheap = MODELS.index("cheap")
    said_b = np.asarray([r == "B" for r in synth.responses["cheap"]])
    probing = [p for p in plans if p.called[:, cheap].all()]
    assert probing, "no λ probes the cheap model"
    best = max(probing, key=lambda p: synth.quality[rows, p.final].mean())
    # the strong model is called exactly where the cheap one answered "B" ...
    assert synth.quality[rows, best.final].mean() == pytest.approx(1.0)
    assert (best.called[:, 0] == said_b).all()
    # ... and the replayed cost counts the probe on every prompt plus each escalation
    rep = evaluate(synth, [best], None, lambdas)
    expected = (1.0 + 100.0 * said_b.mean()) * 1e-6
    assert rep["curve"][0]["cost_usd"] == pytest.approx(expected)
    assert rep["curve"][0]["model_shares"]["cheap"] == 1.0
    # far cheaper than always calling the strong model at the same quality
    assert rep["cost_share_at_100"] < 0.5


def test_cascade_file_roundtrip_replays_identically(synth, synth_cascade, tmp_path) -> None:
    path = tmp_path / "c.npz"
    save_router(synth_cascade, path)
    loaded = load_router(path)
    lambdas = default_lambdas(synth)
    a = replay_table(synth_cascade, synth, lambdas, [])
    b = replay_table(loaded, synth, lambdas, [])
    for pa, pb in zip(a, b, strict=True):
        assert (pa.final == pb.final).all() and (pa.called == pb.called).all()


def test_cascade_without_responses_uses_prediction_arms(synth, synth_cascade) -> None:
    bare = OutcomeTable(*[getattr(synth, f) for f in ("prompt_ids", "tasks", "prompts")],
                        synth.models, synth.quality, synth.cost, {}, None, "bare")
    notes: list[str] = []
    plans = replay_table(synth_cascade, bare, default_lambdas(bare), notes)
    assert all(p.called.sum(axis=1).min() == 1 for p in plans)  # one model per prompt
    assert any("no recorded responses" in n for n in notes)


def test_cascade_trains_on_a_table_without_responses(tmp_path) -> None:
    table = load_table(DATA / "llmrouter_sample.jsonl.gz")
    casc = train_cascade(table, folds=2)
    assert all(a.startswith("pred:") for p in casc.policies.values() for a in p.arms)
    plans = replay_table(casc, table, default_lambdas(table), [])
    assert 0.0 < evaluate(table, plans)["aiq"] <= 1.0


def _completion(text: str, model: str) -> Completion:
    return Completion(text, "stop", Usage(), 0.0, "test", model)


def test_answer_scorer_from_cascade_file(synth, synth_cascade, tmp_path) -> None:
    from llmswitch.strategies.checks import AnswerScorer, load_scorer

    path = tmp_path / "c.npz"
    save_router(synth_cascade, path)
    scorer = load_answer_scorer(str(path))
    assert isinstance(scorer, AnswerScorer)
    req = Request((Message.user(synth.prompts[0]),), metadata={"task": "mc"})
    good = scorer.score(req, _completion("A", "provider/cheap"))
    bad = scorer.score(req, _completion("(B) because", "cheap"))
    assert good > 0.9 and bad < 0.1
    unknown = scorer.score(req, _completion("A", "someone-else"))
    assert 0.0 <= unknown <= 1.0
    assert isinstance(load_scorer({"path": str(path)}), AnswerScorer)


def test_answer_scorer_from_plain_router(tmp_path) -> None:
    table = load_table(SAMPLE)
    path = tmp_path / "r.npz"
    save_router(train_router(table, "knn", {"task_weight": 1.0}), path)
    scorer = load_answer_scorer(str(path))
    req = Request((Message.user(table.prompts[0]),))
    p = scorer.score(req, _completion("B", "gpt-4-1106-preview"))  # type: ignore[attr-defined]
    assert 0.0 <= p <= 1.0


def test_task_features_change_predictions_and_survive_saving(tmp_path) -> None:
    table = load_table(SAMPLE)
    r = train_router(table, "ridge", {"task_weight": 1.0})
    assert r.featurizer.tasks == tuple(table.task_names)
    prompts = list(table.prompts[:5])
    with_task = r.predict(prompts, list(table.tasks[:5])).quality
    without = r.predict(prompts).quality
    assert not np.allclose(with_task, without)
    save_router(r, tmp_path / "r.npz")
    again = load_router(tmp_path / "r.npz").predict(prompts, list(table.tasks[:5])).quality
    assert np.allclose(with_task, again, atol=1e-3)
    knn = train_router(table, "knn", {"task_weight": 1.0, "k": 5})
    assert knn.quality_models[0].params()["task_bonus"] == 1.0


def test_cli_train_cascade_then_eval_counts_probe_calls(tmp_path) -> None:
    out = tmp_path / "c.npz"
    runner = CliRunner()
    res = runner.invoke(router_cli, ["train", "--data", str(SAMPLE), "--kind", "cascade",
                                     "--folds", "2", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["kind"] == "cascade"
    res = runner.invoke(router_cli, ["eval", "--data", str(SAMPLE), "--router", str(out),
                                     "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["router"]["kind"] == "cascade"
    shares = [sum(p["model_shares"].values()) for p in rep["curve"]]
    assert min(shares) >= 1.0 - 1e-5  # every prompt gets an answer ...
    assert max(shares) > 1.2  # ... and where probes are used, their calls are counted


def test_cli_train_auto_picks_by_cross_validation(tmp_path) -> None:
    out = tmp_path / "a.npz"
    res = CliRunner().invoke(router_cli, ["train", "--data", str(SAMPLE), "--folds", "2",
                                          "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    kinds = {(row["kind"], row["params"].get("task_weight", 0)) for row in summary["selection"]}
    assert ("cascade", 0) in kinds and ("ridge", 1.0) in kinds and ("knn", 0) in kinds
    best = max(summary["selection"], key=lambda r: round(r["aiq"], 4))
    assert summary["kind"] == best["kind"]
    assert load_router(out).kind == summary["kind"]


def test_categorical_extra_columns_become_labels(synth) -> None:
    from dataclasses import replace

    from llmswitch.training.router import label_columns, table_labels

    n = len(synth)
    extras = {
        "subtask": tuple(("anatomy", "law", "physics")[i % 3] for i in range(n)),
        "source_split": tuple(("train", "test")[i % 2] for i in range(n)),
        "notes": tuple(f"free text number {i} " * 5 for i in range(n)),
    }
    table = replace(synth, extras=extras)
    assert label_columns(table) == ["subtask"]
    assert table_labels(table)[1] == ["mc", "subtask=law"]
    r = train_router(table, "ridge", {"task_weight": 1.0})
    assert "subtask=law" in r.featurizer.tasks and "mc" in r.featurizer.tasks
    assert r.features(["x"], [["mc", "subtask=law"]]).task.sum() == 2.0


def test_arm_selection_prefers_the_simpler_arm_unless_clearly_better() -> None:
    from llmswitch.training.cascade import _arm_rank, _select

    rng = np.random.default_rng(0)
    n = 400
    simple = rng.random(n) < 0.70  # task-best arm: per-row quality
    noisy_gain = simple.copy()
    noisy_gain[rng.choice(n, 3, replace=False)] = True  # a probe arm that won 3 rows by luck
    clear_gain = simple | (rng.random(n) < 0.5)  # a probe arm that is right far more often
    ranks = [_arm_rank("pred:0"), _arm_rank("probe:1,2")]
    assert ranks[0] < ranks[1]
    for other, expected in ((noisy_gain, 0), (clear_gain, 1)):
        per_row = np.zeros((2, 1, 2, n))
        per_row[0, 0, 0], per_row[1, 0, 0] = simple, other
        assert _select(per_row, 0.0, ranks) == (expected, 0)
    # with equal quality, cost decides through λ: the cheaper arm is the best, whatever its rank
    per_row = np.zeros((2, 1, 2, n))
    per_row[:, 0, 0] = simple
    per_row[0, 0, 1], per_row[1, 0, 1] = 1.0, 0.2
    assert _select(per_row, 1.0, ranks) == (1, 0)


def test_auto_prefers_a_single_predictor_when_the_cascade_only_ties() -> None:
    from llmswitch.training.train import pick_candidate

    def result(kind: str, aiq: float, share: float | None = 0.4) -> dict:
        return {"kind": kind, "params": {}, "aiq": aiq, "cost_share_at_95": share}

    tie = [result("knn", 0.7694), result("ridge", 0.7702), result("cascade", 0.7704)]
    assert pick_candidate(tie)["kind"] == "ridge"  # best AIQ among the simple ones
    clear = [result("ridge", 0.8506), result("cascade", 0.8735)]
    assert pick_candidate(clear)["kind"] == "cascade"
    same = [result("knn", 0.70, 0.5), result("ridge", 0.70, 0.3)]
    assert pick_candidate(same)["kind"] == "ridge"  # then the lower cost share at 95%


def test_cascade_lambda_is_calibrated_like_other_kinds(tmp_path: Path) -> None:
    sample = load_table(DATA / "outcomes_sample.parquet",
                        responses=DATA / "responses_sample.parquet")
    from llmswitch.training.cascade import cross_validate_cascade
    from llmswitch.training.train import train_from_table

    folds = 3  # the trainer's calibration must agree with the same cross-validation (3: speed)
    curve = cross_validate_cascade(sample, folds)["curve"]
    budget = float(np.median([p["cost_usd"] for p in curve]))
    summary = train_from_table(sample, "cascade", tmp_path / "c.npz", folds=folds,
                               target_cost=budget)
    lam = summary["lambda"]
    point = next(p for p in curve if p["lambda"] == lam)
    assert point["cost_usd"] <= budget and lam > 0  # before: always λ = 0 (the dearest arms)
    assert point["quality"] == max(p["quality"] for p in curve if p["cost_usd"] <= budget)
    # the default target: the best single model's quality at the least cross-validated cost,
    # else (not reached on this small sample) the best cross-validated quality
    default = train_from_table(sample, "cascade", tmp_path / "d.npz", folds=folds)["lambda"]
    best_q = float(sample.quality.mean(axis=0).max())
    reach = [p for p in curve if p["quality"] >= best_q]
    expected = (min(reach, key=lambda p: p["cost_usd"]) if reach
                else max(curve, key=lambda p: (p["quality"], -p["lambda"])))
    assert default == expected["lambda"]
    assert load_router(tmp_path / "d.npz").lam == default


@pytest.mark.parametrize("change", [
    lambda m: m["policies"].pop("*"),
    lambda m: m["policies"]["*"].update(choice=m["policies"]["*"]["choice"][:3]),
    lambda m: m["policies"]["*"].update(mean_quality=[0.5]),
])
def test_a_cascade_file_whose_policies_cannot_be_served_fails_to_load(
    tmp_path: Path, change
) -> None:
    from llmswitch.routing.learned.io import RouterFileError, read_router_file, write_router_file

    sample = load_table(DATA / "outcomes_sample.parquet",
                        responses=DATA / "responses_sample.parquet")
    good = tmp_path / "c.npz"
    save_router(train_cascade(sample, folds=3), good)
    meta, arrays = read_router_file(good)
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    change(meta)
    write_router_file(tmp_path / "bad.npz", meta, arrays)
    with pytest.raises(RouterFileError, match="inconsistent"):
        load_router(tmp_path / "bad.npz")
