"""LongTermTier and the write path: one batch in one transaction, lookups, kNN, keyword search, history."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from tier_support import added, memory, needs, vec

from memstrata.core.text import query_terms
from memstrata.errors import BackendError, NotFoundError
from memstrata.models import ConflictRecord, HistoryEvent, Scope
from memstrata.tiers.base import Capability, Store, WriteBatch


def _add(store: Store, scope: Scope, *texts: str, **fields: object) -> list[str]:
    recs = [memory(scope, t, at=1_700_000_000 + i, **fields) for i, t in enumerate(texts)]
    store.apply(scope, WriteBatch(new_memories=[(r, vec(r.text)) for r in recs], history=[added(r) for r in recs]))
    assert all(r.rid > 0 for r in recs)  # the store numbers what it wrote
    return [r.id for r in recs]


def _terms(store: Store, scope: Scope, query: str) -> list[str]:
    return query_terms(store.codec.query_text(scope, query))


def test_written_memories_come_back_by_id_hash_and_listing(store: Store, scope: Scope) -> None:
    ids = _add(store, scope, "Anna lives in Braga", "Anna likes green tea", metadata={"topic": "life"})
    got = store.get_memories(scope, [ids[1], "missing", ids[0]])
    assert [m.id for m in got] == [ids[1], ids[0]]
    assert got[0].text == "Anna likes green tea" and got[0].metadata == {"topic": "life"}
    assert [m.id for m in store.list_memories(scope)] == ids and store.count(scope) == 2
    assert [m.id for m in store.find_by_hash(scope, got[1].content_hash)] == [ids[0]]
    assert store.get_memories(Scope.of(user_id="someone-else"), ids) == []
    assert store.scope_of_memory(ids[0]) == scope and store.scope_of_memory("nope") is None


def test_memories_and_vectors_read_both_by_id_in_order(store: Store, scope: Scope) -> None:
    ids = _add(store, scope, "Anna lives in Braga", "Anna likes green tea", metadata={"topic": "life"})
    records, vectors = store.memories_and_vectors(scope, [ids[1], "missing", ids[0]])
    assert [r.id for r in records] == [ids[1], ids[0]]
    assert records[0].text == "Anna likes green tea" and records[0].metadata == {"topic": "life"}
    assert [r.to_dict() for r in records] == [r.to_dict() for r in store.get_memories(scope, [ids[1], ids[0]])]
    assert set(vectors) == set(ids)
    for memory_id, text in zip(ids, ("Anna lives in Braga", "Anna likes green tea"), strict=True):
        assert vectors[memory_id].dtype == np.float32
        assert np.array_equal(vectors[memory_id], np.asarray(vec(text), dtype=np.float32).ravel())
    assert store.memories_and_vectors(Scope.of(user_id="someone-else"), ids) == ([], {})
    assert store.memories_and_vectors(scope, []) == ([], {})


def test_filters_run_on_columns_and_metadata(store: Store, scope: Scope) -> None:
    low = _add(store, scope, "low importance fact", importance=0.2, metadata={"tag": "a", "n": 1})
    high = _add(store, scope, "high importance fact", importance=0.9, metadata={"tag": "b", "n": 5})
    assert [m.id for m in store.list_memories(scope, where=[("importance", "gt", 0.5)])] == high
    assert [m.id for m in store.list_memories(scope, where=[("tag", "eq", "a")])] == low
    assert [m.id for m in store.list_memories(scope, where=[("tag", "in", ["a", "b"]), ("n", "gte", 2)])] == high
    assert [m.id for m in store.list_memories(scope, where=[("tag", "nin", ["a"])])] == high


def test_vector_and_keyword_search_rank_and_respect_only(store: Store, scope: Scope) -> None:
    ids = _add(store, scope, "the lighthouse keeper paints boats", "tomatoes grow in the greenhouse")
    assert store.vector_search(scope, vec("the lighthouse keeper paints boats"), 1)[0][0] == ids[0]
    hits = store.keyword_search(scope, _terms(store, scope, "greenhouse tomatoes"), 5)
    assert [i for i, _ in hits] == [ids[1]] and hits[0][1] > 0
    assert store.keyword_search(scope, _terms(store, scope, "greenhouse"), 5, only=[ids[0]]) == []
    assert [i for i, _ in store.vector_search(scope, vec("boats"), 5, only=[ids[1]])] == [ids[1]]
    assert store.keyword_search(scope, [], 5) == []
    stored = store.vectors(scope, ids)
    assert set(stored) == set(ids)
    for memory_id, text in zip(ids, ("the lighthouse keeper paints boats", "tomatoes grow in the greenhouse"),
                               strict=True):
        assert stored[memory_id].dtype == np.float32
        assert np.array_equal(stored[memory_id], np.asarray(vec(text), dtype=np.float32).ravel())


def test_keyword_search_looks_past_superseded_matches_that_outrank_the_current_ones(
    store: Store, scope: Scope
) -> None:
    """Superseded memories that rank above every current one still leave ``k`` current results, and each
    result comes back once, best first; with ``include_superseded`` the old ones count too."""
    old_ids = _add(store, scope, *[f"kayak kayak kayak trip number {i}" for i in range(30)])
    current_ids = _add(store, scope, *[f"a long note that mentions the kayak once among many other words {i}"
                                       for i in range(12)])
    olds = store.get_memories(scope, old_ids)
    for rec in olds:
        rec.valid_to, rec.superseded_by = 1_700_000_500.0, current_ids[0]
    store.apply(scope, WriteBatch(updated_memories=[(rec, None) for rec in olds]))
    terms = _terms(store, scope, "kayak")
    hits = store.keyword_search(scope, terms, 10)
    assert len(hits) == 10 and {i for i, _ in hits} <= set(current_ids)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    everything = store.keyword_search(scope, terms, 10, include_superseded=True)
    assert {i for i, _ in everything} <= set(old_ids)  # the repeated word ranks the old ones first
    assert len(store.keyword_search(scope, terms, 50)) == 12
    assert len(store.keyword_search(scope, terms, 12, only=current_ids[:5])) == 5


def test_superseding_updates_history_and_hides_the_old_fact(store: Store, scope: Scope) -> None:
    (old_id,) = _add(store, scope, "Anna lives in Braga", slot=("anna", "lives_in", "braga"))
    (old,) = store.get_memories(scope, [old_id])
    new = memory(scope, "Anna lives in Porto", slot=("anna", "lives_in", "porto"))
    old.superseded_by, old.valid_to = new.id, new.created_at
    event = HistoryEvent(str(uuid.uuid4()), old.id, "UPDATE", old.text, new.text, "test", "moved", new.created_at)
    conflict = ConflictRecord(str(uuid.uuid4()), new.id, old.id, "anna", "lives_in", "braga", "porto",
                              "latest_wins", "open", new.created_at)
    store.apply(scope, WriteBatch(new_memories=[(new, vec(new.text))], updated_memories=[(old, None)],
                                  history=[added(new), event], conflicts=[conflict]))
    assert [m.id for m in store.list_memories(scope)] == [new.id]
    assert {m.id for m in store.list_memories(scope, include_superseded=True)} == {old.id, new.id}
    assert [m.id for m in store.find_by_slot(scope, "anna", "lives_in")] == [new.id]
    assert [i for i, _ in store.vector_search(scope, vec("Anna lives in Braga"), 5)] == [new.id]
    assert old.id in {i for i, _ in store.vector_search(scope, vec("Anna lives in Braga"), 5, include_superseded=True)}
    assert [h.event for h in store.history(scope, old.id)] == ["ADD", "UPDATE"]
    assert [c.id for c in store.conflicts(scope)] == [conflict.id]
    resolved = store.resolve_conflict(scope, conflict.id, "keep_new", new.created_at + 1)
    assert resolved.status == "resolved" and store.conflicts(scope) == []
    with pytest.raises(NotFoundError):
        store.resolve_conflict(scope, "no-such-conflict", "keep_new", 0.0)


def test_delete_keeps_history_and_touch_counts_use(store: Store, scope: Scope) -> None:
    keep, gone = _add(store, scope, "keep this one", "delete this one")
    store.touch(scope, [keep], 1_800_000_000.0)
    (touched,) = store.get_memories(scope, [keep])
    assert (touched.access_count, touched.last_accessed_at) == (1, 1_800_000_000.0)
    store.apply(scope, WriteBatch(deleted_memory_ids=[gone]))
    assert store.get_memories(scope, [gone]) == [] and store.count(scope) == 1
    assert store.scope_of_memory(gone) == scope  # its history is kept
    assert store.keyword_search(scope, _terms(store, scope, "delete"), 5) == []
    with pytest.raises(NotFoundError):
        store.apply(scope, WriteBatch(deleted_memory_ids=[gone]))


def test_a_batch_is_atomic_and_checks_its_scope(store: Store, scope: Scope) -> None:
    stray = memory(Scope.of(user_id="elsewhere"), "not mine")
    with pytest.raises(BackendError):
        store.apply(scope, WriteBatch(new_memories=[(stray, vec(stray.text))]))
    first = memory(scope, "written with a bad delete")
    with pytest.raises(NotFoundError):
        store.apply(scope, WriteBatch(new_memories=[(first, vec(first.text))], deleted_memory_ids=["missing"]))
    assert store.count(scope) == 0


def test_delete_scope_reset_stats_and_listing(store: Store, scope: Scope) -> None:
    other = Scope.of(user_id=scope.user_id + "-2")
    _add(store, scope, "one", "two")
    _add(store, other, "three")
    assert store.stats(scope)["memories"] == 2 and store.stats()["memories"] == 3
    if store.supports(Capability.SCOPE_LISTING):
        listed = {s["user_id"]: s["memories"] for s in store.scopes()}
        assert listed == {scope.user_id: 2, other.user_id: 1}
    counts = store.delete_scope(scope)
    assert counts["memories"] == 2 and counts["history"] == 2
    assert store.count(scope) == 0 and store.count(other) == 1
    store.reset()
    assert store.stats()["memories"] == 0


def test_scope_listing_is_declared(store: Store) -> None:
    needs(store, Capability.SCOPE_LISTING)
    assert store.scopes() == []


def test_sentence_vectors_are_kept_per_memory_and_go_with_it(store: Store, scope: Scope) -> None:
    import numpy as np

    recs = [memory(scope, t, at=1_700_000_000 + i) for i, t in enumerate(["a long message", "a short one"])]
    sentences = np.stack([vec("first sentence"), vec("second sentence"), vec("third sentence")])
    store.apply(scope, WriteBatch(new_memories=[(r, vec(r.text)) for r in recs], history=[added(r) for r in recs],
                                  sentence_vectors=[(recs[0].id, sentences)]))
    got = store.sentence_vectors(scope, [recs[0].id, recs[1].id, "missing"])
    assert list(got) == [recs[0].id] and got[recs[0].id].shape == sentences.shape
    assert np.allclose(got[recs[0].id], sentences, atol=2e-3)  # stored as float16
    assert store.sentence_vectors(Scope.of(user_id="someone-else"), [recs[0].id]) == {}
    # a memory whose text is re-embedded loses the sentences of its old text
    store.apply(scope, WriteBatch(updated_memories=[(recs[0], vec("new text"))]))
    assert store.sentence_vectors(scope, [recs[0].id]) == {}
    store.apply(scope, WriteBatch(new_memories=[(memory(scope, "another"), vec("another"))]))
    other = memory(scope, "third long message", at=1_700_000_100)
    store.apply(scope, WriteBatch(new_memories=[(other, vec(other.text))], sentence_vectors=[(other.id, sentences)]))
    store.apply(scope, WriteBatch(deleted_memory_ids=[other.id]))
    assert store.sentence_vectors(scope, [other.id]) == {}
    again = memory(scope, "fourth long message", at=1_700_000_200)
    store.apply(scope, WriteBatch(new_memories=[(again, vec(again.text))], sentence_vectors=[(again.id, sentences)]))
    store.delete_scope(scope)
    assert store.sentence_vectors(scope, [again.id]) == {}


def test_vector_search_and_sentences_reads_both_as_the_two_calls_would(store: Store, scope: Scope) -> None:
    recs = [memory(scope, t, at=1_700_000_000 + i)
            for i, t in enumerate(["a long message about boats", "a short one about tea", "boats again"])]
    sentences = np.stack([vec("first sentence"), vec("boats are painted"), vec("third sentence")])
    store.apply(scope, WriteBatch(new_memories=[(r, vec(r.text)) for r in recs], history=[added(r) for r in recs],
                                  sentence_vectors=[(recs[0].id, sentences)]))
    query = vec("boats")
    hits, got = store.vector_search_and_sentences(scope, query, 2)
    assert hits == store.vector_search(scope, query, 2) and len(hits) == 2
    expected = store.sentence_vectors(scope, [m for m, _ in hits])
    assert set(got) == set(expected) == {recs[0].id} and all(np.array_equal(got[m], expected[m]) for m in got)
    hits, got = store.vector_search_and_sentences(scope, query, 5, only=[recs[1].id])
    assert [m for m, _ in hits] == [recs[1].id] and got == {}
    assert store.vector_search_and_sentences(scope, query, 5, only=[]) == ([], {})
    assert store.vector_search_and_sentences(Scope.of(user_id="someone-else"), query, 5) == ([], {})
