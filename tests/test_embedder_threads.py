"""BLAS stays on one thread beside the embedder; large kNN products run in parallel slices instead."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from memstrata import ConfigurationError
from memstrata.providers.embedders import BLAS_THREADS_ENV, MiniLMEmbedder, limit_blas_threads


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_loading_the_embedder_limits_blas_to_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLAS_THREADS_ENV, raising=False)
    assert _blas_threads(), "numpy should bring a BLAS library"
    with threadpool_limits(limits=2, user_api="blas"):  # whatever the suite did before, and restored after
        assert _blas_threads() == {2}
        MiniLMEmbedder().warm_up()
        assert _blas_threads() == {1}


def test_the_limit_is_configurable_and_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        monkeypatch.setenv(BLAS_THREADS_ENV, "2")
        assert limit_blas_threads() == 2 and _blas_threads() == {2}
        monkeypatch.setenv(BLAS_THREADS_ENV, "0")
        assert limit_blas_threads() is None and _blas_threads() == {2}  # left alone
        monkeypatch.setenv(BLAS_THREADS_ENV, "many")
        with pytest.raises(ConfigurationError, match=f"{BLAS_THREADS_ENV}: 'many' is not a whole number"):
            limit_blas_threads()


def test_large_scopes_are_scored_in_parallel_slices_that_agree_with_one_product() -> None:
    from memstrata.backends.vector_index import PARALLEL_ROWS, scores_of

    rng = np.random.default_rng(3)
    for n in (PARALLEL_ROWS - 1, PARALLEL_ROWS, PARALLEL_ROWS * 2 + 7):
        matrix = rng.normal(size=(n, 32)).astype(np.float32)
        query = rng.normal(size=32).astype(np.float32)
        got = scores_of(matrix, query)
        assert got.shape == (n,) and got.dtype == np.float32
        np.testing.assert_allclose(got, matrix @ query, rtol=1e-5, atol=1e-5)
