"""`SimilarityIndex` gives the same dot products as the plain sparse product."""

import numpy as np
from scipy import sparse

from llmswitch.routing.learned.simindex import SimilarityIndex


def _train(rng: np.random.Generator) -> sparse.csr_matrix:
    rare = sparse.random(200, 5000, density=0.002, random_state=1, format="csr")
    dense = rng.random((200, 8)) * (rng.random((200, 8)) < 0.9)  # mostly non-zero columns
    return sparse.hstack([rare, sparse.csr_matrix(dense)], format="csr")


def test_matches_the_sparse_product_for_one_query_and_a_batch() -> None:
    rng = np.random.default_rng(0)
    train = _train(rng)
    index = SimilarityIndex(train)
    assert len(index.dense_cols) == 8  # the frequent columns went to the dense block
    queries = sparse.vstack(
        [
            train[:5],
            sparse.random(5, 5008, density=0.01, random_state=2, format="csr"),
            sparse.csr_matrix((1, 5008)),  # an empty query
        ],
        format="csr",
    )
    expected = (queries @ train.T).toarray()
    assert np.allclose(index.similarities(queries), expected, atol=1e-5)
    for i in range(queries.shape[0]):
        one = index.similarities(queries[i])
        assert one.shape == (1, 200)
        assert np.allclose(one[0], expected[i], atol=1e-5)
    assert np.argmax(index.similarities(train[3])[0]) == 3  # a row is its own best match


def test_all_sparse_training_rows_have_no_dense_block() -> None:
    train = sparse.identity(50, format="csr")
    index = SimilarityIndex(train)
    assert len(index.dense_cols) == 0
    assert np.allclose(index.similarities(train[7])[0], np.eye(50)[7])


def test_a_repeated_query_column_counts_twice_as_in_the_sparse_product() -> None:
    train = sparse.csr_matrix(np.array([[1.0, 2.0], [0.0, 1.0]]))
    query = sparse.csr_matrix((np.array([1.0, 1.0]), np.array([1, 1]), np.array([0, 2])),
                              shape=(1, 2))
    index = SimilarityIndex(train)
    assert np.allclose(index.similarities(query)[0], (query @ train.T).toarray()[0])
    assert np.allclose(index.similarities(query)[0], [4.0, 2.0])
