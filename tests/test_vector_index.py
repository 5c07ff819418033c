"""The in-process exact index both SQL stores keep as a cache of their database (backends.vector_index)."""

from __future__ import annotations

import numpy as np

from memstrata.backends.vector_index import ANY, VectorIndex

DIM = 8


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(0, 1, (n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _loader(version: object, rids: list[int], matrix: np.ndarray, calls: list[object]):  # type: ignore[no-untyped-def]
    def load() -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
        calls.append(version)
        return version, matrix.copy(), np.array(rids, dtype=np.int64), np.ones(len(rids), dtype=bool)

    return load


def test_any_version_answers_from_the_cache_and_says_which_version_it_used() -> None:
    rng = np.random.default_rng(1)
    matrix = _unit(rng, 5)
    index, calls = VectorIndex(DIM), []
    used, hits = index.query("s", ANY, _loader("v1", [10, 11, 12, 13, 14], matrix, calls), matrix[2], 2)
    assert used == "v1" and hits[0][0] == 12 and abs(hits[0][1] - 1.0) < 1e-5
    used, _ = index.query("s", ANY, _loader("v2", [10], matrix[:1], calls), matrix[2], 2)
    assert used == "v1" and calls == ["v1"]  # cached: not loaded again
    used, hits = index.query("s", "v2", _loader("v2", [10], matrix[:1], calls), matrix[2], 2)
    assert used == "v2" and [r for r, _ in hits] == [10] and calls == ["v1", "v2"]


def test_equal_scores_come_in_row_id_order() -> None:
    v = _unit(np.random.default_rng(2), 1)[0]
    matrix = np.stack([v] * 6)
    index = VectorIndex(DIM)
    hits = index.search("s", 1, _loader(1, [42, 7, 30, 9, 18, 3], matrix, []), v, 6)
    assert [r for r, _ in hits] == [3, 7, 9, 18, 30, 42]


def test_a_memory_re_embedded_and_superseded_in_one_write_stays_out_of_search() -> None:
    rng = np.random.default_rng(3)
    matrix = _unit(rng, 3)
    index = VectorIndex(DIM)
    load = _loader(1, [1, 2, 3], matrix, [])
    assert {r for r, _ in index.search("s", 1, load, matrix[0], 3)} == {1, 2, 3}
    new = _unit(rng, 2)
    index.patch("s", 1, 2, remove=[2], add=[(2, new)], deactivate=[2])
    assert {r for r, _ in index.search("s", 2, load, new[0], 3)} == {1, 3}
    assert {r for r, _ in index.search("s", 2, load, new[0], 3, include_inactive=True)} == {1, 2, 3}
    # A patch on a version the cache does not hold drops the scope: the next search loads it again.
    index.patch("s", 7, 8, add=[(4, new[:1])])
    assert not index.holds("s")
