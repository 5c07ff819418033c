"""The per-scope entity cache of the SQL stores: served while the scope is unchanged, dropped by this
process's writes, and reloaded when another process (another store object on the same database) writes."""

from __future__ import annotations

from typing import Any

from tier_support import StoreFactory, added, memory, needs, vec

from memstrata.ingest.entities import resolve_entities
from memstrata.models import Scope
from memstrata.tiers.base import Capability, Store, WriteBatch


def _mention(store: Store, scope: Scope, name: str, alias: str | None = None) -> str:
    rec = memory(scope, f"{name} was mentioned")
    store.apply(scope, resolve_entities(WriteBatch(new_memories=[(rec, vec(rec.text))], history=[added(rec)],
                                                   entity_links=[(rec.id, name, "PERSON", alias or name)])))
    return rec.id


def _names(store: Store, scope: Scope) -> dict[str, list[str]]:
    return {e.name: e.aliases for e in store.entities(scope, limit=5000)}


def _cache(store: Store) -> Any:
    cache = getattr(store, "_entity_cache", None)
    assert cache is not None, "every SQL store caches entities"
    return cache


def test_repeated_reads_are_served_from_the_cache(store: Store, scope: Scope) -> None:
    _mention(store, scope, "Anna")
    cache = _cache(store)
    assert _names(store, scope) == {"Anna": []}
    hits = cache.hits
    assert _names(store, scope) == {"Anna": []} and cache.hits == hits + 1
    assert [e.name for e in store.entities(scope, limit=1)] == ["Anna"] and cache.hits == hits + 2


def test_own_writes_drop_the_scope(store: Store, scope: Scope) -> None:
    _mention(store, scope, "Anna")
    assert _names(store, scope) == {"Anna": []}
    _mention(store, scope, "Anna", alias="Annie")
    assert _names(store, scope) == {"Anna": ["Annie"]}
    store.delete_scope(scope)
    assert _names(store, scope) == {}
    _mention(store, scope, "Bruno")
    assert _names(store, scope) == {"Bruno": []}
    store.reset()
    assert _names(store, scope) == {}


def test_another_process_writes_are_seen(open_store: StoreFactory, scope: Scope) -> None:
    mine, theirs = open_store(), open_store()
    _mention(mine, scope, "Anna")
    assert _names(mine, scope) == {"Anna": []}  # cached in this process
    _mention(theirs, scope, "Anna", alias="Annie")
    _mention(theirs, scope, "Carla")
    assert _names(mine, scope) == {"Anna": ["Annie"], "Carla": []}
    theirs.delete_scope(scope)
    assert _names(mine, scope) == {}
    _mention(theirs, scope, "Dora")  # the scope again, after a delete: never mistaken for the old one
    assert _names(mine, scope) == {"Dora": []}
    theirs.reset()
    assert _names(mine, scope) == {}


def test_another_process_purge_is_seen(open_store: StoreFactory, scope: Scope) -> None:
    mine, theirs = open_store(), open_store()
    needs(mine, Capability.PRIVACY)
    _mention(mine, scope, "Anna")
    assert _names(mine, scope) == {"Anna": []}
    report = theirs.purge_memories(scope.org_id, 2_000_000_000.0)  # type: ignore[attr-defined]
    assert scope in report.deleted
    assert _names(mine, scope) == {}


def test_a_scope_deleted_and_rebuilt_elsewhere_is_not_mistaken_for_the_cached_one(
    open_store: StoreFactory, scope: Scope
) -> None:
    mine, theirs = open_store(), open_store()
    _mention(mine, scope, "Anna")
    assert _names(mine, scope) == {"Anna": []}
    theirs.delete_scope(scope)  # as many writes since as before: a plain write counter would read the same
    _mention(theirs, scope, "Dora")
    assert _names(mine, scope) == {"Dora": []}
