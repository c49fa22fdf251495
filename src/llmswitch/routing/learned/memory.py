"""Answer memory: the known-good answers of training prompts, found again by near-duplicate search.

When a new prompt's *question* (its last paragraph: few-shot examples before it are ignored) is a
near-duplicate of a training question whose good answer is known, a cheap model's answer can be
compared with that answer. The cascade turns the comparison into a *relation* per probe answer:

* ``s`` – the answer is the same as the neighbour's good answer;
* ``d`` – it differs;
* ``-`` – no neighbour at cosine similarity ≥ ``threshold``, or no comparable answer;
* ``S`` / ``D`` – the same or different from the answer of an *identical* question: kept apart
  from ``s``/``d`` because a repeated question and a near-duplicate mean different things.

What a relation means is learned per task from out-of-fold training rows, not assumed: on
repeated questions ``s`` predicts a good answer, while on Winogrande, whose questions come in
*twins* that differ in a trigger word and have opposite answers, ``d`` does. Answers are compared
by content: a choice letter is replaced by its option's text (options are shuffled between
twins), other short answers by their normalised text; long free-form answers (code) are never
compared.

The memory stores, per training prompt with a known good answer, a hashed word uni/bigram TF-IDF
vector of its question (IDF over the remembered questions, so shared instructions count little;
L2-normalised; no text) and the good answer's normalised content.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from llmswitch.routing.learned.features import _TOKEN, HASH_BITS, _bucket

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

THRESHOLD = 0.7
IDENTICAL = 0.9999
SAME_QUESTION = "="  # prefix of a known answer that comes from an identical question
MAX_ANSWER_CHARS = 80
NONE = "-"
_OPTION = re.compile(r"(?m)^\s*\(?([A-Ea-e])[).:]\s*(\S.*?)\s*$")
_LETTER = re.compile(r"^\(?([A-Ea-e])\)?(?:[\s.:)\]]|$)")
_ANSWER_IS = re.compile(r"answer(?: is)?\s*[:\-]?\s*\(?([A-E])\b")


def question_of(prompt: str) -> str:
    """The prompt's last paragraph with some words in it (the question after any examples)."""
    parts = [p for p in re.split(r"\n\s*\n", prompt) if len(re.findall(r"\w+", p)) >= 4]
    return parts[-1] if parts else prompt[-600:]


def answer_letter(text: str) -> str | None:
    """The choice letter an answer starts with (or states as "answer is X"), if any."""
    t = text.strip()
    m = _LETTER.match(t) or _ANSWER_IS.search(t[:200])
    return m.group(1).upper() if m else None


def canonical_answer(prompt: str, answer: str) -> str | None:
    """Comparable content of ``answer``: its option's text for a choice letter, else short text.

    `None` for long free-form answers, which are not compared.
    """
    letter = answer_letter(answer)
    if letter is not None:
        options = {k.upper(): v for k, v in _OPTION.findall(question_of(prompt))}
        return "opt:" + options[letter].lower() if letter in options else "letter:" + letter
    text = re.sub(r"\s+", " ", answer.strip().lower())
    return text if 0 < len(text) <= MAX_ANSWER_CHARS else None


def question_counts(prompts: Sequence[str]) -> sparse.csr_matrix:
    """Hashed word uni- and bigram counts of each prompt's question."""
    indptr, indices, data = [0], list[int](), list[float]()
    for prompt in prompts:
        tokens = _TOKEN.findall(question_of(prompt).lower())
        counts = Counter(_bucket(t) for t in [*tokens, *(f"{a} {b}" for a, b in pairwise(tokens))])
        indices.extend(counts.keys())
        data.extend(float(c) for c in counts.values())
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data), np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(prompts), 1 << HASH_BITS),
    )


