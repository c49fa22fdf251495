import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from llmswitch.cli.router import router as router_cli
from llmswitch.evals.replay import default_lambdas, evaluate
from llmswitch.evals.table import load_table
from llmswitch.routing.learned import calibrate_lambda, choose, load_router, save_router
from llmswitch.routing.learned.cascade import normalise_answer
from llmswitch.routing.learned.io import RouterFileError
from llmswitch.training.cascade import train_cascade
from llmswitch.training.replay import replay_table
from llmswitch.training.router import train_router

DATA = Path(__file__).resolve().parents[1] / "data" / "routing"
TABLE = DATA / "outcomes_sample.parquet"


@pytest.fixture(scope="module")
def table():
    return load_table(TABLE)


@pytest.mark.parametrize("kind", ["knn", "ridge", "logistic", "mf", "ensemble"])
def test_train_save_load_roundtrip(table, kind, tmp_path: Path) -> None:
    params = {"epochs": 30} if kind == "mf" else {}
    r = train_router(table, kind, params, lam=100.0)
    path = tmp_path / "r.npz"
    save_router(r, path)
    loaded = load_router(path)
    prompts = list(table.prompts[:7])
    a, b = r.predict(prompts), loaded.predict(prompts)
    assert np.allclose(a.quality, b.quality, atol=1e-3)
    assert np.allclose(a.cost, b.cost, rtol=1e-3)
    d = loaded.decide(prompts[0], candidates=["mistral-7b-chat", "gpt-4-1106-preview"])
    assert d.chosen in ("mistral-7b-chat", "gpt-4-1106-preview")
    assert set(d.predicted_quality) == {"mistral-7b-chat", "gpt-4-1106-preview"}
    assert all(0.0 <= q <= 1.0 for q in d.predicted_quality.values())
    assert "λ" in d.reason


