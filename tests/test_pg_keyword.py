"""The PostgreSQL store's keyword search is BM25 with FTS5's constants, ranked exactly: an oracle in Python, fed
only each term's matching rows and their tf, must give the same memories in the same order (ties by row id) and
the same scores, for superseded memories, ``only=``, repeated, stopword and multi-word terms, and equal texts."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

import numpy as np
import psycopg
import pytest

from memstrata import HashEmbedder, Memory
from memstrata.backends.postgres import PostgresStore
from memstrata.backends.postgres_keyword import BM25_B, BM25_K1
from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import WriteBatch
from pg_support import pg_store

DIM = 8
WORDS = ("anna tea violin boat paint spring morning porridge garden river coffee train city guitar paris lisbon "
         "doctor bread cheese summer dog cat lake novel").split()


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    yield from pg_store(pg_url, DIM)


def _record(scope: Scope, text: str) -> MemoryRecord:
    now = time.time()
    return MemoryRecord(id=str(uuid.uuid4()), scope=scope, text=text, created_at=now, updated_at=now,
                        valid_from=now, content_hash=uuid.uuid4().hex)


def _bm25(conn: psycopg.Connection, scope: Scope, terms: Sequence[str], k: int, include_superseded: bool,
          only: Sequence[str] | None) -> list[tuple[str, float]]:
    """BM25 as FTS5 defines it, from each term's matching rows (every version counts in df) and their tf."""
    row = conn.execute("SELECT docs, doc_len FROM scope_counts WHERE scope_key = %s", (scope.key,)).fetchone()
    assert row is not None
    n = float(max(row[0], 1))
    avgdl = max(row[1] / n, 1.0)
    scores: dict[int, float] = {}
    ids: dict[int, str] = {}
    for w in sorted(terms):  # each memory's terms are added in the order of the words
        matches = conn.execute(
            "SELECT m.rid, m.id, m.fts_len, m.valid_to IS NULL AND m.superseded_by IS NULL,"
            " ts_rank_cd('{1,1,1,1}', m.fts, q)::float8 FROM memories m, plainto_tsquery('english', %s) q"
            " WHERE m.scope_key = %s AND numnode(q) > 0 AND m.fts @@ q", (w, scope.key)).fetchall()
        df = float(len(matches)) * terms.count(w)
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for rid, mid, length, current, tf in matches:
            if (current or include_superseded) and (only is None or mid in only):
                part = idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * ((1 - BM25_B) + BM25_B * length / avgdl))
                scores[rid] = scores.get(rid, 0.0) + part
                ids[rid] = mid
    ranked = sorted(scores, key=lambda rid: (-round(scores[rid], 9), rid))[:k]
    return [(ids[rid], scores[rid]) for rid in ranked]


def test_keyword_ranking_is_bm25_with_ties_by_row_id(store: PostgresStore, pg_url: str) -> None:
    rng = np.random.default_rng(11)
    scope = Scope.of(user_id="bm25")
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) for _ in range(260)]
    texts += texts[:40]  # equal texts: equal scores, which must come in row id order
    texts += ["tea tea tea porridge", "tea", "the tea and the coffee", "paris lisbon paris"]
    recs = [_record(scope, t) for t in texts]
    vectors = rng.normal(0, 1, (len(recs), DIM)).astype(np.float32)
    for i in range(0, len(recs), 100):  # several batches: rows in several transactions
        store.apply(scope, WriteBatch(new_memories=list(zip(recs[i : i + 100], vectors[i : i + 100], strict=True))))
    gone = recs[3::7]
    for rec in gone:
        rec.valid_to, rec.superseded_by = time.time(), recs[0].id
    store.apply(scope, WriteBatch(updated_memories=[(r, None) for r in gone]))
    other = Scope.of(user_id="someone else")
    store.apply(other, WriteBatch(new_memories=[(_record(other, "tea coffee tea"), vectors[0])]))

    only = [r.id for r in recs[::4]]
    queries = [["tea"], ["tea", "porridge"], ["coffee", "garden", "river", "city"], ["tea", "tea", "boat"],
               ["the", "cat"], ["paris lisbon", "dog"], ["running", "novel", "lakes"], ["zebra"], ["the"],
               [*WORDS[:12]]]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for terms in queries:
            for k, include_superseded, ids in ((10, False, None), (100, False, None), (500, True, None),
                                               (30, False, only), (30, True, only)):
                got = store.keyword_search(scope, terms, k, include_superseded=include_superseded, only=ids)
                want = _bm25(conn, scope, terms, k, include_superseded, ids)
                assert [i for i, _ in got] == [i for i, _ in want], (terms, k, include_superseded, ids is None)
                assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-9)
    # The oracle is not vacuous: ties occur, and repeated words count.
    tea = store.keyword_search(scope, ["tea"], 1000)
    assert len({s for _, s in tea}) < len(tea)
    assert tea[0][0] == recs[-4].id  # "tea tea tea porridge"


@pytest.mark.parametrize("knn", ["local", "exact", "hnsw"])
def test_search_candidates_are_the_separate_searches(pg_url: str, knn: str) -> None:
    """The keyword statement sent before the query vector is made (pipeline mode) answers as keyword_search
    does; the kNN, on each of its paths, as vector_search_and_sentences; a failing embedding leaves the
    connection usable."""
    options = {"local": {}, "exact": {"vector_cache_rows": 0}, "hnsw": {"vector_cache_rows": 0, "exact_max_rows": 0}}
    store = PostgresStore(pg_url, dim=DIM, **options[knn])  # type: ignore[arg-type]
    try:
        _same_candidates(store, knn)
    finally:
        store.close()


