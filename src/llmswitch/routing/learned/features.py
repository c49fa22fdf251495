"""Prompt features: hashed TF-IDF word n-grams (whole prompt and its tail) plus lexical statistics.

Hashing makes the vocabulary stateless; training only learns which hashed columns to keep (document
frequency >= ``min_df``), their IDF weights and the scaling of the lexical features. Everything is a
plain array, so a featurizer saves to ``.npz`` and loads without pickle. Cost: about 1 ms per
prompt on one core, embedding included (see ``benchmarks/routing/feature_speed.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HASH_BITS = 20
TAIL_CHARS = 400
_TOKEN = re.compile(r"\w+|[^\w\s]")
LEXICAL_NAMES = (
    "log_chars",
    "log_words",
    "log_lines",
    "digit_frac",
    "upper_frac",
    "punct_frac",
    "code_marks",
    "math_marks",
    "question_marks",
    "choice_marks",
)


def _crc_hash(token: str) -> int:
    """Stable 64-bit FNV-1a hash of ``token`` (Python's ``hash`` is salted per process)."""
    h = 0xCBF29CE484222325
    for byte in token.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


_HASH_CACHE: dict[str, int] = {}


def _bucket(token: str) -> int:
    value = _HASH_CACHE.get(token)
    if value is None:
        value = _crc_hash(token) & ((1 << HASH_BITS) - 1)
        if len(_HASH_CACHE) < 500_000:
            _HASH_CACHE[token] = value
    return value


def analyse(text: str) -> list[str]:
    """Tokens of ``text``: lower-cased unigrams and bigrams, also for its tail (prefixed)."""
    tokens = _TOKEN.findall(text.lower())
    tail = _TOKEN.findall(text[-TAIL_CHARS:].lower())
    out = tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
    out += [f"t|{t}" for t in tail]
    out += [f"t|{a} {b}" for a, b in pairwise(tail)]
    return out


def hashed_counts(texts: Sequence[str]) -> sparse.csr_matrix:
    """Sparse term-frequency matrix (sublinear: 1 + log tf) over ``2**HASH_BITS`` hashed columns."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for text in texts:
        counts: dict[int, int] = {}
        for tok in analyse(text):
            col = _bucket(tok)
            counts[col] = counts.get(col, 0) + 1
        indices.extend(counts.keys())
        data.extend(1.0 + math.log(c) for c in counts.values())
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data), np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(texts), 1 << HASH_BITS),
    )


def lexical(texts: Sequence[str]) -> FloatArray:
    """Cheap lexical statistics of each text (see ``LEXICAL_NAMES``)."""
    rows = []
    for text in texts:
        n = max(len(text), 1)
        rows.append(
            [
                math.log1p(len(text)),
                math.log1p(len(text.split())),
                math.log1p(text.count("\n")),
                sum(c.isdigit() for c in text) / n,
                sum(c.isupper() for c in text) / n,
                sum((not c.isalnum()) and (not c.isspace()) for c in text) / n,
                math.log1p(text.count("```") + text.count("def ") + text.count("return ")),
                math.log1p(text.count("$") + text.count("\\frac") + text.count("=")),
                math.log1p(text.count("?")),
                math.log1p(len(re.findall(r"(?m)^\(?[A-E][).:]", text))),
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), len(LEXICAL_NAMES))


def embeddings(texts: Sequence[str]) -> FloatArray:
    """Static sentence embeddings of ``texts`` (the shipped distilled all-MiniLM-L6-v2)."""
    from llmswitch.routing.learned.embed import StaticEmbedder

    return np.asarray(StaticEmbedder.load().embed(texts), dtype=np.float64)


@dataclass(frozen=True)
class Prepared:
    """Tokenised prompts (hashed counts, lexical statistics and, if asked for, static
    embeddings), reusable across CV folds.
    """

    counts: sparse.csr_matrix
    lex: FloatArray
    emb: FloatArray | None = None

    @classmethod
    def of(cls, texts: Sequence[str], embed: bool = False) -> Prepared:
        """Tokenise ``texts`` once (and embed them if ``embed``)."""
        return cls(hashed_counts(texts), lexical(texts), embeddings(texts) if embed else None)

    def rows(self, index: Sequence[int] | IntArray) -> Prepared:
        """The prepared rows at ``index``."""
        idx = np.asarray(index, dtype=np.int64)
        emb = None if self.emb is None else self.emb[idx]
        return Prepared(self.counts[idx], self.lex[idx], emb)

    def __len__(self) -> int:
        """Return the number of prompts."""
        return int(self.counts.shape[0])


Texts = Sequence[str] | Prepared
Label = str | Sequence[str] | None
"""A prompt's task label, or its list of labels (the task, then ``column=value`` of categorical
table columns such as ``subtask=anatomy``); `None` when unknown."""


@dataclass(frozen=True)
class Features:
    """Features of a batch of prompts.

    ``tfidf`` (sparse, L2-normalised rows), ``dense`` (standardised lexical statistics, then the
    task one-hot scaled by the featurizer's ``task_weight``; no task columns when it is 0) and
    ``task`` (the unscaled task one-hot, all zeros for an unknown or missing task).
    """

    tfidf: sparse.csr_matrix
    dense: FloatArray
    task: FloatArray | None = None

    def __len__(self) -> int:
        """Return the number of prompts."""
        return int(self.tfidf.shape[0])

    def rows(self, index: Sequence[int] | IntArray) -> Features:
        """Return the features of the prompts at ``index``."""
        idx = np.asarray(index, dtype=np.int64)
        task = None if self.task is None else self.task[idx]
        return Features(self.tfidf[idx], self.dense[idx], task)

    def dot(self, coef_t: FloatArray) -> FloatArray:
        """``stacked() @ coef_t`` without building the stacked matrix (fast for single prompts).

        ``coef_t``: C-contiguous, one row per feature, so the row slices below copy nothing.
        """
        n = self.tfidf.shape[1]
        out: FloatArray = np.asarray(self.tfidf @ coef_t[:n]) + self.dense @ coef_t[n:]
        return out

    def stacked(self) -> sparse.csr_matrix:
        """TF-IDF and dense features side by side (for linear models)."""
        return sparse.hstack([self.tfidf, sparse.csr_matrix(self.dense)], format="csr")


def _labels(label: Label) -> list[str]:
    if label is None:
        return []
    return [label] if isinstance(label, str) else [str(x) for x in label]


class Featurizer:
    """Turns prompts into `Features`; fitted on training prompts, saved as plain arrays."""

    def __init__(
        self,
        keep: IntArray,
        idf: FloatArray,
        dense_mean: FloatArray,
        dense_std: FloatArray,
        tasks: Sequence[str] = (),
        task_weight: float = 0.0,
        embed_weight: float = 0.0,
    ):
        """Create from fitted arrays (use `Featurizer.fit` to learn them).

        ``embed_weight`` w in [0, 1): the similarity rows become ``√(1−w)·tfidf ⊕ √w·embedding``,
        so cosine similarity is ``(1−w)·TF-IDF cosine + w·embedding cosine`` (0: no embedding).
        """
        self.keep = np.asarray(keep, dtype=np.int64)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.dense_mean = np.asarray(dense_mean, dtype=np.float64)
        self.dense_std = np.asarray(dense_std, dtype=np.float64)
        self.tasks = tuple(str(t) for t in tasks)
        self.task_weight = float(task_weight)
        self.embed_weight = float(embed_weight)
        self._col = np.full(1 << HASH_BITS, -1, dtype=np.int64)
        self._col[self.keep] = np.arange(len(self.keep))

    @property
    def n_tfidf(self) -> int:
        """Number of kept TF-IDF columns."""
        return len(self.keep)

    @property
    def n_features(self) -> int:
        """Width of `Features.stacked`."""
        n_task = len(self.tasks) if self.task_weight > 0 else 0
        return len(self.keep) + len(self.dense_mean) + n_task

    @classmethod
    def fit(
        cls,
        texts: Texts,
        min_df: int = 2,
        tasks: Sequence[Label] | None = None,
        task_weight: float = 0.0,
        embed_weight: float = 0.0,
    ) -> Featurizer:
        """Learn kept columns, IDF and lexical scaling from ``texts`` (and the task names)."""
        if not 0.0 <= embed_weight < 1.0:
            raise ValueError("embed_weight must be in [0, 1)")
        prep = texts if isinstance(texts, Prepared) else Prepared.of(texts)
        counts = prep.counts
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        keep = np.flatnonzero(df >= min(min_df, max(len(prep), 1)))
        n = len(prep)
        idf = np.log((1.0 + n) / (1.0 + df[keep])) + 1.0
        lex = prep.lex
        std = lex.std(axis=0)
        names = sorted({x for t in tasks or () for x in _labels(t)})
        return cls(
            keep,
            idf,
            lex.mean(axis=0),
            np.where(std > 1e-9, std, 1.0),
            names,
            task_weight,
            embed_weight,
        )

    def task_onehot(self, tasks: Sequence[Label] | None, n: int) -> FloatArray:
        """Multi-hot of each prompt's labels over the training labels (unknown ones are zeros)."""
        out = np.zeros((n, len(self.tasks)))
        if tasks is not None:
            col = {t: i for i, t in enumerate(self.tasks)}
            for i, t in enumerate(tasks):
                for label in _labels(t):
                    if label in col:
                        out[i, col[label]] = 1.0
        return out

    def transform(self, texts: Texts, tasks: Sequence[Label] | None = None) -> Features:
        """Features of ``texts`` (``tasks``: each prompt's task label, if known)."""
        prep = texts if isinstance(texts, Prepared) else Prepared.of(texts)
        counts = prep.counts
        cols = self._col[counts.indices]
        mask = cols >= 0
        row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        values = counts.data[mask] * self.idf[cols[mask]]
        tfidf = sparse.csr_matrix(
            (values, (row_of[mask], cols[mask])), shape=(len(prep), len(self.keep))
        )
        norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
        tfidf = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ tfidf
        if self.embed_weight > 0:
            emb = prep.emb
            if emb is None:
                if isinstance(texts, Prepared):
                    raise ValueError("prepared prompts lack embeddings: use Prepared.of(..., True)")
                emb = embeddings(texts)
            w = self.embed_weight
            tfidf = sparse.hstack(
                [math.sqrt(1.0 - w) * tfidf, sparse.csr_matrix(math.sqrt(w) * emb)], format="csr"
            )
        dense = (prep.lex - self.dense_mean) / self.dense_std
        onehot = self.task_onehot(tasks, len(prep))
        if self.task_weight > 0:
            dense = np.hstack([dense, self.task_weight * onehot])
        return Features(tfidf.tocsr(), dense, onehot)

    def to_arrays(self) -> dict[str, Any]:
        """The fitted arrays, for saving (task names as a fixed-width unicode array)."""
        return {
            "keep": self.keep.astype(np.int32),
            "idf": self.idf.astype(np.float32),
            "dense_mean": self.dense_mean,
            "dense_std": self.dense_std,
            "tasks": np.asarray(self.tasks, dtype=np.str_),
            "task_weight": np.asarray([self.task_weight]),
            "embed_weight": np.asarray([self.embed_weight]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> Featurizer:
        """Rebuild from `to_arrays` output."""
        tasks = [str(t) for t in arrays["tasks"]] if "tasks" in arrays else []
        weight = float(arrays["task_weight"][0]) if "task_weight" in arrays else 0.0
        embed = float(arrays["embed_weight"][0]) if "embed_weight" in arrays else 0.0
        return cls(
            arrays["keep"],
            arrays["idf"],
            arrays["dense_mean"],
            arrays["dense_std"],
            tasks,
            weight,
            embed,
        )
