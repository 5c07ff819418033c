"""Encryption at rest: what lands on disk, keys, rotation, wrong keys, tampering and moved rows."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from memstrata import ConfigurationError, Memory, NotFoundError
from memstrata.backends.sqlite import SQLiteStore
from memstrata.core.text import normalized_hash
from memstrata.models import MemoryRecord, Scope
from memstrata.privacy.crypto import (
    DecryptionError,
    EncryptingCodec,
    LocalKeyProvider,
    MasterKeyError,
    generate_master_key,
    load_key_provider,
    rotate_master_key,
)
from memstrata.privacy.gdpr import export_user, forget_user, import_user
from memstrata.secure import AuditedMemory, secure_memory
from memstrata.tiers.base import WriteBatch
from memstrata.tiers.privacy import subject_key
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store

KEY = generate_master_key()
SECRET = "quokkafizzle"


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


def on_disk(db: Path) -> bytes:
    """The database file with its write-ahead log and shared-memory index."""
    parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def open_mem(target: Path | RawStore | str, key: str = KEY, **kw) -> Memory:  # type: ignore[no-untyped-def]
    url = target.url if isinstance(target, RawStore) else str(target) if isinstance(target, str) else f"sqlite:///{target}"
    m = secure_memory(url, master_key=key, embedder="hash", audit=False, **kw)
    assert isinstance(m, Memory)
    return m


def bare_store(raw: RawStore, dim: int = 64, **kw):  # type: ignore[no-untyped-def]
    """The backend's store class opened directly: no refusal of a plain open, for key-level tests."""
    if raw.backend == "sqlite":
        return SQLiteStore(raw.path, dim=dim, **kw)
    from memstrata.backends.postgres import PostgresStore

    return PostgresStore(raw.url, dim=dim, **kw)


def second_store(raw: RawStore, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> RawStore:
    """Another fresh, empty store of the same backend."""
    (tmp_path / name).mkdir()
    return raw_store(request, tmp_path / name, raw.backend)


def unique(word: str) -> str:
    """A probe word no other test writes (the PostgreSQL server and its WAL are shared by every test)."""
    return word + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))


def index_tokens(raw: RawStore) -> list[list[str]]:
    """The keyword-index terms of each memory, in insertion order."""
    if raw.backend == "sqlite":
        return [r[0].split() for r in raw.sql("SELECT fts_text FROM memories ORDER BY rid")]
    rows = raw.sql("SELECT fts::text FROM memories ORDER BY rid")
    return [re.findall(r"'([^']+)'", r[0]) for r in rows]


def test_text_and_metadata_are_sealed_and_still_searchable(raw: RawStore) -> None:
    secret = unique("quokkafizzle")
    with open_mem(raw) as m:
        mid = m.add(f"My password hint is {secret}", user_id="alice", infer=False,
                    metadata={"note": f"meta-{secret}"}, conversation_id="c1")["results"][0]["id"]
        m.update(mid, text=f"My new hint is {secret} again", user_id="alice")
        assert secret.encode() not in raw.stored_bytes()
        assert m.get(mid, user_id="alice")["metadata"] == {"note": f"meta-{secret}"}
        assert [x["id"] for x in m.search(secret, user_id="alice")["results"]] == [mid]
        assert m.episodes(user_id="alice", query=secret)["results"][0]["content"].endswith(secret)
        assert m.history(mid, user_id="alice")[-1]["old_memory"] == f"My password hint is {secret}"
    (text,), tokens = raw.sql("SELECT text FROM memories")[0], index_tokens(raw)[0]
    assert text.startswith("enc1:") and secret not in tokens and tokens
    assert all(len(t) == 16 and set(t) <= set("abcdefghijklmnop") for t in tokens)  # letters: one term each


