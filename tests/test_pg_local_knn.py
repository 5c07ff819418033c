"""The PostgreSQL store's in-process exact kNN (backends.postgres_local): the same ranking as pgvector's exact
scan, never stale against another process's writes, emptied by erasure, and bounded in scope size."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from memstrata import HashEmbedder, Memory
from memstrata.backends.postgres import PostgresStore
from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import WriteBatch
from pg_support import pg_store

DIM = 64
WORDS = ("anna braga tea violin boat paint spring morning porridge tuesday garden river coffee train city "
         "guitar paris lisbon doctor nurse bread cheese summer winter dog cat mountain lake novel poem").split()


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    yield from pg_store(pg_url, DIM)


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) + f" note{i}" for i in range(n)]


def _record(scope: Scope, text: str) -> MemoryRecord:
    now = time.time()
    return MemoryRecord(id=str(uuid.uuid4()), scope=scope, text=text, created_at=now, updated_at=now,
                        valid_from=now, content_hash=uuid.uuid4().hex)


def _add(store: PostgresStore, scope: Scope, emb: HashEmbedder, texts: list[str]) -> list[MemoryRecord]:
    recs = [_record(scope, t) for t in texts]
    store.apply(scope, WriteBatch(new_memories=[(r, emb.embed([r.text])[0]) for r in recs]))
    return recs


def _same_ranking(got: list[tuple[str, float]], want: list[tuple[str, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def _clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors around a few centres: neighbours at many distances, and no two scores a rounding error apart
    (a bag-of-words embedder has exact ties in the real numbers, which float32 in NumPy and in pgvector break
    either way)."""
    centres = np.random.default_rng(0).normal(0, 1, (12, DIM))
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.6, (n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ranking_is_the_exact_pgvector_ranking(store: PostgresStore) -> None:
    rng = np.random.default_rng(5)
    scope = Scope.of(user_id="rank")
    vectors = _clustered(rng, 400)
    vectors[305:310] = vectors[15:20]  # the same vector twice: equal scores, in row id order on both paths
    batch = WriteBatch()
    recs = []
    for i in range(400):
        rec = _record(scope, f"note {i}")
        # Every tenth memory is long: several chunks, and sentence vectors stored with it.
        chunks = vectors[i : i + 4] if i % 10 == 0 else vectors[i]
        batch.new_memories.append((rec, chunks))
        if i % 10 == 0:
            batch.sentence_vectors.append((rec.id, chunks))
        recs.append(rec)
    store.apply(scope, batch)
    # Some superseded, which leave search unless asked for.
    gone = recs[5:400:9]
    for rec in gone:
        rec.valid_to, rec.superseded_by = time.time(), recs[0].id
    store.apply(scope, WriteBatch(updated_memories=[(r, None) for r in gone]))
    assert store.knn_path(scope) == "local"

    only = [r.id for r in recs[::3]]
    queries = [*_clustered(rng, 25), vectors[16]]
    for q in queries:
        for k in (1, 10, 60):
            _same_ranking(store.vector_search(scope, q, k), store.vector_search(scope, q, k, strategy="exact"))
        _same_ranking(store.vector_search(scope, q, 30, include_superseded=True),
                      store.vector_search(scope, q, 30, include_superseded=True, strategy="exact"))
        _same_ranking(store.vector_search(scope, q, 20, only=only),
                      store.vector_search(scope, q, 20, only=only, strategy="exact"))
        hits, sentences = store.vector_search_and_sentences(scope, q, 40)
        _same_ranking(hits, store.vector_search(scope, q, 40, strategy="exact"))
        want = store.sentence_vectors(scope, [i for i, _ in hits])
        assert sentences.keys() == want.keys()
        assert all(np.array_equal(sentences[i], want[i]) for i in want)
    top = [i for i, _ in store.vector_search(scope, vectors[16], 2)]
    assert top == [recs[16].id, recs[306].id]  # the duplicate pair, by row id
    assert not {r.id for r in gone} & {i for i, _ in store.vector_search(scope, queries[0], 400)}
    assert store.stats()["vector_cache_bytes"] > 400 * DIM * 4


def test_a_write_from_another_process_is_seen_by_the_next_search(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    emb = HashEmbedder(DIM)
    scope = Scope.of(user_id="shared")
    first, second = PostgresStore(pg_url, dim=DIM), PostgresStore(pg_url, dim=DIM)
    try:
        _add(first, scope, emb, _texts(np.random.default_rng(7), 200))
        q = emb.embed(["violin lessons in lisbon on tuesday"])[0]
        before = first.vector_search(scope, q, 5)
        assert first.local is not None and first.local.index.holds(scope.key)

        loads: list[str] = []
        load = first.local._load
        monkeypatch.setattr(first.local, "_load", lambda conn, key: (loads.append(key), load(conn, key))[1])
        # This store's own writes patch the matrix: no load.
        mine = _add(first, scope, emb, ["violin lessons in lisbon on tuesday mornings"])[0]
        assert first.vector_search(scope, q, 5)[0][0] == mine.id and loads == []

        theirs = _add(second, scope, emb, ["violin lessons in lisbon on tuesday"])[0]
        top = first.vector_search(scope, q, 5)
        # The matrix had answered a few searches only: pgvector answers, and the scope is not loaded again yet.
        assert top[0][0] == theirs.id and abs(top[0][1] - 1.0) < 1e-5 and loads == []
        # Superseded elsewhere: gone from the first store's search; asked for, it comes back.
        theirs.valid_to, theirs.superseded_by = time.time(), mine.id
        second.apply(scope, WriteBatch(updated_memories=[(theirs, None)]))
        assert theirs.id not in {i for i, _ in first.vector_search(scope, q, 5)}
        assert first.vector_search(scope, q, 5, include_superseded=True)[0][0] == theirs.id
        # Deleted elsewhere, and the sentence-vector read sees it as well.
        second.apply(scope, WriteBatch(deleted_memory_ids=[mine.id]))
        hits, _ = first.vector_search_and_sentences(scope, q, 5)
        assert mine.id not in {i for i, _ in hits}
        assert {i for i, _ in first.vector_search(scope, q, 5)} == {i for i, _ in before}
    finally:
        first.close()
        second.close()


def test_a_scope_other_processes_keep_writing_is_not_reloaded_for_every_search(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(8)
    scope = Scope.of(user_id="busy")
    reader, writer = PostgresStore(pg_url, dim=DIM), PostgresStore(pg_url, dim=DIM)
    try:
        _add_vectors(writer, scope, _clustered(rng, 100))
        assert reader.local is not None
        loads: list[str] = []
        load = reader.local._load
        monkeypatch.setattr(reader.local, "_load", lambda conn, key: (loads.append(key), load(conn, key))[1])
        for _ in range(40):  # a write elsewhere before every search: each one still sees the latest
            v = _clustered(rng, 1)
            _add_vectors(writer, scope, v)
            top = reader.vector_search(scope, v[0], 3)
            assert abs(top[0][1] - 1.0) < 1e-5
            _same_ranking(top, reader.vector_search(scope, v[0], 3, strategy="exact"))
        assert 1 <= len(loads) <= 3, loads
        # Once the writes stop, the scope is loaded again and searched in process.
        q = _clustered(rng, 1)[0]
        for _ in range(40):
            _same_ranking(reader.vector_search(scope, q, 5), reader.vector_search(scope, q, 5, strategy="exact"))
        assert reader.local.index.holds(scope.key) and reader.knn_path(scope) == "local"
    finally:
        reader.close()
        writer.close()


def test_forgetting_a_user_empties_their_cached_scope(pg_url: str) -> None:
    texts = ["Anna moved to Braga last spring", "Anna likes green tea in the morning", "The boat needs new paint"]
    with Memory(PostgresStore(pg_url, dim=DIM), embedder=HashEmbedder(DIM)) as m, \
            Memory(PostgresStore(pg_url, dim=DIM), embedder=HashEmbedder(DIM)) as other:
        assert m.search("green tea", user_id="ann")["results"] == []
        m.add([{"role": "user", "content": t} for t in texts], user_id="ann", infer=False)
        m.add([{"role": "user", "content": "Bruno drinks green tea"}], user_id="bruno", infer=False)
        for mem in (m, other):
            assert mem.search("green tea", user_id="ann")["results"]
        scope = m._scope("ann", None, None, None)
        assert other.store.local is not None and other.store.local.index.holds(scope.key)

        m.forget_user("ann")
        assert m.store.local is not None and not m.store.local.index.holds(scope.key)
        q = HashEmbedder(DIM).embed(["green tea"])[0]
        for mem in (m, other):  # the other process held the scope too: its next search finds it gone
            assert mem.store.vector_search(scope, q, 10) == []
            assert mem.search("green tea", user_id="ann")["results"] == []
            assert mem.search("green tea", user_id="bruno")["results"]


def _add_vectors(store: PostgresStore, scope: Scope, vectors: np.ndarray) -> None:
    store.apply(scope, WriteBatch(new_memories=[(_record(scope, "note"), v) for v in vectors]))


def test_scopes_over_the_row_bound_are_searched_by_pgvector(pg_url: str) -> None:
    rng = np.random.default_rng(9)
    store = PostgresStore(pg_url, dim=DIM, vector_cache_rows=100)
    off = PostgresStore(pg_url, dim=DIM, vector_cache_bytes=0)
    try:
        small, big = Scope.of(user_id="small"), Scope.of(user_id="big")
        _add_vectors(store, small, _clustered(rng, 90))
        _add_vectors(store, big, _clustered(rng, 150))
        q = _clustered(rng, 1)[0]
        assert store.knn_path(small) == "local" and store.knn_path(big) == "exact"
        assert off.local is None and off.knn_path(small) == "exact"
        _same_ranking(store.vector_search(big, q, 10), store.vector_search(big, q, 10, strategy="exact"))
        assert store.local is not None and not store.local.index.holds(big.key)

        _same_ranking(store.vector_search(small, q, 10), off.vector_search(small, q, 10))
        assert store.local.index.holds(small.key)
        # Grown past the bound by this store's own writes: this search still answers, pgvector the next.
        _add_vectors(store, small, _clustered(rng, 20))
        _same_ranking(store.vector_search(small, q, 10), off.vector_search(small, q, 10))
        assert not store.local.index.holds(small.key) and store.knn_path(small) == "exact"
        # Grown past it by another process: the version moved, so pgvector answers at once.
        _add_vectors(off, small, _clustered(rng, 5))
        _same_ranking(store.vector_search(small, q, 10), off.vector_search(small, q, 10, strategy="exact"))
        assert not store.local.index.holds(small.key)
    finally:
        store.close()
        off.close()
