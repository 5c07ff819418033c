"""EpisodicTier: every message verbatim, listed in time order, searchable by its words, never across scopes."""

from __future__ import annotations

from tier_support import episode

from memstrata.core.text import query_terms
from memstrata.models import Scope
from memstrata.tiers.base import Store, WriteBatch


def test_episodes_come_back_verbatim_by_id_and_in_time_order(store: Store, scope: Scope) -> None:
    eps = [episode(scope, f"message {i}", at=1_700_000_000 + i, metadata={"n": i}) for i in (2, 0, 1)]
    store.add_episodes(eps)
    got = store.get_episodes(scope, [eps[1].id, eps[0].id, "missing"])
    assert [e.id for e in got] == [eps[1].id, eps[0].id]
    assert got[1].content == "message 2" and got[1].metadata == {"n": 2}
    assert [e.content for e in store.list_episodes(scope)] == ["message 0", "message 1", "message 2"]


def test_listing_filters_and_pages(store: Store, scope: Scope) -> None:
    base = 1_700_000_000.0
    store.add_episodes([episode(scope, f"m{i}", at=base + i, conversation_id="a" if i % 2 else "b")
                        for i in range(6)])
    assert [e.content for e in store.list_episodes(scope, conversation_id="a")] == ["m1", "m3", "m5"]
    assert [e.content for e in store.list_episodes(scope, start=base + 2, end=base + 4)] == ["m2", "m3"]
    first = store.list_episodes(scope, limit=2)
    rest = store.list_episodes(scope, limit=10, after=(first[-1].occurred_at, first[-1].id))
    assert [e.content for e in first + rest] == [f"m{i}" for i in range(6)]


def test_extraction_status_is_written_by_a_batch(store: Store, scope: Scope) -> None:
    ep = episode(scope, "to extract", at=1_700_000_000, extraction_status="pending")
    store.add_episodes([ep])
    assert [e.id for e in store.list_episodes(scope, status="pending")] == [ep.id]
    store.apply(scope, WriteBatch(episode_status=[(ep.id, "failed", "model timed out")]))
    (got,) = store.get_episodes(scope, [ep.id])
    assert (got.extraction_status, got.extraction_error) == ("failed", "model timed out")


def test_search_takes_query_terms_and_stays_in_its_scope(store: Store, scope: Scope) -> None:
    other = Scope.of(user_id=scope.user_id + "-other")
    store.add_episodes([episode(scope, "we flew to Lisbon in May", at=1_700_000_000),
                        episode(scope, "the cat sleeps all day", at=1_700_000_001),
                        episode(other, "Lisbon again", at=1_700_000_002)])
    terms = query_terms(store.codec.query_text(scope, "trip to lisbon"))
    hits = store.search_episodes(scope, terms)
    assert [e.content for e, _ in hits] == ["we flew to Lisbon in May"]
    assert [e.content for e, _ in store.search_episodes(scope, "trip to lisbon")] == ["we flew to Lisbon in May"]
    assert store.search_episodes(scope, []) == []
    assert store.get_episodes(other, [hits[0][0].id]) == []