def test_keyword_tokens_differ_per_user_and_can_be_turned_off(
    raw: RawStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with open_mem(raw) as m:
        m.add("shared words here", user_id="alice", infer=False)
        m.add("shared words here", user_id="bob", infer=False)
        a, b = index_tokens(raw)
        assert len(a) == len(b) == 2 and set(a).isdisjoint(b)  # per-user HMAC keys: not linkable across users
    secret = unique("quokkafizzle")
    with open_mem(second_store(raw, request, tmp_path, "b"), keyword_index=False) as m:
        m.add(f"nothing indexed {secret}", user_id="alice", infer=False)
        assert m.episodes(user_id="alice", query=secret)["results"] == []
        assert len(m.search(secret, user_id="alice")["results"]) == 1  # the vector stage still finds it


def test_a_row_moved_to_another_scope_does_not_decrypt(raw: RawStore) -> None:
    with open_mem(raw) as m:
        m.add("alice's note", user_id="alice", infer=False)
        m.add("alice's agent note", user_id="alice", agent_id="bot", infer=False)
        agent_scope, user_scope = Scope("default", "alice", "bot"), Scope("default", "alice")
        # Same data key (same user), different scope: the associated data still tells them apart.
        raw.sql("UPDATE memories SET scope_key = ?, agent_id = NULL WHERE scope_key = ?",
                (user_scope.key, agent_scope.key))
        with pytest.raises(DecryptionError, match="moved from another scope"):
            m.get_all(user_id="alice")


def test_tampered_ciphertext_fails_loudly(raw: RawStore) -> None:
    with open_mem(raw) as m:
        mid = m.add("a fact", user_id="alice", infer=False)["results"][0]["id"]
        stored = raw.sql("SELECT text FROM memories")[0][0]
        flipped = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
        raw.sql("UPDATE memories SET text = ?", (flipped,))
        with pytest.raises(DecryptionError):
            m.get(mid, user_id="alice")


def test_rotated_master_key_still_decrypts_and_the_old_one_no_longer_does(raw: RawStore) -> None:
    new_key = generate_master_key()
    with open_mem(raw) as m:
        for user in ("alice", "bob", "carol"):
            m.add(f"{user} likes tea", user_id=user, infer=False)
        report = rotate_master_key(m.store, LocalKeyProvider.from_text(KEY), LocalKeyProvider.from_text(new_key))
    assert report["rewrapped"] == 3  # the audit key is born with the rotation's own entry, under the new key
    with open_mem(raw, new_key) as m:
        assert m.get_all(user_id="bob")["results"][0]["memory"] == "bob likes tea"
    again = bare_store(raw)
    assert rotate_master_key(again, LocalKeyProvider.from_text(KEY), LocalKeyProvider.from_text(new_key))[
        "skipped"] == 4  # already rotated: running it again is harmless
    again.close()
    with pytest.raises(MasterKeyError, match="wrapped by master key"):
        open_mem(raw, KEY)


def test_a_wrong_master_key_fails_at_open_not_with_garbage(raw: RawStore) -> None:
    with open_mem(raw) as m:
        m.add("something", user_id="alice", infer=False)
    with pytest.raises(ConfigurationError, match="master key"):
        open_mem(raw, generate_master_key())
    # The same key id with other key material (a KMS returning the wrong key): the unwrap fails loudly.
    store = bare_store(raw)
    rec = store.get_data_key(subject_key(Scope("default", "alice")))
    assert rec is not None and rec.wrapped_key is not None
    provider = LocalKeyProvider.from_text(generate_master_key())
    provider._keys[rec.master_key_id] = provider._keys[provider.current_key_id]
    with pytest.raises(MasterKeyError, match="cannot unwrap"):
        EncryptingCodec(provider).bind(store).open(Scope("default", "alice"), "enc1:00:AAAA")
    store.close()


def test_plain_and_encrypted_modes_never_mix(raw: RawStore, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with open_mem(raw) as m:
        m.add("sealed", user_id="alice", infer=False)
    with pytest.raises(ConfigurationError, match="holds encrypted data"):
        secure_memory(raw.url, encrypt=False, embedder="hash")
    with pytest.raises(ConfigurationError, match="holds encrypted data"):
        Memory(raw.url, embedder="hash")  # a bare Memory would hand out ciphertext as text
    plain = second_store(raw, request, tmp_path, "plain")
    with Memory(plain.url, embedder="hash") as m:
        m.add("plain", user_id="alice", infer=False)
    with pytest.raises(ConfigurationError, match="unencrypted data"):
        open_mem(plain)


def test_master_key_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_key_provider({}) is None
    p = load_key_provider({"MEMSTRATA_MASTER_KEY": KEY})
    assert p is not None and p.current_key_id == LocalKeyProvider.from_text(KEY).current_key_id
    assert KEY not in repr(p)
    key_file = tmp_path / "master.key"
    key_file.write_text(KEY + "\n")
    assert load_key_provider({"MEMSTRATA_MASTER_KEY_FILE": str(key_file)}).current_key_id == p.current_key_id  # type: ignore[union-attr]
    for bad in ("not base64!", "c2hvcnQ="):
        with pytest.raises(ConfigurationError):
            load_key_provider({"MEMSTRATA_MASTER_KEY": bad})
    with pytest.raises(ConfigurationError, match="master key file"):
        load_key_provider({"MEMSTRATA_MASTER_KEY_FILE": str(tmp_path / "missing")})
    monkeypatch.delenv("MEMSTRATA_MASTER_KEY", raising=False)
    monkeypatch.delenv("MEMSTRATA_MASTER_KEY_FILE", raising=False)
    with pytest.raises(ConfigurationError, match="no master key"):
        secure_memory(f"sqlite:///{tmp_path / 'x.db'}", embedder="hash")
    monkeypatch.setenv("MEMSTRATA_MASTER_KEY", KEY)
    with secure_memory(f"sqlite:///{tmp_path / 'x.db'}", embedder="hash") as m:
        assert isinstance(m, AuditedMemory)


def _record(scope: Scope, text: str) -> MemoryRecord:
    return MemoryRecord(id=text, scope=scope, text=text, created_at=1.0, updated_at=1.0, valid_from=1.0,
                        content_hash=text)


def test_a_failed_first_batch_writes_nothing_and_the_next_one_seals_with_one_key(raw: RawStore) -> None:
    provider = LocalKeyProvider.from_text(KEY)
    codec = EncryptingCodec(provider)
    store = bare_store(raw, dim=4, codec=codec)
    codec.bind(store)
    scope = Scope("default", "dora")
    vec = np.ones((1, 4), dtype=np.float32)
    with pytest.raises(NotFoundError):
        store.apply(scope, WriteBatch(new_memories=[(_record(scope, "m1"), vec)], deleted_memory_ids=["nope"]))
    assert store.get_memories(scope, ["m1"]) == [] and raw.sql("SELECT count(*) FROM memories")[0][0] == 0
    first = store.get_data_key(subject_key(scope))
    if raw.backend == "sqlite":
        assert first is None  # created inside the batch's transaction, and rolled back with it
    else:
        assert first is not None  # created by the codec's prepare(), before the batch's transaction
    store.apply(scope, WriteBatch(new_memories=[(_record(scope, "m2"), vec), (_record(scope, "m3"), vec)]))
    key = store.get_data_key(subject_key(scope))
    assert key is not None and (first is None or key.wrapped_key == first.wrapped_key)
    store.close()
    reopened = bare_store(raw, dim=4, codec=EncryptingCodec(provider))
    reopened.codec.bind(reopened)
    assert [r.text for r in reopened.get_memories(scope, ["m2", "m3"])] == ["m2", "m3"]
    reopened.close()


def test_concurrent_first_writes_of_one_user_share_one_key(raw: RawStore) -> None:
    with open_mem(raw) as m:
        errors: list[BaseException] = []

        def write(i: int) -> None:
            try:
                m.add(f"note {i}", user_id="eve", infer=False)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        m.store.codec.forget(subject_key(Scope("default", "eve")))  # type: ignore[attr-defined]
        assert len(m.get_all(user_id="eve")["results"]) == 8
        assert raw.sql("SELECT count(*) FROM data_keys WHERE subject_key = ?",
                       (subject_key(Scope("default", "eve")),))[0][0] == 1


def test_keyed_content_hash_hides_guessable_texts(raw: RawStore) -> None:
    with open_mem(raw) as m:
        codec = m.store.codec  # type: ignore[attr-defined]
        a, b = Scope("default", "alice"), Scope("default", "bob")
        m.add("x", user_id="alice", infer=False)
        m.add("x", user_id="bob", infer=False)
        assert codec.seal_hash(a, "abc") == codec.seal_hash(a, "abc") != codec.seal_hash(b, "abc")


def test_forgotten_subject_cannot_be_read_and_a_returning_user_gets_a_new_key(raw: RawStore) -> None:
    with open_mem(raw) as m:
        m.add("old life", user_id="alice", infer=False)
        old = m.store.get_data_key(subject_key(Scope("default", "alice")))  # type: ignore[attr-defined]
        forget_user(m, "alice")
        m.add("new life", user_id="alice", infer=False)
        new = m.store.get_data_key(subject_key(Scope("default", "alice")))  # type: ignore[attr-defined]
        assert old.wrapped_key[:8] != new.wrapped_key[:8] and not new.destroyed
        assert [x["memory"] for x in m.get_all(user_id="alice")["results"]] == ["new life"]


# What inference derives from these messages: entities (a person, a place, an org), slots with changed
# values (so conflicts and superseded memories), edges, and the speaker's name on every episode.
INFERRED = [
    "My sister Quokkafizzle lives in Barcelona. My gate code is 83920417.",
    "My gate code is 83920418.",  # new values not said as changes: conflict records
    "My sister Quokkafizzle lives in Valencia.",
    "Quokkafizzle works at Zembla Corp.",
]
SPEAKER = "Wilhelmina"
# Long and unlike hex or base64 runs, so a random ciphertext byte string never matches them by chance.
DERIVED = ["Quokkafizzle", "Barcelona", "Valencia", "Zembla", SPEAKER, "83920417", "83920418", "gate_code",
           "lives_in", "works_at", "sister_of", "mentioned_with", "choked"]
# Every column that holds the user's text, whether written directly or derived by inference.
TEXT_COLUMNS = {
    "episodes": ("name", "content", "metadata", "extraction_error"),
    "memories": ("text", "content_hash", "metadata", "entities", "slot_subject", "slot_attribute", "slot_value"),
    "history": ("old_memory", "new_memory", "reason"),
    "entities": ("name", "name_key", "aliases"),
    "edges": ("relation",),
    "conflicts": ("subject", "attribute", "old_value", "new_value"),
}


def stored_columns(raw: RawStore) -> str:
    """Every value of TEXT_COLUMNS as the database holds it, lower-cased, one per line."""
    out = []
    for table, columns in TEXT_COLUMNS.items():
        select = ", ".join(f"CAST({c} AS TEXT)" for c in columns)
        out += [str(v) for row in raw.sql(f"SELECT {select} FROM {table}") for v in row if v is not None]
    return "\n".join(out).lower()


def add_inferred(m: Memory, user_id: str = "alice") -> None:
    for text in INFERRED:
        m.add([{"role": "user", "content": text, "name": SPEAKER}], user_id=user_id)


def test_inferred_graph_and_slots_are_sealed_too(raw: RawStore) -> None:
    m = secure_memory(raw.url, master_key=KEY, embedder="hash", audit=False)
    assert isinstance(m, Memory)
    with m:
        add_inferred(m)
        scope = Scope("default", "alice")
        failed = m.episodes(user_id="alice")["results"][0]["id"]
        m.store.apply(scope, WriteBatch(episode_status=[(failed, "failed", "the extractor choked")]))

        # Nothing vacuous: inference made the entities, edges, slots and conflicts this test looks for.
        entities = {e["name"]: e for e in m.entities(user_id="alice")["results"]}
        assert {"Quokkafizzle", "Barcelona", "Valencia", "Zembla Corp"} <= entities.keys()
        assert entities["Quokkafizzle"]["aliases"] == ["My sister Quokkafizzle"]
        conflicts = {c["attribute"]: c for c in m.conflicts(user_id="alice", status="all")["results"]}
        assert {a: (c["subject"], c["old_value"], c["new_value"]) for a, c in conflicts.items()} == {
            "gate_code": ("user", "83920417", "83920418"), "lives_in": ("Quokkafizzle", "barcelona", "valencia")}
        near = m.neighbours("Quokkafizzle", user_id="alice")
        assert {("Zembla Corp", "works_at"), ("user", "sister_of")} <= {
            (n["name"], n["relation"]) for n in near["neighbours"]}
        works = next(x for x in m.get_all(user_id="alice")["results"] if "Zembla" in x["memory"])
        assert works["entities"] == ["Quokkafizzle", "Zembla Corp"] and works["id"] in near["memories"]
        hits = m.search("Where does Quokkafizzle work?", user_id="alice", explain=True)["results"]
        assert "entity_fused" in next(h for h in hits if h["id"] == works["id"])["stages"]
        episodes = m.episodes(user_id="alice")["results"]
        assert {e["name"] for e in episodes} == {SPEAKER}
        assert [e["extraction_error"] for e in episodes if e["id"] == failed] == ["the extractor choked"]

        # History keeps the reasons, and resolving a conflict still finds and restores both sides.
        old_code = conflicts["gate_code"]["old_memory_id"]
        assert [(h["event"], h["reason"]) for h in m.history(old_code, user_id="alice")][-1] == (
            "SUPERSEDE", "gate_code of user changed to '83920418'")
        resolved = m.resolve_conflict(conflicts["gate_code"]["id"], keep="old", user_id="alice")
        assert (resolved["status"], resolved["old_value"], resolved["new_value"]) == ("resolved", "83920417",
                                                                                       "83920418")
        assert m.get(old_code, user_id="alice")["superseded_by"] is None
        assert m.history(conflicts["gate_code"]["new_memory_id"], user_id="alice")[-1]["reason"] == (
            "conflict resolved: keep old")

        # Dedup by content hash, and the slot lookup behind merges and conflicts, on keyed columns.
        again = m.add(INFERRED[3], user_id="alice")["results"]
        assert [(x["event"], x["id"]) for x in again] == [("MERGE", works["id"])]
        assert m.get(works["id"], user_id="alice")["mention_count"] == 2

        # Export carries the plaintext, and it imports into another user (who gets their own key).
        data = export_user(m, "alice")
        block = data["scopes"][0]
        assert {e["name"] for e in block["entities"]} == set(entities)
        assert ("Quokkafizzle", "works_at", "Zembla Corp") in {
            (e["subject"], e["relation"], e["object"]) for e in block["edges"]}
        assert {(link["entity"], link["memory_id"]) for link in block["entity_links"]} >= {
            ("Zembla Corp", works["id"])}
        assert {c["attribute"] for c in block["conflicts"]} == {"gate_code", "lives_in"}
        assert {m_["slot"][1] for m_ in block["memories"] if m_["slot"]} >= {"gate_code", "lives_in"}
        import_user(m, data, user_id="bob")
        assert {e["name"] for e in m.entities(user_id="bob")["results"]} == set(entities)
        assert {c["old_value"] for c in m.conflicts(user_id="bob", status=None)["results"]} == {"83920417",
                                                                                               "barcelona"}

        stored = stored_columns(raw)
        assert stored.count("enc1:") > 50
        for word in DERIVED:
            assert word.lower() not in stored, word
        if raw.path is not None:  # the SQLite file itself, its write-ahead log and shared-memory index
            disk = on_disk(raw.path)
            for word in DERIVED:
                assert word.encode() not in disk and word.lower().encode() not in disk, word


def test_stored_content_hash_is_keyed_per_user_and_dedup_still_works(raw: RawStore) -> None:
    text = "The spare key is under the blue flowerpot"
    m = secure_memory(raw.url, master_key=KEY, embedder="hash", audit=False)
    assert isinstance(m, Memory)
    with m:
        ids = {u: m.add(text, user_id=u, infer=False)["results"][0]["id"] for u in ("alice", "bob")}
        stored = dict(raw.sql("SELECT user_id, content_hash FROM memories"))
        assert stored["alice"] != stored["bob"]
        assert normalized_hash(text) not in stored.values()
        # Callers still see the plain hash of the normalised text, as on a plain store.
        assert m.get(ids["alice"], user_id="alice")["hash"] == normalized_hash(text)
        for user, mid in ids.items():
            again = m.add(text.upper() + "!", user_id=user, infer=False)["results"]
            assert [(x["event"], x["id"]) for x in again] == [("MERGE", mid)]
            assert m.history(mid, user_id=user)[-1]["reason"] == "exact duplicate"
        mid = ids["alice"]
        m.update(mid, text="The spare key is under the red flowerpot", user_id="alice")
        stored_after = raw.sql("SELECT content_hash FROM memories WHERE id = ?", (mid,))[0][0]
        assert stored_after not in (stored["alice"], normalized_hash("The spare key is under the red flowerpot"))
        again = m.add("the spare key is under the red flowerpot", user_id="alice", infer=False)["results"]
        assert [(x["event"], x["id"]) for x in again] == [("MERGE", mid)]


def test_a_plain_store_keeps_derived_columns_as_they_were(raw: RawStore) -> None:
    with Memory(raw.url, embedder="hash") as m:
        add_inferred(m)
    names = {r[0]: r[1] for r in raw.sql("SELECT name, name_key FROM entities")}
    assert names["Quokkafizzle"] == "quokkafizzle"
    slots = {tuple(r) for r in raw.sql("SELECT slot_subject, slot_attribute, slot_value FROM memories"
                                       " WHERE slot_attribute IS NOT NULL")}
    assert {("user", "gate_code", "83920418"), ("Quokkafizzle", "lives_in", "valencia")} <= slots
    text, content_hash = raw.sql("SELECT text, content_hash FROM memories ORDER BY created_at DESC LIMIT 1")[0]
    assert content_hash == normalized_hash(text)
    assert {r[0] for r in raw.sql("SELECT name FROM episodes")} == {SPEAKER}
    assert ("user", "gate_code", "83920417", "83920418") in {
        tuple(r) for r in raw.sql("SELECT subject, attribute, old_value, new_value FROM conflicts")}