def test_router_file_never_unpickles(tmp_path: Path) -> None:
    bad = tmp_path / "evil.npz"
    np.savez(bad, __meta__=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(RouterFileError):
        load_router(bad)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(RouterFileError):
        load_router(tmp_path / "junk.npz")


def _tampered(table, tmp_path: Path, meta_change=None, array_change=None) -> Path:
    from llmswitch.routing.learned.io import read_router_file, write_router_file

    good = tmp_path / "good.npz"
    save_router(train_router(table, "knn"), good)
    meta, arrays = read_router_file(good)
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    if meta_change:
        meta_change(meta)
    if array_change:
        array_change(arrays)
    bad = tmp_path / "bad.npz"
    write_router_file(bad, meta, arrays)
    return bad


@pytest.mark.parametrize(
    ("meta_change", "array_change", "message"),
    [
        (lambda m: m.update(models=[*m["models"], "extra"]), None, r"shape \(1, 11\) for 12"),
        (lambda m: m.update(models=m["models"][:2]), None, r"shape \(1, 11\) for 2 models"),
        (lambda m: m.update(models="abc"), None, "'models' must be a list of distinct names"),
        (lambda m: m.update(models=[m["models"][0]] * 11), None, "distinct names"),
        (lambda m: m.update({"lambda": float("nan")}), None, "stored λ nan"),
        (lambda m: m.update(quality_parts=[]), None, "no quality model"),
        (None, lambda a: a.update({"cost/coef": a["cost/coef"][:2]}), "inconsistent"),
        (None, lambda a: a.update({"features/keep": a["features/keep"][:100]}),
         "query has 100 feature columns"),
    ],
)
def test_a_router_file_whose_parts_disagree_fails_to_load(
    table, tmp_path: Path, meta_change, array_change, message
) -> None:
    bad = _tampered(table, tmp_path, meta_change, array_change)
    with pytest.raises(RouterFileError, match=message):
        load_router(bad)


def test_non_zip_and_pickled_files_say_so_without_pickle_advice(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("version https://git-lfs.github.com/spec/v1\n")  # an unpulled LFS pointer
    with pytest.raises(RouterFileError, match=r"not an \.npz archive"):
        load_router(junk)
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, __meta__=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(RouterFileError) as info:
        load_router(pickled)
    assert "pickled objects, which llmswitch never loads" in str(info.value)
    assert "allow_pickle" not in str(info.value)


def test_policy_and_calibration() -> None:
    q = np.array([[0.5, 0.9], [0.8, 0.85]])
    c = np.array([[1.0, 10.0], [1.0, 10.0]])
    assert choose(q, c, 0.0).tolist() == [1, 1]
    assert choose(q, c, 1.0).tolist() == [0, 0]
    lam = calibrate_lambda(q, c, target_cost=5.5)
    assert np.mean(c[np.arange(2), choose(q, c, lam)]) <= 5.5
    lam_q = calibrate_lambda(q, c, min_quality=0.85)
    assert np.mean(q[np.arange(2), choose(q, c, lam_q)]) >= 0.85


def test_decision_is_fast(table) -> None:
    r = train_router(table, "knn")
    r.decide(table.prompts[0])
    t0 = time.perf_counter()
    for p in table.prompts[:50]:
        feats = r.features([p])
    t_feat = (time.perf_counter() - t0) / 50
    t0 = time.perf_counter()
    for _ in range(50):
        r.decide(feats)
    t_dec = (time.perf_counter() - t0) / 50
    assert t_feat < 0.02 and t_dec < 0.02  # generous for CI; measured ~1 ms and ~0.3 ms


def test_replay_report_contract(table) -> None:
    r = train_router(table, "knn")
    lambdas = default_lambdas(table)
    rep = evaluate(table, r.replay(list(table.prompts), lambdas), None, lambdas)
    for key in (
        "best_single",
        "aiq",
        "cost_share_at_95",
        "cost_share_at_100",
        "curve",
        "baselines",
        "per_task",
    ):
        assert key in rep
    assert set(rep["best_single"]) == {"model", "quality", "cost_usd"}
    point = rep["curve"][0]
    assert set(point) == {"lambda", "quality", "cost_usd", "model_shares"}
    assert sum(point["model_shares"].values()) == pytest.approx(1.0)
    assert {"single", "random", "zero_router", "oracle"} <= set(rep["baselines"])
    assert rep["baselines"]["oracle"]["aiq"] >= rep["aiq"] - 1e-9


def test_cascade_scorer(table, tmp_path: Path) -> None:
    assert normalise_answer(" B\n") == "B"
    assert normalise_answer("(c) because") == "C"
    casc = train_cascade(table, base_kind="knn", folds=2)
    save_router(casc, tmp_path / "c.npz")
    loaded = load_router(tmp_path / "c.npz")
    lambdas = default_lambdas(table)
    plans = replay_table(loaded, table, lambdas, [])
    assert plans[0].called.sum(axis=1).min() >= 1
    rep = evaluate(table, plans, None, lambdas)
    assert 0.0 < rep["aiq"] <= 1.0


def test_cli_train_eval_json(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.npz"
    res = runner.invoke(
        router_cli, ["train", "--data", str(TABLE), "--kind", "knn", "--out", str(out), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(router_cli, ["eval", "--data", str(TABLE), "--router", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["best_single"]["model"] == "gpt-4-1106-preview"
    res = runner.invoke(
        router_cli, ["eval", "--data", str(TABLE), "--router", str(out), "--task", "mbpp"]
    )
    assert res.exit_code == 0 and "mbpp" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--data", "missing.parquet", "--kind", "knn", "--out", "x.npz"],
            "does not exist",
        ),
        (["train", "--data", str(TABLE), "--kind", "bogus", "--out", "x.npz"], "bogus"),
        (["eval", "--data", str(TABLE), "--router", "missing.npz"], "does not exist"),
        (["eval", "--data", str(TABLE), "--router", "x.npz", "--task", "nope"], "task 'nope'"),
    ],
)
def test_cli_errors_are_one_line(args, message) -> None:
    res = CliRunner().invoke(router_cli, args)
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output


def test_learned_route_selector(table) -> None:
    from llmswitch.messages import Message
    from llmswitch.request import Request
    from llmswitch.strategies.learned import LearnedSelector

    r = train_router(table, "knn")
    sel = LearnedSelector(r, {"gpt-4-1106-preview": "strong", "mistral-7b-chat": "cheap"}, 1e9)
    d = sel.decide(Request(messages=[Message.user(table.prompts[0])]))
    assert d.chosen == "cheap"
    assert "q:gpt-4-1106-preview" in d.scores and "usd:mistral-7b-chat" in d.scores
    assert sel.candidates() == ["strong", "cheap"]
