"""BLAS stays on one thread beside the embedder; large kNN products run in parallel slices instead."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from memstrata import ConfigurationError
from memstrata.providers.embedders import MiniLMEmbedder, limit_blas_threads
from memstrata.settings import Settings


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_loading_the_embedder_limits_blas_to_one_thread() -> None:
    assert _blas_threads(), "numpy should bring a BLAS library"
    with threadpool_limits(limits=2, user_api="blas"):  # whatever the suite did before, and restored after
        assert _blas_threads() == {2}
        MiniLMEmbedder().warm_up()
        assert _blas_threads() == {1}


def test_the_limit_is_configurable_and_bad_values_are_named() -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        assert limit_blas_threads(2) == 2 and _blas_threads() == {2}
        assert limit_blas_threads(0) is None and _blas_threads() == {2}  # left alone
    # The CLI and the server take the limit from MEMSTRATA_BLAS_THREADS and hand it to the embedder.
    embedder = Settings.from_env({"MEMSTRATA_BLAS_THREADS": "3"}).build_embedder()
    assert isinstance(embedder, MiniLMEmbedder) and embedder._blas_threads == 3
    with pytest.raises(ConfigurationError, match="MEMSTRATA_BLAS_THREADS: 'many' is not a whole number"):
        Settings.from_env({"MEMSTRATA_BLAS_THREADS": "many"})


def test_large_scopes_are_scored_in_parallel_slices_that_agree_with_one_product() -> None:
    from memstrata.backends.vector_index import PARALLEL_ROWS, scores_of

    rng = np.random.default_rng(3)
    for n in (PARALLEL_ROWS - 1, PARALLEL_ROWS, PARALLEL_ROWS * 2 + 7):
        matrix = rng.normal(size=(n, 32)).astype(np.float32)
        query = rng.normal(size=32).astype(np.float32)
        got = scores_of(matrix, query)
        assert got.shape == (n,) and got.dtype == np.float32
        np.testing.assert_allclose(got, matrix @ query, rtol=1e-5, atol=1e-5)


def test_onnx_threads_do_not_spin_between_calls_unless_asked() -> None:
    key = "session.intra_op.allow_spinning"
    quiet, busy = MiniLMEmbedder(), MiniLMEmbedder(spin=True)
    quiet.warm_up()
    busy.warm_up()
    assert quiet._session.get_session_options().get_session_config_entry(key) == "0"
    assert busy._session.get_session_options().get_session_config_entry(key) == "1"
    # the setting changes where the CPU goes, not the vectors
    texts = ["I moved to Lisbon last spring.", "My sister Anna lives in Porto."]
    np.testing.assert_array_equal(quiet.embed(texts), busy.embed(texts))
