"""The local embedder keeps numpy's BLAS to one thread (its spinning threads would starve the embedder's)."""

from __future__ import annotations

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
