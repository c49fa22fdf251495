"""Dot-product similarities of queries against a fixed set of sparse training rows, fast for one.

A routing decision scores one prompt against every training prompt. Multiplying by the
transposed training matrix costs a scipy call that re-transposes it each time (38 ms on 10,000
prompts); instead the index keeps the transpose once, split in two: columns that most rows use
(frequent words, the dense embedding block) as a dense float32 block, the rest as postings
(term → prompts). One query then costs a small dense product plus a gather over the postings of
its own rare terms (see ``benchmarks/routing/feature_speed.py``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]

DENSE_SHARE = 0.25
"""A column non-zero in at least this share of the training rows goes to the dense block."""


class SimilarityIndex:
    """``query @ train.T`` for a fixed sparse ``train`` (rows × columns)."""

    def __init__(self, train: sparse.csr_matrix):
        """Split ``train`` into a dense block of frequent columns and sparse postings."""
        train = sparse.csr_matrix(train, dtype=np.float32)
        n, d = train.shape
        used = np.bincount(train.indices, minlength=d)
        dense = used >= max(1.0, DENSE_SHARE * n)
        self.n_rows, self.n_cols = n, d
        self.dense_cols = np.flatnonzero(dense)
        self.dense_block = np.ascontiguousarray(train[:, self.dense_cols].toarray().T)
        rare = train.copy()
        rare.data[dense[rare.indices]] = 0.0
        rare.eliminate_zeros()
        self.postings = sparse.csr_matrix(rare.T)

    def similarities(self, query: sparse.csr_matrix) -> FloatArray:
        """Dot products (queries × training rows)."""
        query = sparse.csr_matrix(query, dtype=np.float32, copy=True)
        query.sum_duplicates()  # a repeated column counts twice, as in the sparse product
        if query.shape[1] != self.n_cols:
            raise ValueError(f"query has {query.shape[1]} feature columns, the training rows "
                             f"{self.n_cols}")
        if query.shape[0] == 1:
            return self._one(query)[None, :]
        dense_part = query[:, self.dense_cols].toarray() @ self.dense_block
        rare_part = (query @ self.postings).toarray()
        out: FloatArray = (dense_part + rare_part).astype(np.float64)
        return out

    def _one(self, query: sparse.csr_matrix) -> FloatArray:
        cols, vals = query.indices, query.data
        out = np.zeros(self.n_rows, dtype=np.float64)
        if len(self.dense_cols):
            pos = np.searchsorted(self.dense_cols, cols)
            pos = np.minimum(pos, len(self.dense_cols) - 1)
            hit = self.dense_cols[pos] == cols
            if hit.any():
                weights = np.zeros(len(self.dense_cols), dtype=np.float32)
                weights[pos[hit]] = vals[hit]
                out += weights @ self.dense_block
        ptr = self.postings.indptr
        starts, stops = ptr[cols], ptr[cols + 1]
        lengths = stops - starts
        if lengths.sum():
            # positions starts[i] .. stops[i]-1 of every term, without a Python loop
            offsets = np.cumsum(lengths) - lengths - starts
            at = np.arange(lengths.sum()) - np.repeat(offsets, lengths)
            weights = self.postings.data[at] * np.repeat(vals, lengths)
            out += np.bincount(self.postings.indices[at], weights=weights, minlength=self.n_rows)
        return out