def _same_candidates(store: PostgresStore, knn: str) -> None:
    rng = np.random.default_rng(3)
    scope = Scope.of(user_id="candidates")
    recs = [_record(scope, " ".join(rng.choice(WORDS, size=int(rng.integers(2, 9))))) for _ in range(120)]
    vectors = rng.normal(0, 1, (len(recs), DIM)).astype(np.float32)
    batch = WriteBatch(new_memories=list(zip(recs, vectors, strict=True)))
    batch.sentence_vectors = [(r.id, rng.normal(0, 1, (3, DIM)).astype(np.float32)) for r in recs[::4]]
    store.apply(scope, batch)
    query = vectors[8] + 0.1
    made: list[int] = []

    def vector() -> np.ndarray:
        made.append(1)
        return query

    only = [r.id for r in recs[::2]]
    for kwargs in ({}, {"include_superseded": True}, {"only": only}):
        dense, found, keyword = store.search_candidates(scope, vector, 5, ["tea", "river"], 30,
                                                        **kwargs)  # type: ignore[arg-type]
        assert keyword == store.keyword_search(scope, ["tea", "river"], 30, **kwargs)  # type: ignore[arg-type]
        want_dense, want_found = store.vector_search_and_sentences(scope, query, 5, **kwargs)  # type: ignore[arg-type]
        assert dense == want_dense and found is not None and found.keys() == want_found.keys()
        assert all(np.array_equal(found[m], want_found[m]) for m in found)
        assert keyword and dense and found
        dense, found, keyword = store.search_candidates(scope, vector, 5, ["tea"], 10, sentences=False,
                                                        **kwargs)  # type: ignore[arg-type]
        assert found is None and dense == store.vector_search(scope, query, 5, **kwargs)  # type: ignore[arg-type]
    assert len(made) == 6
    dense, found, keyword = store.search_candidates(scope, vector, 5, ["tea"], 0)
    assert keyword == [] and dense == store.vector_search(scope, query, 5)

    def broken() -> np.ndarray:
        raise RuntimeError("embedder down")

    for _ in range(store.pool._pool_max + 1):  # every pooled connection comes back clean
        with pytest.raises(RuntimeError, match="embedder down"):
            store.search_candidates(scope, broken, 5, ["tea"], 5)
    assert store.keyword_search(scope, ["tea"], 5) == store.search_candidates(scope, vector, 5, ["tea"], 5)[2]
    assert store.knn_path(scope, 5) == knn


class _RemoteEmbedder(HashEmbedder):
    in_process = False  # as a network client says of itself


@pytest.mark.parametrize("embedder", [HashEmbedder, _RemoteEmbedder])
def test_a_search_embeds_its_query_while_the_keyword_statement_runs(pg_url: str, embedder: type) -> None:
    """An embedder in this process embeds while the store reads; a remote one before, so that no pooled
    connection waits on its network call."""
    inside: list[bool] = []
    with Memory(PostgresStore(pg_url, dim=DIM), embedder=embedder(DIM)) as m:
        m.add([{"role": "user", "content": "Anna drinks green tea every morning"}], user_id="ann", infer=False)
        candidates, embed = m.store.search_candidates, m._qcache.get
        busy: list[bool] = []

        def spy_candidates(*args: object, **kwargs: object) -> object:
            busy.append(True)
            try:
                return candidates(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                busy.pop()

        def spy_embed(text: str) -> np.ndarray:
            inside.append(bool(busy))
            return embed(text)

        m.store.search_candidates = spy_candidates  # type: ignore[method-assign,assignment]
        m._qcache.get = spy_embed  # type: ignore[method-assign,assignment]
        hits = m.search("what does Anna drink in the morning?", user_id="ann")["results"]
    assert hits and hits[0]["memory"].startswith("Anna drinks green tea")
    assert inside == [embedder is HashEmbedder]


def test_while_searches_queue_for_connections_the_query_embeds_first(pg_url: str) -> None:
    store = PostgresStore(pg_url, dim=DIM, pool_min=1, pool_max=1)
    try:
        scope = Scope.of(user_id="queue")
        rec = _record(scope, "green tea in the morning")
        store.apply(scope, WriteBatch(new_memories=[(rec, np.ones(DIM, dtype=np.float32))]))
        assert store.pool.spare()
        held = store.pool._pool.getconn()  # another call holds the only connection
        assert not store.pool.spare()
        made = threading.Event()
        out: list[object] = []

        def vector() -> np.ndarray:
            made.set()
            return np.ones(DIM, dtype=np.float32)

        worker = threading.Thread(target=lambda: out.append(store.search_candidates(scope, vector, 5, ["tea"], 5)))
        worker.start()
        assert made.wait(5)  # made before the search had a connection to wait on
        store.pool._pool.putconn(held)
        worker.join(10)
        assert out and out[0] == ([(rec.id, pytest.approx(1.0))], {}, store.keyword_search(scope, ["tea"], 5))
    finally:
        store.close()
