"""Malformed outcome tables are a `TableError` naming the file and row, never an internal error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmswitch.evals.table import TableError, load_table, table_from_records
from llmswitch.training.evaluate import EvalError, evaluate_kind


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"prompt_id": "p1", "task": "t", "prompt": "x",
                            "quality": {"a": 1.0, "b": 0.5}, "cost_usd": {"a": 0.01, "b": 0.001}}
    return {**base, **overrides}


def jsonl(tmp_path: Path, *records: Any) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(("field", "value", "shape"), [
    ("quality", [1], "{model: score}"),
    ("quality", 1, "{model: score}"),
    ("quality", None, "{model: score}"),
    ("quality", "a", "{model: score}"),
    ("cost_usd", [0.1], "{model: USD}"),
    ("cost_usd", 0.1, "{model: USD}"),
])
def test_quality_or_cost_that_is_not_an_object(
    tmp_path: Path, field: str, value: Any, shape: str
) -> None:
    for at in (1, 2):  # in the first row, and in a later one
        records = [row(), row(prompt_id="p2", **{field: value})]
        if at == 1:
            records.reverse()
        path = jsonl(tmp_path, *records)
        with pytest.raises(TableError) as info:
            load_table(path)
        assert str(info.value) == f"{path}: row {at}: '{field}' must be an object {shape}"


@pytest.mark.parametrize("line", [[1, 2], 5, "text", None])
def test_rows_that_are_not_objects(tmp_path: Path, line: Any) -> None:
    for records, at in (([line], 1), ([row(), line], 2)):
        path = jsonl(tmp_path, *records)
        with pytest.raises(TableError, match=rf"row {at}: expected a JSON object, got "):
            load_table(path)


@pytest.mark.parametrize(("quality", "shown"), [
    ({"a": "0.5", "b": 1}, "quality['a'] is '0.5'"),
    ({"a": True, "b": 1}, "quality['a'] is True"),
    ({"a": None, "b": 1}, "quality['a'] is None"),
    ({"a": [1], "b": 1}, "quality['a'] is [1]"),
    ({"a": {"x": 1}, "b": 1}, "quality['a'] is {'x': 1}"),
    ({"b": 1}, "'quality' has no 'a'"),
])
def test_values_that_are_not_numbers(tmp_path: Path, quality: dict[str, Any], shown: str) -> None:
    path = jsonl(tmp_path, row(), row(prompt_id="p2", quality=quality))
    with pytest.raises(TableError) as info:
        load_table(path)
    assert str(info.value) == (f"{path}: row 2 ('p2'): needs a numeric quality/cost for every "
                               f"model of row 1; {shown}")


def test_numbers_as_ints_and_floats_are_read(tmp_path: Path) -> None:
    table = load_table(jsonl(tmp_path, row(quality={"a": 1, "b": 0}), row(prompt_id="p2")))
    assert table.quality.tolist() == [[1.0, 0.0], [1.0, 0.5]]


def test_records_from_python_are_checked_too() -> None:
    with pytest.raises(TableError, match=r"^memo: row 1: 'quality' must be an object"):
        table_from_records([row(quality=(1, 2))], "memo")
    with pytest.raises(TableError, match=r"^table: row 1: expected a JSON object, got list"):
        table_from_records([["p1", "t"]])  # type: ignore[list-item]


def test_not_utf8_and_corrupt_gzip(tmp_path: Path) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(TableError, match="not UTF-8"):
        load_table(latin)
    whole = gzip.compress(b'{"prompt_id": "a"}\n' * 200)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(whole[:20] + b"\xff" * 30 + whole[50:])  # valid header, corrupt data
    with pytest.raises(TableError, match="cannot read"):
        load_table(broken)


def test_parquet_column_of_text_where_numbers_belong(tmp_path: Path) -> None:
    path = tmp_path / "outcomes_x.parquet"
    pq.write_table(pa.table({"prompt_id": ["a", "b"], "task": ["t", "t"], "prompt": ["x", "y"],
                             "quality.m": ["0.5", "high"], "cost_usd.m": [0.1, 0.2]}), path)
    with pytest.raises(TableError) as info:
        load_table(path)
    assert str(info.value) == f"{path}: column 'quality.m' must hold numbers, not '0.5'"


def test_cross_validation_minimum_in_the_library(tmp_path: Path) -> None:
    path = jsonl(tmp_path, *(row(prompt_id=f"p{i}", prompt=f"q {i}") for i in range(5)))
    table = load_table(path)
    with pytest.raises(EvalError, match="table has 5 prompts; need at least 10 to cross-validate "
                                        "with 5 folds"):
        evaluate_kind(table, "knn", folds=5)


def test_a_model_missing_from_row_one_is_an_error_not_dropped(tmp_path: Path) -> None:
    later = row(prompt_id="p2", quality={"a": 1.0, "b": 0.5, "c": 1.0},
                cost_usd={"a": 0.01, "b": 0.001, "c": 0.1})
    with pytest.raises(TableError, match=r"row 2 \('p2'\) has model 'c', which row 1 lacks"):
        load_table(jsonl(tmp_path, row(), later))


def test_a_cost_column_without_its_quality_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"prompt_id": ["p"], "task": ["t"], "prompt": ["x"],
                             "quality.a": [1.0], "cost_usd.a": [0.1], "cost_usd.b": [0.2]}), path)
    with pytest.raises(TableError, match="cost_usd column without quality column for b"):
        load_table(path)


def test_collected_jsonl_responses_are_the_recorded_answers(tmp_path: Path) -> None:
    rows = [row(prompt_id=f"p{i}", responses={"a": f"A{i}", "b": f"B{i}"}, reference="x")
            for i in range(3)]
    table = load_table(jsonl(tmp_path, *rows))
    assert table.responses == {"a": ("A0", "A1", "A2"), "b": ("B0", "B1", "B2")}
    assert "responses" not in table.extras and "reference" in table.extras


def test_a_responses_file_that_matches_no_model_or_is_missing(tmp_path: Path) -> None:
    table = jsonl(tmp_path, row())
    wrong = tmp_path / "responses_x.parquet"
    pq.write_table(pa.table({"prompt_id": ["p1"], "response.zzz": ["B"]}), wrong)
    with pytest.raises(TableError, match=r"no response\.<model> column for any model"):
        load_table(table, responses=wrong)
    with pytest.raises(TableError, match=r"responses file '.*nope\.parquet' does not exist"):
        load_table(table, responses=tmp_path / "nope.parquet")


def test_folds_that_cannot_be_filled_are_an_error(tmp_path: Path) -> None:
    from llmswitch.evals.table import kfold_indices

    same = [row(prompt_id=f"p{i}", task=f"t{i % 2}", prompt="the same text") for i in range(20)]
    with pytest.raises(ValueError, match="cannot cross-validate: too few distinct prompt texts"):
        kfold_indices(load_table(jsonl(tmp_path, *same)), 5)
    with pytest.raises(ValueError, match="cannot cross-validate"):  # before: AIQ from 0 folds
        evaluate_kind(load_table(jsonl(tmp_path, *same)), "cascade", 5)


def test_answer_columns_are_never_router_labels(tmp_path: Path) -> None:
    from llmswitch.training.router import label_columns

    rows = [row(prompt_id=f"p{i}", reference="ABCD"[i % 4], subject="xyz"[i % 3])
            for i in range(12)]
    assert label_columns(load_table(jsonl(tmp_path, *rows))) == ["subject"]
