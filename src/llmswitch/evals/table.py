"""Outcome tables: per prompt, every candidate model's recorded quality and cost.

An outcome table is the training and evaluation data of learned routers. Two encodings are read:

* Parquet (wide): columns ``prompt_id``, ``task``, ``prompt``, any extra columns, then for every
  model ``quality.<model>`` (float in [0, 1]) and ``cost_usd.<model>`` (float >= 0, USD per call).
* JSON lines, optionally gzip-compressed: one object per prompt,
  ``{"prompt_id", "task", "prompt", <extras>, "quality": {model: q}, "cost_usd": {model: usd}}``.

A table may come with recorded responses (``responses_<split>.parquet``: ``prompt_id`` and
``response.<model>``), which the learned cascade scorer uses.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

REQUIRED_COLUMNS = ("prompt_id", "task", "prompt")
QUALITY_PREFIX = "quality."
COST_PREFIX = "cost_usd."
RESPONSE_PREFIX = "response."


class TableError(ValueError):
    """An outcome table could not be read or is malformed (the message says where and why)."""


@dataclass(frozen=True)
class OutcomeTable:
    """Recorded outcomes: ``quality[i, j]`` and ``cost[i, j]`` of ``models[j]`` on prompt ``i``."""

    prompt_ids: tuple[str, ...]
    tasks: tuple[str, ...]
    prompts: tuple[str, ...]
    models: tuple[str, ...]
    quality: FloatArray
    cost: FloatArray
    extras: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    responses: dict[str, tuple[str, ...]] | None = None
    source: str = ""

    def __len__(self) -> int:
        """Return the number of prompts."""
        return len(self.prompt_ids)

    def subset(self, index: Sequence[int] | IntArray) -> OutcomeTable:
        """Return the rows at ``index`` (in that order) as a new table."""
        idx = np.asarray(index, dtype=np.int64)

        def pick(values: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(values[i] for i in idx)

        responses = None
        if self.responses is not None:
            responses = {m: pick(v) for m, v in self.responses.items()}
        return OutcomeTable(
            prompt_ids=pick(self.prompt_ids),
            tasks=pick(self.tasks),
            prompts=pick(self.prompts),
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
            extras={k: pick(v) for k, v in self.extras.items()},
            responses=responses,
            source=self.source,
        )

    def with_responses(self, responses: dict[str, tuple[str, ...]]) -> OutcomeTable:
        """Return the table with these recorded responses (``{model: one text per row}``)."""
        return dataclasses.replace(self, responses=dict(responses))

    def for_task(self, task: str) -> OutcomeTable:
        """Return only the rows of ``task``; raise `TableError` naming the known tasks if absent."""
        index = [i for i, t in enumerate(self.tasks) if t == task]
        if not index:
            known = ", ".join(sorted(set(self.tasks)))
            raise TableError(
                f"task {task!r} not in table {self.source or '(memory)'}; tasks: {known}"
            )
        return self.subset(index)

    def select_models(self, models: Sequence[str]) -> OutcomeTable:
        """Return the table restricted to ``models`` (in that order)."""
        missing = [m for m in models if m not in self.models]
        if missing:
            raise TableError(f"models not in table: {', '.join(missing)}")
        cols = [self.models.index(m) for m in models]
        responses = None
        if self.responses is not None:
            responses = {m: self.responses[m] for m in models if m in self.responses}
        return OutcomeTable(
            self.prompt_ids,
            self.tasks,
            self.prompts,
            tuple(models),
            self.quality[:, cols],
            self.cost[:, cols],
            dict(self.extras),
            responses,
            self.source,
        )

    @property
    def task_names(self) -> list[str]:
        """Sorted distinct task names."""
        return sorted(set(self.tasks))


def normalise_prompt(text: str) -> str:
    """Whitespace- and case-normalised text: rows with equal keys form one group in splits."""
    return re.sub(r"\s+", " ", text).strip().lower()


# ----------------------------------------------------------------------------------------------
# construction and validation
# ----------------------------------------------------------------------------------------------


def _record_models(records: Sequence[dict[str, Any]], where: str) -> tuple[str, ...]:
    """Check the records' shape and return the models (row 1's, which every row must match)."""
    if not records:
        raise TableError(f"{where}: no rows")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise TableError(
                f"{where}: row {i + 1}: expected a JSON object, got {type(rec).__name__}"
            )
    first = records[0]
    for col in (*REQUIRED_COLUMNS, "quality", "cost_usd"):
        if col not in first:
            raise TableError(f"{where}: row 1 has no {col!r} field")
    for i, rec in enumerate(records):
        for col, what in (("quality", "score"), ("cost_usd", "USD")):
            if not isinstance(rec.get(col), dict):
                raise TableError(f"{where}: row {i + 1}: {col!r} must be an object "
                                 f"{{model: {what}}}")
    models = tuple(first["quality"].keys())
    for i, rec in enumerate(records):
        extra = [m for m in (*rec["quality"], *rec["cost_usd"]) if m not in models]
        if extra:
            raise TableError(f"{where}: row {i + 1} ({rec.get('prompt_id')!r}) has model "
                             f"{extra[0]!r}, which row 1 lacks (every row needs the same models)")
    return models


def table_from_records(records: Sequence[dict[str, Any]], source: str = "") -> OutcomeTable:
    """Build and validate a table from JSON-lines style records (nested quality/cost_usd)."""
    where = source or "table"
    models = _record_models(records, where)
    quality = np.empty((len(records), len(models)))
    cost = np.empty((len(records), len(models)))
    extra_keys = [k for k in records[0] if k not in (*REQUIRED_COLUMNS, "quality", "cost_usd")]
    for i, rec in enumerate(records):
        for col, matrix in (("quality", quality), ("cost_usd", cost)):
            matrix[i] = [_number(rec[col], m, f"{where}: row {i + 1} ({rec.get('prompt_id')!r})",
                                 col) for m in models]
    columns: dict[str, list[Any]] = {c: [r.get(c) for r in records] for c in REQUIRED_COLUMNS}
    extras = {k: tuple(r.get(k) for r in records) for k in extra_keys if k != "responses"}
    table = make_table(columns, models, quality, cost, extras, source)
    responses = _record_responses(records, models)
    return table if responses is None else table.with_responses(responses)


def _record_responses(
    records: Sequence[dict[str, Any]], models: tuple[str, ...]
) -> dict[str, tuple[str, ...]] | None:
    """The ``responses`` field (``{model: text}``, as `router collect` writes it), per model."""
    if not any(isinstance(r.get("responses"), dict) and r["responses"] for r in records):
        return None
    out: dict[str, tuple[str, ...]] = {}
    for m in models:
        texts = [(r.get("responses") or {}).get(m) for r in records]
        if any(t is not None for t in texts):
            out[m] = tuple("" if t is None else str(t) for t in texts)
    return out or None


def _number(values: dict[str, Any], model: str, where: str, col: str) -> float:
    """``values[model]`` as a float; TableError if missing or not a JSON number."""
    need = f"{where}: needs a numeric quality/cost for every model of row 1"
    if model not in values:
        raise TableError(f"{need}; {col!r} has no {model!r}")
    value = values[model]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TableError(f"{need}; {col}[{model!r}] is {value!r}")
    return float(value)


def make_table(
    columns: dict[str, list[Any]],
    models: tuple[str, ...],
    quality: FloatArray,
    cost: FloatArray,
    extras: dict[str, tuple[Any, ...]],
    source: str,
) -> OutcomeTable:
    """Validate the parts and assemble an `OutcomeTable`."""
    where = source or "table"
    if not models:
        raise TableError(
            f"{where}: no models (expected quality.<model> and cost_usd.<model> columns)"
        )
    for col in REQUIRED_COLUMNS:
        values = columns[col]
        bad = [
            i for i, v in enumerate(values) if not isinstance(v, str) or (col != "prompt" and not v)
        ]
        if bad:
            raise TableError(
                f"{where}: column {col!r} must hold strings; row {bad[0] + 1} does not"
            )
    ids = columns["prompt_id"]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise TableError(f"{where}: prompt_id {dup!r} occurs more than once")
    _check_matrix(quality, models, "quality", where, upper=1.0)
    _check_matrix(cost, models, "cost_usd", where, upper=math.inf)
    return OutcomeTable(
        tuple(ids),
        tuple(columns["task"]),
        tuple(columns["prompt"]),
        models,
        quality.astype(np.float64),
        cost.astype(np.float64),
        extras,
        None,
        source,
    )


def _check_matrix(
    values: FloatArray, models: tuple[str, ...], name: str, where: str, upper: float
) -> None:
    bad = ~np.isfinite(values) | (values < 0) | (values > upper)
    if bad.any():
        row, col = (int(x) for x in np.argwhere(bad)[0])
        allowed = "[0, 1]" if upper == 1.0 else ">= 0"
        raise TableError(
            f"{where}: {int(bad.sum())} invalid {name} values (must be finite and {allowed}); "
            f"first at row {row + 1}, model {models[col]!r}: {values[row, col]!r}"
        )


# ----------------------------------------------------------------------------------------------
# reading files
# ----------------------------------------------------------------------------------------------


def resolve_table_path(path: str | Path) -> Path:
    """Resolve ``path`` (a table file or a folder holding exactly one ``outcomes_*`` table)."""
    p = Path(path)
    if not p.exists():
        raise TableError(f"outcome table {str(p)!r} does not exist")
    if p.is_file():
        return p
    found = sorted(p.glob("outcomes_*.parquet")) or sorted(p.glob("outcomes_*.jsonl*"))
    if len(found) != 1:
        names = ", ".join(f.name for f in found) or "none"
        raise TableError(
            f"folder {str(p)!r} must hold exactly one outcomes_*.parquet table (found {names})"
        )
    return found[0]


def load_table(path: str | Path, responses: str | Path | None = None) -> OutcomeTable:
    """Read and validate an outcome table (Parquet, ``.jsonl`` or ``.jsonl.gz``).

    ``path`` may be a folder holding one ``outcomes_<split>.*`` file. Recorded responses are
    read from ``responses`` if given, else from a sibling ``responses_<split>.parquet``.
    """
    p = resolve_table_path(path)
    name = p.name.lower()
    if name.endswith(".parquet"):
        table = _read_parquet(p)
    elif name.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
        table = _read_jsonl(p)
    else:
        raise TableError(f"{p}: unknown table format (use .parquet, .jsonl or .jsonl.gz)")
    resp_path = Path(responses) if responses is not None else _sibling_responses(p)
    if resp_path is not None:
        table = attach_responses(table, resp_path)
    return table


def _sibling_responses(p: Path) -> Path | None:
    match = re.match(r"outcomes_(.+?)\.(parquet|jsonl\.gz|jsonl)$", p.name)
    if not match:
        return None
    candidate = p.with_name(f"responses_{match.group(1)}.parquet")
    return candidate if candidate.exists() else None


def _import_pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise TableError(
            "reading Parquet needs pyarrow: pip install 'llmswitch[router]' (or use .jsonl.gz)"
        ) from None
    return pq


def _read_parquet(p: Path) -> OutcomeTable:
    pq = _import_pyarrow()
    try:
        data: dict[str, list[Any]] = pq.read_table(p).to_pydict()
    except Exception as exc:  # pyarrow raises several unrelated types
        raise TableError(f"{p}: not a readable Parquet file ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in data]
    if missing:
        raise TableError(f"{p}: missing required column(s) {', '.join(missing)}")
    models = tuple(c[len(QUALITY_PREFIX) :] for c in data if c.startswith(QUALITY_PREFIX))
    no_cost = [m for m in models if COST_PREFIX + m not in data]
    if no_cost:
        raise TableError(f"{p}: quality column without cost_usd column for {', '.join(no_cost)}")
    no_quality = [c[len(COST_PREFIX):] for c in data
                  if c.startswith(COST_PREFIX) and c[len(COST_PREFIX):] not in models]
    if no_quality:
        raise TableError(f"{p}: cost_usd column without quality column for "
                         f"{', '.join(no_quality)}")
    n = len(data["prompt_id"])

    def matrix(prefix: str) -> FloatArray:
        cols = []
        for m in models:
            values = data[prefix + m]
            bad = next((v for v in values if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float)))), None)
            if bad is not None:
                raise TableError(f"{p}: column {prefix + m!r} must hold numbers, not {bad!r}")
            cols.append(np.asarray([np.nan if v is None else v for v in values], np.float64))
        return np.stack(cols, axis=1) if cols else np.empty((n, 0))

    extras = {
        k: tuple(v)
        for k, v in data.items()
        if k not in REQUIRED_COLUMNS and not k.startswith((QUALITY_PREFIX, COST_PREFIX))
    }
    columns = {c: list(data[c]) for c in REQUIRED_COLUMNS}
    return make_table(columns, models, matrix(QUALITY_PREFIX), matrix(COST_PREFIX), extras, str(p))


def _read_jsonl(p: Path) -> OutcomeTable:
    opener: Any = gzip.open if p.name.lower().endswith(".gz") else open
    records = []
    try:
        with opener(p, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise TableError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise TableError(f"{p}: cannot read ({exc})") from None
    except UnicodeDecodeError as exc:
        raise TableError(f"{p}: not UTF-8 text (byte {exc.start}); is it a JSON-lines table?"
                         ) from None
    return table_from_records(records, str(p))


def attach_responses(table: OutcomeTable, path: str | Path) -> OutcomeTable:
    """Return ``table`` with recorded responses read from a ``responses_*.parquet`` file."""
    pq = _import_pyarrow()
    if not Path(path).is_file():
        raise TableError(f"responses file {str(path)!r} does not exist")
    try:
        data: dict[str, list[Any]] = pq.read_table(Path(path)).to_pydict()
    except Exception as exc:
        raise TableError(f"{path}: not a readable responses Parquet file ({exc})") from None
    if "prompt_id" not in data:
        raise TableError(f"{path}: responses file has no prompt_id column")
    row = {pid: i for i, pid in enumerate(data["prompt_id"])}
    missing = [pid for pid in table.prompt_ids if pid not in row]
    if missing:
        raise TableError(f"{path}: no responses for {len(missing)} prompts, e.g. {missing[0]!r}")
    responses: dict[str, tuple[str, ...]] = {}
    for m in table.models:
        col = data.get(RESPONSE_PREFIX + m)
        if col is not None:
            responses[m] = tuple(str(col[row[pid]] or "") for pid in table.prompt_ids)
    if not responses:
        raise TableError(f"{path}: no {RESPONSE_PREFIX}<model> column for any model of the table "
                         f"(e.g. {RESPONSE_PREFIX}{table.models[0]})")
    return table.with_responses(responses)


# ----------------------------------------------------------------------------------------------
# splits
# ----------------------------------------------------------------------------------------------


def _task_groups(table: OutcomeTable) -> dict[str, list[list[int]]]:
    """Per task, the row groups of identical normalised prompt text (first row decides task)."""
    group_of: dict[str, list[int]] = {}
    task_of: dict[str, str] = {}
    for i, (text, task) in enumerate(zip(table.prompts, table.tasks, strict=True)):
        key = normalise_prompt(text)
        group_of.setdefault(key, []).append(i)
        task_of.setdefault(key, task)
    per_task: dict[str, list[list[int]]] = {}
    for key, rows in group_of.items():
        per_task.setdefault(task_of[key], []).append(rows)
    return per_task


def train_test_split(
    table: OutcomeTable, test_fraction: float = 0.3, seed: str = "llmswitch"
) -> tuple[IntArray, IntArray]:
    """Split rows per task (stratified), keeping identical prompts together; return index arrays."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    train: list[int] = []
    test: list[int] = []
    for task, groups in sorted(_task_groups(table).items()):
        random.Random(f"{seed}-{task}").shuffle(groups)
        n_train = round(len(groups) * (1.0 - test_fraction))
        for k, rows in enumerate(groups):
            (train if k < n_train else test).extend(rows)
    return np.asarray(sorted(train), dtype=np.int64), np.asarray(sorted(test), dtype=np.int64)


def kfold_indices(
    table: OutcomeTable, k: int = 5, seed: str = "llmswitch"
) -> list[tuple[IntArray, IntArray]]:
    """K folds stratified by task and grouped by identical prompt text: (train, test) pairs."""
    if k < 2:
        raise ValueError("k must be at least 2")
    fold_of = np.zeros(len(table), dtype=np.int64)
    for task, groups in sorted(_task_groups(table).items()):
        random.Random(f"{seed}-{task}").shuffle(groups)
        for g, rows in enumerate(groups):
            fold_of[rows] = g % k
    folds = []
    for f in range(k):
        test = np.flatnonzero(fold_of == f)
        train = np.flatnonzero(fold_of != f)
        if len(test) and len(train):
            folds.append((train.astype(np.int64), test.astype(np.int64)))
    if len(folds) < 2:
        per_task = {t: len(g) for t, g in _task_groups(table).items()}
        raise ValueError(f"cannot cross-validate: too few distinct prompt texts per task to "
                         f"fill 2 folds ({', '.join(f'{t}: {n}' for t, n in per_task.items())};"
                         " identical prompts stay together); add prompts")
    return folds
