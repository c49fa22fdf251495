import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from llmswitch.evals.metrics import Point, aiq, cost_at_quality, cost_share_at, nondecreasing_hull
from llmswitch.evals.table import (
    TableError,
    kfold_indices,
    load_table,
    normalise_prompt,
    train_test_split,
)

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