@dataclass(frozen=True)
class IDF:
    """Inverse document frequency of hashed columns (sorted ``columns``; others get ``unseen``)."""

    columns: IntArray
    values: FloatArray
    unseen: float

    @classmethod
    def fit(cls, counts: sparse.csr_matrix) -> IDF:
        """Smoothed IDF (``log((1 + n) / (1 + df)) + 1``) of the columns used in ``counts``."""
        n = counts.shape[0]
        columns, df = np.unique(counts.indices, return_counts=True)
        values = np.log((1.0 + n) / (1.0 + df)) + 1.0
        return cls(columns.astype(np.int64), values, math.log(1.0 + n) + 1.0)

    def weigh(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Rows of ``counts`` weighted by IDF and L2-normalised (boilerplate counts little)."""
        out = counts.tocsr(copy=True)
        pos = np.searchsorted(self.columns, out.indices)
        pos = np.minimum(pos, max(len(self.columns) - 1, 0))
        if len(self.columns):
            weights = np.where(self.columns[pos] == out.indices, self.values[pos], self.unseen)
        else:
            weights = np.full(len(out.indices), self.unseen)
        out.data = out.data * weights
        norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1)).ravel())
        return (sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ out).tocsr()


def good_answer(prompt: str, answers: Sequence[str], quality: Sequence[float]) -> str | None:
    """The most common comparable answer among the models that scored ≥ 0.5 on ``prompt``."""
    votes = Counter(
        c
        for a, q in zip(answers, quality, strict=True)
        if q >= 0.5 and (c := canonical_answer(prompt, a)) is not None
    )
    return votes.most_common(1)[0][0] if votes else None


def relation(prompt: str, known: str | None, raw_answers: Sequence[str]) -> str:
    """One relation symbol (``s``/``d``/``-``) per answer, joined: see the module doc."""
    if known is None:
        return NONE * len(raw_answers)
    identical = known.startswith(SAME_QUESTION)
    known = known.removeprefix(SAME_QUESTION)
    symbols = []
    for raw in raw_answers:
        c = canonical_answer(prompt, raw)
        symbol = NONE if c is None else "s" if c == known else "d"
        symbols.append(symbol.upper() if identical else symbol)
    return "".join(symbols)


@dataclass
class AnswerMemory:
    """Question vectors, good answers and tasks of training prompts (see the module doc)."""

    vectors: sparse.csr_matrix
    answers: list[str]
    tasks: list[str]
    idf: IDF
    threshold: float = THRESHOLD
    rows: list[int] | None = None  # training-table row of each entry (not saved)

    @classmethod
    def build(
        cls,
        prompts: Sequence[str],
        tasks: Sequence[str],
        responses: dict[str, tuple[str, ...]],
        models: Sequence[str],
        quality: FloatArray,
    ) -> AnswerMemory:
        """Memory of the rows whose good answer is known (models without responses are skipped)."""
        cols = [j for j, m in enumerate(models) if m in responses]
        keep, answers = [], []
        for i, prompt in enumerate(prompts):
            good = good_answer(
                prompt, [responses[models[j]][i] for j in cols], [quality[i, j] for j in cols]
            )
            if good is not None:
                keep.append(i)
                answers.append(good)
        counts = question_counts([prompts[i] for i in keep])
        idf = IDF.fit(counts)
        return cls(idf.weigh(counts), answers, [tasks[i] for i in keep], idf, rows=keep)

    def without_rows(self, rows: Sequence[int] | IntArray) -> AnswerMemory:
        """The memory minus the entries of the given training-table rows (for out-of-fold use)."""
        drop = {int(r) for r in rows}
        assert self.rows is not None
        return self.subset([k for k, r in enumerate(self.rows) if r not in drop])

    def neighbours(self, prompts: Sequence[str], tasks: Sequence[str | None]) -> list[int]:
        """Index of each prompt's nearest remembered question (same task if known), or -1."""
        return [j for j, _ in self._nearest(prompts, tasks)]

    def _nearest(
        self, prompts: Sequence[str], tasks: Sequence[str | None]
    ) -> list[tuple[int, float]]:
        out = [(-1, 0.0)] * len(prompts)
        if not self.answers or not prompts:
            return out
        sims = (self.idf.weigh(question_counts(prompts)) @ self.vectors.T).toarray()
        mem_tasks = np.asarray(self.tasks)
        for i, task in enumerate(tasks):
            row = sims[i] if task is None else np.where(mem_tasks == task, sims[i], -1.0)
            j = int(np.argmax(row))
            if row[j] >= self.threshold:
                out[i] = (j, float(row[j]))
        return out

    def known_answers(
        self, prompts: Sequence[str], tasks: Sequence[str | None]
    ) -> list[str | None]:
        """The good answer of each prompt's nearest remembered question, or `None`.

        Prefixed with `SAME_QUESTION` when that question is identical to the prompt's.
        """
        return [
            None if j < 0 else (SAME_QUESTION if sim >= IDENTICAL else "") + self.answers[j]
            for j, sim in self._nearest(prompts, tasks)
        ]

    def subset(self, index: Sequence[int] | IntArray) -> AnswerMemory:
        """The memory of the rows at ``index`` (positions in this memory)."""
        idx = np.asarray(index, dtype=np.int64)
        rows = None if self.rows is None else [self.rows[i] for i in idx]
        return AnswerMemory(
            self.vectors[idx],
            [self.answers[i] for i in idx],
            [self.tasks[i] for i in idx],
            self.idf,
            self.threshold,
            rows,
        )

    def to_file_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON part (answers, tasks, threshold) and arrays (the CSR vectors, float32)."""
        v = self.vectors.tocsr()
        meta = {
            "answers": self.answers,
            "tasks": self.tasks,
            "threshold": self.threshold,
            "idf_unseen": self.idf.unseen,
        }
        arrays = {
            "data": v.data.astype(np.float32),
            "indices": v.indices.astype(np.int32),
            "indptr": v.indptr.astype(np.int64),
            "idf_columns": self.idf.columns.astype(np.int32),
            "idf_values": self.idf.values.astype(np.float32),
        }
        return meta, arrays

    @classmethod
    def from_file_parts(cls, meta: dict[str, Any], arrays: dict[str, Any]) -> AnswerMemory:
        """Inverse of `to_file_parts`."""
        answers = [str(a) for a in meta["answers"]]
        vectors = sparse.csr_matrix(
            (
                np.asarray(arrays["data"], dtype=np.float64),
                np.asarray(arrays["indices"], dtype=np.int64),
                np.asarray(arrays["indptr"], dtype=np.int64),
            ),
            shape=(len(answers), 1 << HASH_BITS),
        )
        idf = IDF(
            np.asarray(arrays["idf_columns"], dtype=np.int64),
            np.asarray(arrays["idf_values"], dtype=np.float64),
            float(meta["idf_unseen"]),
        )
        tasks = [str(t) for t in meta["tasks"]]
        return cls(vectors, answers, tasks, idf, float(meta["threshold"]))
