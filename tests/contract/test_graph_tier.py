"""GraphTier: resolved entities upserted by name, aliases gathered, neighbours over live edges."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tier_support import added, memory, vec

from memstrata.errors import BackendError
from memstrata.ingest.entities import resolve_entities
from memstrata.models import Scope
from memstrata.tiers.base import Store, WriteBatch


def _linked(store: Store, scope: Scope, text: str, links: list[tuple[str, str, str]],
            edges: Sequence[tuple[str, str, str]] = ()) -> str:
    rec = memory(scope, text)
    batch = WriteBatch(new_memories=[(rec, vec(text))], history=[added(rec)],
                       entity_links=[(rec.id, name, label, alias) for name, label, alias in links],
                       edges=[(s, r, o, rec.id, None) for s, r, o in edges])
    store.apply(scope, resolve_entities(batch))
    return rec.id


def test_entities_merge_aliases_and_count_mentions(store: Store, scope: Scope) -> None:
    first = _linked(store, scope, "Anna Silva moved to Braga", [("Anna Silva", "PERSON", "Anna Silva"),
                                                                 ("Braga", "GPE", "Braga")])
    second = _linked(store, scope, "Anna loves tea", [("Anna Silva", "OTHER", "Anna")])
    by_name = {e.name: e for e in store.entities(scope)}
    anna = by_name["Anna Silva"]
    assert (anna.label, anna.aliases, anna.mention_count) == ("PERSON", ["Anna"], 2)
    assert store.entities(scope, limit=1)[0].name == "Anna Silva"  # most mentioned first
    assert set(store.memories_of_entities(scope, [anna.id])) == {first, second}
    assert store.memories_of_entities(scope, [by_name["Braga"].id]) == [first]


def test_neighbours_follow_edges_of_current_memories(store: Store, scope: Scope) -> None:
    _linked(store, scope, "Anna works at Acme", [("Anna", "PERSON", "Anna"), ("Acme", "ORG", "Acme")],
            [("Anna", "works_at", "Acme")])
    anna = next(e for e in store.entities(scope) if e.name == "Anna")
    assert [(n.name, rel, hops) for n, rel, hops in store.neighbours(scope, anna.id)] == [("Acme", "works_at", 1)]
    assert store.neighbours(Scope.of(user_id="stranger"), anna.id) == []


def test_a_name_without_an_upsert_is_refused(store: Store, scope: Scope) -> None:
    rec = memory(scope, "Bob is here")
    with pytest.raises(BackendError, match="resolve_entities"):
        store.apply(scope, WriteBatch(new_memories=[(rec, vec(rec.text))],
                                      entity_links=[(rec.id, "Bob", "PERSON", "Bob")]))
    assert store.count(scope) == 0
