"""PrivacyTier on every store that declares it, and the Codec seam every SQL store honours: sealed text,
blinded keyword index, and lookups that still work."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pytest
from tier_support import StoreFactory, added, episode, memory, needs, vec

from memstrata.core.text import query_terms
from memstrata.ingest.entities import resolve_entities
from memstrata.models import Scope
from memstrata.tiers.base import Capability, Codec, Store, WriteBatch
from memstrata.tiers.privacy import GENESIS_HASH, AuditEvent, DataKeyRecord, LegalHold, RetentionPolicy


@pytest.fixture
def privacy(store: Store) -> Any:
    needs(store, Capability.PRIVACY)
    return store


def test_audit_entries_chain_in_order(privacy: Any, scope: Scope) -> None:
    def chain(seq: int, prev: str) -> str:
        return hashlib.sha256(f"{seq}:{prev}".encode()).hexdigest()

    first = privacy.append_audit(AuditEvent(1.0, "admin", scope.org_id, scope.key, "export", ("m1",)), chain)
    second = privacy.append_audit(AuditEvent(2.0, "admin", "other-org", None, "erase"), chain)
    assert (first.seq, first.prev_hash, second.prev_hash) == (1, GENESIS_HASH, first.hash)
    assert [e.seq for e in privacy.audit_entries()] == [1, 2]
    assert [e.seq for e in privacy.audit_entries(org_id="other-org")] == [2]
    mine = privacy.audit_entries(org_id=scope.org_id, user_id=scope.user_id)
    assert [e.event.memory_ids for e in mine] == [("m1",)]


def test_data_keys_are_created_once_rewrapped_and_destroyed(privacy: Any) -> None:
    made = privacy.put_data_key(DataKeyRecord("org/u1", b"wrapped-1", "master-1", 1.0, None))
    again = privacy.put_data_key(DataKeyRecord("org/u1", b"wrapped-2", "master-1", 2.0, None))
    assert made.wrapped_key == again.wrapped_key == b"wrapped-1"  # the first key stays
    assert privacy.holds_data_keys()
    assert privacy.rewrap_data_keys([("org/u1", b"wrapped-3", "master-2")]) == 1
    assert privacy.get_data_key("org/u1").master_key_id == "master-2"
    gone = privacy.destroy_data_key("org/u1", 3.0)
    assert gone.wrapped_key is None and gone.destroyed_at == 3.0
    assert not privacy.holds_data_keys() and privacy.destroy_data_key("nobody", 1.0) is None
    assert [k.subject_key for k in privacy.data_keys()] == ["org/u1"]


def test_retention_policies_and_holds(privacy: Any) -> None:
    privacy.put_retention_policy(RetentionPolicy("p1", "org", "episodic", None, 10.0, 1.0))
    privacy.put_retention_policy(RetentionPolicy("p2", "org", "episodic", None, 20.0, 2.0))  # replaces p1
    privacy.put_retention_policy(RetentionPolicy("p3", "org", "episodic", "health", 5.0, 3.0))
    assert [(p.category, p.max_age_seconds) for p in privacy.retention_policies("org")] == [(None, 20.0),
                                                                                            ("health", 5.0)]
    assert privacy.delete_retention_policy("org", "episodic", None)
    assert not privacy.delete_retention_policy("org", "episodic", None)
    assert privacy.put_legal_hold(LegalHold("org", "u1", "audit", 1.0)).reason == "audit"
    assert privacy.put_legal_hold(LegalHold("org", "u1", "subpoena", 2.0)).reason == "subpoena"
    assert [h.user_id for h in privacy.legal_holds("org")] == ["u1"] and privacy.legal_holds("other") == []
    assert privacy.delete_legal_hold("org", "u1") and privacy.legal_holds() == []


def test_purges_keep_held_users_and_report_what_went(privacy: Any) -> None:
    held, free = Scope.of(user_id="held", org_id="acme"), Scope.of(user_id="free", org_id="acme")
    for scope in (held, free):
        rec = memory(scope, f"an old fact of {scope.user_id}", at=1_000.0)
        privacy.apply(scope, WriteBatch(new_memories=[(rec, vec(rec.text))], history=[added(rec)]))
        privacy.add_episodes([episode(scope, "an old message", at=1_000.0)])
    privacy.put_legal_hold(LegalHold("acme", "held", "case", 1.0))
    memories = privacy.purge_memories("acme", 2_000.0)
    episodes = privacy.purge_episodes("acme", 1_000_000_000_000.0)
    assert set(memories.deleted) == {free} and memories.counts["memories"] == 1
    assert set(episodes.deleted) == {free} and episodes.counts["episodes"] == 1
    assert privacy.count(held) == 1 and privacy.count(free) == 0
    assert privacy.user_scopes("acme", "held") == [held]
    assert privacy.history_memory_ids(free) == []  # a purge takes the history with it


def test_graph_rows_and_idle_conversations(privacy: Any, scope: Scope) -> None:
    rec = memory(scope, "Anna works at Acme")
    privacy.apply(scope, resolve_entities(WriteBatch(
        new_memories=[(rec, vec(rec.text))], history=[added(rec)],
        entity_links=[(rec.id, "Anna", "PERSON", "Anna")], edges=[("Anna", "works_at", "Acme", rec.id, None)])))
    rows = privacy.graph_rows(scope)
    assert rows.links == [(rec.id, "Anna", "PERSON")]
    assert [(s, r, o) for s, r, o, *_ in rows.edges] == [("Anna", "works_at", "Acme")]
    assert privacy.history_memory_ids(scope) == [rec.id]
    privacy.add_episodes([episode(scope, "hello", at=1_000.0, conversation_id="old")])
    assert privacy.idle_conversations(scope.org_id, 2_000.0) == [(scope, "old")]


class ToyCodec(Codec):
    """Reversible 'encryption' and hashed index words, shaped like the privacy layer's codec."""

    encrypts = True

    def seal(self, scope: Scope, text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    def open(self, scope: Scope, stored: str) -> str:
        return base64.b64decode(stored).decode()

    def _blind(self, word: str) -> str:
        return "b" + hashlib.sha256(word.lower().encode()).hexdigest()[:12]

    def index_text(self, scope: Scope, text: str) -> str | None:
        return " ".join(self._blind(w) for w in text.split())

    def query_text(self, scope: Scope, query: str) -> str:
        return " ".join(self._blind(w) for w in query.split())


def test_codec_seals_text_and_metadata_and_blinds_the_index(open_store: StoreFactory) -> None:
    store = open_store(codec=ToyCodec())
    assert store.supports(Capability.ENCRYPTION)
    scope = Scope.of(user_id="enc")
    rec = memory(scope, "zanzibar holiday", metadata={"topic": "travel"})
    store.apply(scope, resolve_entities(WriteBatch(
        new_memories=[(rec, vec(rec.text))], history=[added(rec)],
        entity_links=[(rec.id, "Zanzibar", "GPE", "Zanzibar")])))
    store.add_episodes([episode(scope, "zanzibar holiday plans", at=1_700_000_000.0)])
    raw: Any = store  # the stored bytes, read behind the codec's back

    def stored(statement: str) -> str:
        return " ".join(str(v) for row in raw._run(lambda c: c.execute(statement).fetchall(), "raw") for v in row)

    assert "zanzibar" not in stored("SELECT text, metadata, entities FROM memories").lower()
    assert "travel" not in stored("SELECT metadata FROM memories")
    assert "zanzibar" not in stored("SELECT content FROM episodes").lower()
    assert "zanzibar" not in stored("SELECT name, aliases FROM entities").lower()
    got = store.get_memories(scope, [rec.id])[0]
    assert got.text == "zanzibar holiday" and got.metadata == {"topic": "travel"}
    assert [e.name for e in store.entities(scope)] == ["Zanzibar"]
    assert store.history(scope, rec.id)[0].new_memory == "zanzibar holiday"
    terms = query_terms(store.codec.query_text(scope, "zanzibar"))
    assert [i for i, _ in store.keyword_search(scope, terms, 5)] == [rec.id]
    assert [e.content for e, _ in store.search_episodes(scope, terms)] == ["zanzibar holiday plans"]
    assert [r.id for r in store.list_memories(scope, where=[("topic", "eq", "travel")])] == [rec.id]
    assert store.list_memories(scope, where=[("topic", "eq", "food")]) == []
    assert uuid.UUID(got.id)
