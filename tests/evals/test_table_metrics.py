import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from llmswitch.evals.metrics import Point, aiq, cost_at_quality, cost_share_at, nondecreasing_hull
from llmswitch.evals.replay import call_budget_summary, default_lambdas, evaluate
from llmswitch.evals.table import (
    OutcomeTable,
    TableError,
    kfold_indices,
    load_table,
    make_table,
    normalise_prompt,
    train_test_split,
)
from llmswitch.routing.learned.router import sweep_plans

DATA = Path(__file__).resolve().parents[1] / "data" / "routing"


def test_load_parquet_with_sibling_responses() -> None:
    table = load_table(
        DATA / "outcomes_sample.parquet", responses=DATA / "responses_sample.parquet"
    )
    assert len(table) == 120
    assert "gpt-4-1106-preview" in table.models
    assert table.quality.shape == table.cost.shape == (120, 11)
    assert table.responses is not None and len(table.responses["mistral-7b-chat"]) == 120
    assert table.task_names == ["arc-challenge", "mbpp", "winogrande"]


def test_load_jsonl_gz() -> None:
    table = load_table(DATA / "llmrouter_sample.jsonl.gz")
    assert len(table) == 120 and len(table.models) == 9
    assert "source_split" in table.extras


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return path


def test_validation_messages(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="does not exist"):
        load_table(tmp_path / "nope.parquet")
    bad = {
        "prompt_id": "a",
        "task": "t",
        "prompt": "x",
        "quality": {"m": 1.5},
        "cost_usd": {"m": 0.1},
    }
    with pytest.raises(TableError, match="invalid quality"):
        load_table(_write_jsonl(tmp_path / "bad.jsonl.gz", [bad]))
    nocost = {"prompt_id": "a", "task": "t", "prompt": "x", "quality": {"m": 1.0}}
    with pytest.raises(TableError, match="cost_usd"):
        load_table(_write_jsonl(tmp_path / "nocost.jsonl.gz", [nocost]))
    dup = {
        "prompt_id": "a",
        "task": "t",
        "prompt": "x",
        "quality": {"m": 1.0},
        "cost_usd": {"m": 0.1},
    }
    with pytest.raises(TableError, match="more than once"):
        load_table(_write_jsonl(tmp_path / "dup.jsonl.gz", [dup, dup]))


def test_splits_are_grouped_and_stratified() -> None:
    table = load_table(DATA / "llmrouter_sample.jsonl.gz")
    train, test = train_test_split(table, 0.3)
    assert len(train) + len(test) == len(table)
    keys_train = {normalise_prompt(table.prompts[i]) for i in train}
    assert not keys_train & {normalise_prompt(table.prompts[i]) for i in test}
    folds = kfold_indices(table, 5)
    assert len(folds) == 5
    covered = np.sort(np.concatenate([te for _, te in folds]))
    assert (covered == np.arange(len(table))).all()


def test_hull_and_aiq() -> None:
    pts = [Point(1, 0.5), Point(2, 0.6), Point(3, 0.9), Point(4, 0.85), Point(2.5, 0.55)]
    hull = nondecreasing_hull(pts)
    assert [(p.cost, p.quality) for p in hull] == [(1, 0.5), (3, 0.9)]
    # linear from 0.5 to 0.9 over [1, 3], flat 0.9 over [3, 4]: (0.7*2 + 0.9*1) / 3
    assert aiq(pts, 1, 4) == pytest.approx((0.7 * 2 + 0.9) / 3)
    assert cost_at_quality(pts, 0.7) == pytest.approx(2.0)
    assert cost_share_at(pts, 0.9, 3.0) == pytest.approx(1.0)
    assert cost_at_quality(pts, 0.95) is None
    # below the cheapest point nothing is reachable
    assert aiq([Point(3, 0.9)], 1, 4) == pytest.approx(0.9 / 3)


def _two_model_table() -> OutcomeTable:
    """40 prompts: the strong model helps on 10 long (costly) and 10 short ones only."""
    n = 40
    quality = np.ones((n, 2))
    quality[:20, 1] = 0.0  # weak: wrong on the first 20
    cost = np.zeros((n, 2))
    cost[:, 0] = np.where(np.arange(n) < 10, 10.0, 1.0)  # the first 10 prompts are long
    cost[20:30, 0] = 0.1  # ten tiny prompts
    cost[:, 1] = cost[:, 0] / 20
    columns = {"prompt_id": [f"p{i}" for i in range(n)], "task": ["t"] * n,
               "prompt": [f"q{i}" for i in range(n)]}
    return make_table(columns, ("strong", "weak"), quality, cost, {}, "synthetic")


def test_call_share_comes_from_the_margin_sweep_not_the_dollar_sweep() -> None:
    table = _two_model_table()
    # the router ranks the helpful prompts first by predicted gain, the tiny ones next
    predicted = np.array([[1.0, 0.0]] * 10 + [[0.9, 0.0]] * 10 + [[0.6, 0.4]] * 10
                         + [[1.0, 1.0]] * 10)
    lambdas = default_lambdas(table)
    plans = sweep_plans(predicted, table.cost, lambdas)
    by_dollars = evaluate(table, plans, None, lambdas)
    by_calls = evaluate(table, plans, None, lambdas, predicted_quality=predicted)
    assert by_dollars["call_share_basis"] == "lambda_sweep"
    assert by_calls["call_share_basis"] == "margin_sweep"
    # 95% of the strong model's quality = 38/40 right: 18 of the 20 helpful prompts on it
    assert by_calls["best_single_call_share_at_95"] == pytest.approx(18 / 40)
    assert by_calls["best_single_call_share_at_100"] == pytest.approx(20 / 40)
    # per dollar, the tiny prompts' small predicted gain comes before the long prompts' large
    # one, so the dollar sweep reaches 95% only by mixing its points up to "30 calls"
    assert by_dollars["best_single_call_share_at_95"] > 0.65
    assert by_calls["aiq"] == by_dollars["aiq"]  # cost figures are untouched
    curve = by_calls["call_curve"]
    assert curve[0]["margin"] == -1e9 and curve[0]["best_single_share"] == 1.0  # always strong
    assert curve[1]["margin"] == 0.0 and curve[1]["best_single_share"] == pytest.approx(0.75)
    assert curve[-1]["best_single_share"] == 0.0 and curve[-1]["quality"] == pytest.approx(0.5)
    assert by_calls["per_task"]["t"]["call_curve"] == curve


def test_margin_sweep_ranks_by_predicted_gain() -> None:
    table = _two_model_table()
    # a useless prediction (the strong model predicted better by the same margin everywhere)
    # cannot reach 95% before sending nearly everything: ties move together
    flat = np.array([[0.8, 0.5]] * 40)
    rows = np.ones(40, dtype=bool)
    flat_share = call_budget_summary(table, flat, rows)["best_single_call_share_at_95"]
    good = np.array([[1.0, 0.0]] * 20 + [[1.0, 1.0]] * 20)
    good_share = call_budget_summary(table, good, rows)["best_single_call_share_at_95"]
    assert good_share == pytest.approx(18 / 40)
    assert flat_share == pytest.approx((0.95 - 0.5) / 0.5)  # mixing "none" and "all"
