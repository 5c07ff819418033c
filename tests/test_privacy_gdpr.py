"""GDPR on SQLite and PostgreSQL, plain and encrypted: erasure deletes the user everywhere and destroys their
data key, export is complete and re-importable (across backends too), rectification keeps history.

Erasure and the bytes on disk: SQLite rewrites its file and truncates its WAL, so none of the user's
plaintext survives in a plain store either. PostgreSQL keeps old row versions in its WAL (and in backups
and replicas) after DELETE and VACUUM; there erasure relies on encryption (crypto-shredding). So on
PostgreSQL an encrypted user's text never reaches the disk in clear, and a plain store's WAL still holds
the erased text, asserted below so that docs/security.md is revisited if that ever changes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from memstrata import InvalidInputError, Memory, NotFoundError
from memstrata.models import Scope
from memstrata.privacy.audit import verify_audit
from memstrata.privacy.crypto import DecryptionError, EncryptingCodec, LocalKeyProvider, generate_master_key
from memstrata.privacy.gdpr import export_user, forget_user, import_user
from memstrata.secure import secure_memory
from memstrata.tiers.privacy import subject_key, user_key_range
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store

# Every table holding a scope's rows.
DATA_TABLES = ("memories", "memory_vectors", "episodes", "history", "entities", "memory_entities", "edges",
               "conflicts")


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


@pytest.fixture(params=["plain", "encrypted"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def probe(word: str) -> str:
    """A lower-case word no other test writes (the PostgreSQL server, and its WAL, serve the whole session).
    Letters only: the rules extractor does not take a word with digits in it for a name."""
    return word + uuid.uuid4().hex[:10].translate(str.maketrans("0123456789", "ghijklmnop"))


def open_mem(url: str, mode: str, master_key: str | None = None) -> Memory:
    m = secure_memory(url, embedder="hash", audit=False, encrypt=mode == "encrypted",
                      master_key=master_key or generate_master_key())
    assert isinstance(m, Memory)
    return m


def wal_bytes(raw: RawStore) -> bytes:
    """PostgreSQL's write-ahead log, lower-cased (after the checkpoint stored_bytes makes)."""
    assert raw.data_dir is not None
    raw.stored_bytes()
    return b"".join(p.read_bytes() for p in sorted((raw.data_dir / "pg_wal").glob("0*")) if p.is_file()).lower()


def rows_of(raw: RawStore, org_id: str, user_id: str) -> dict[str, int]:
    """How many rows of each data table belong to a scope of the user, read behind the library's back."""
    low, high = user_key_range(org_id, user_id)
    return {t: sum(low <= key < high for (key,) in raw.sql(f"SELECT scope_key FROM {t}")) for t in DATA_TABLES}


def tables_mentioning(raw: RawStore, word: str) -> list[str]:
    return [t for t in DATA_TABLES if t != "memory_vectors" and word in repr(raw.sql(f"SELECT * FROM {t}")).lower()]


def fill_alice(m: Memory, secret: str, inferred: str) -> str:
    """Alice in every tier and in three scopes: ``secret`` in verbatim (infer=False) writes, ``inferred`` in
    one that goes through the extractor, which derives entity names and slots from it."""
    mid = m.add(f"My cat is called {secret}", user_id="alice", infer=False, conversation_id="c1",
                metadata={"tags": [secret]})["results"][0]["id"]
    m.update(mid, text=f"My cat {secret} is twelve", user_id="alice")
    m.add(f"My sister {inferred.capitalize()} moved to Lisbon.", user_id="alice", conversation_id="c1")
    m.add(f"The planner noted {secret} for alice", user_id="alice", agent_id="planner", infer=False)
    doomed = m.add(f"deleted {secret} note", user_id="alice", run_id="r9", infer=False)["results"][0]["id"]
    m.delete(doomed, user_id="alice", run_id="r9")  # leaves a DELETE event with the text in history
    m.search(secret, user_id="alice")  # puts the query in the query cache
    return mid


def test_forget_user_erases_every_tier_and_destroys_the_key(raw: RawStore, mode: str) -> None:
    secret, inferred, bob_secret = probe("quokka"), probe("fizz"), probe("pangolin")
    master = generate_master_key()
    m = open_mem(raw.url, mode, master)
    if raw.backend == "postgres":
        # A fresh WAL segment for this test's writes (far less than its 16 MB): the segment in use is never
        # recycled, so what the WAL keeps below does not depend on when the server checkpoints.
        start = raw.sql("SELECT pg_switch_wal(), pg_current_wal_lsn()")[0][1]
    fill_alice(m, secret, inferred)
    m.add(f"Bob's boat is named {bob_secret}", user_id="bob", infer=False, conversation_id="b1")
    m.add(f"Alice in another org: {secret}", user_id="alice", org_id="acme", infer=False)
    sealed = [t for (t,) in raw.sql("SELECT text FROM memories WHERE org_id = ? AND user_id = ?", ("default", "alice"))]
    assert len(sealed) == 3  # a copy of her rows, as a backup would hold them
    # The probe sees plaintext when it is there; encrypted, neither her words nor what inference derived from
    # them (entity names, slots) reach the disk in clear, on either backend.
    on_disk = raw.stored_bytes()
    assert (secret.encode() in on_disk) == (inferred.encode() in on_disk) == (mode == "plain")

    receipt = forget_user(m, "alice")

    assert rows_of(raw, "default", "alice") == dict.fromkeys(DATA_TABLES, 0)
    assert sum(rows_of(raw, "acme", "alice").values()) > 0  # acme's alice is another person
    assert (secret.encode() in raw.stored_bytes()) == (mode == "plain")
    acme = forget_user(m, "alice", org_id="acme")
    assert rows_of(raw, "acme", "alice") == dict.fromkeys(DATA_TABLES, 0) and acme["deleted"]["long_term"] == 1
    assert tables_mentioning(raw, secret) == [] and tables_mentioning(raw, inferred) == []
    if raw.backend == "sqlite":
        assert secret.encode() not in raw.stored_bytes() and inferred.encode() not in raw.stored_bytes()
        assert receipt["storage"] == {"fts_optimized": True, "vacuumed": True, "wal_truncated": True}
    else:
        assert receipt["storage"] == {"vacuumed": True, "data_keys_rewritten": True}
        if mode == "encrypted":
            assert secret.encode() not in raw.stored_bytes() and inferred.encode() not in raw.stored_bytes()
        else:  # the documented limit: PostgreSQL's WAL keeps the deleted row versions of a plain store
            assert secret.encode() in wal_bytes(raw) and inferred.encode() in wal_bytes(raw)
        written = raw.sql("SELECT pg_current_wal_lsn() - ?::pg_lsn", (start,))[0][0]
        assert written < 8 << 20, f"{written} bytes of WAL: no longer one segment"
    assert receipt["deleted"]["long_term"] == 3 and receipt["deleted"]["episodic"] == 4
    assert receipt["deleted"]["history"] >= 5 and receipt["deleted"]["graph"] > 0
    assert receipt["deleted"]["short_term_conversations"] == 1
    assert len(receipt["scopes"]) == 3 and receipt["data_key"]["existed"] == (mode == "encrypted")
    assert not m._qcache
    assert m.get_all(user_id="alice")["results"] == [] and m.episodes(user_id="alice")["results"] == []
    assert m.get_all(user_id="alice", agent_id="planner")["results"] == []
    assert m.search(secret, user_id="alice")["results"] == [] and m.entities(user_id="alice")["results"] == []
    # Bob is untouched, searchable and, in plain mode, still on disk.
    assert m.search(bob_secret, user_id="bob")["results"][0]["memory"].endswith(bob_secret)
    assert m.episodes(user_id="bob", query=bob_secret)["results"]
    assert (bob_secret.encode() in raw.stored_bytes()) == (mode == "plain")
    entries = m.store.audit_entries(org_id="default", user_id="alice")  # type: ignore[attr-defined]
    assert entries[-1].hash == receipt["audit"]["hash"] and entries[-1].event.operation == "forget_user"
    assert verify_audit(m.store).ok
    again = forget_user(m, "alice")  # idempotent
    assert sum(again["tables"].values()) == 0
    m.close()

    wrapped = raw.sql("SELECT wrapped_key, destroyed_at FROM data_keys WHERE subject_key = ?",
                      (subject_key(Scope("default", "alice")),))
    if mode == "plain":
        assert wrapped == [] and not any(t.startswith("enc1:") for t in sealed)
    else:
        # Crypto-shredding: the key is gone, so a copy of her rows kept elsewhere no longer decrypts,
        # even in a new process holding the master key.
        assert wrapped[0][0] is None and wrapped[0][1] is not None
        codec = EncryptingCodec(LocalKeyProvider.from_text(master))
        reopened = open_mem(raw.url, mode, master)
        codec.bind(reopened.store)
        for text in sealed:
            assert text.startswith("enc1:") and secret not in text
            with pytest.raises(DecryptionError, match="no longer exists"):
                codec.open(Scope("default", "alice"), text)
        assert reopened.get_all(user_id="alice")["results"] == []
        assert reopened.search(bob_secret, user_id="bob")["results"]
        reopened.close()
    if raw.backend == "sqlite":
        assert secret.encode() not in raw.stored_bytes()


def comparable(doc: dict[str, Any]) -> list[Any]:
    """An export without what differs between stores: ids, export time, the audit trail."""
    out = []
    for s in sorted(doc["scopes"], key=lambda s: json.dumps(s["scope"])):
        out.append((
            s["scope"],
            sorted((x["memory"], json.dumps(x["metadata"]), x["valid_from"], x["kind"]) for x in s["memories"]),
            sorted((e["content"], e["role"], e["occurred_at"]) for e in s["episodes"]),
            sorted(tuple(h["event"] for h in hs) for hs in s["history"].values()),
            sorted((e["name"], e["label"]) for e in s["entities"]),
            sorted((e["subject"], e["relation"], e["object"]) for e in s["edges"]),
            {c: [t["content"] for t in ts] for c, ts in s["short_term"].items()},
        ))
    return out


def test_export_is_complete_portable_and_round_trips(
    request: pytest.FixtureRequest, tmp_path: Path, raw: RawStore, mode: str
) -> None:
    secret, inferred = probe("quokka"), probe("fizz")
    m = open_mem(raw.url, mode)
    mid = fill_alice(m, secret, inferred)
    m.add("Bob's private thing", user_id="bob", infer=False)
    data = export_user(m, "alice")
    text = json.dumps(data)  # portable: plain JSON
    assert "Bob" not in text and data["user_id"] == "alice"
    assert {(s["scope"]["agent_id"], s["scope"]["run_id"]) for s in data["scopes"]} == {
        (None, None), ("planner", None), (None, "r9")}
    main = next(s for s in data["scopes"] if s["scope"]["agent_id"] is None and s["scope"]["run_id"] is None)
    assert [h["event"] for h in main["history"][mid]] == ["ADD", "UPDATE"]
    assert main["short_term"]["c1"] and main["entities"] and main["episodes"]
    assert inferred.capitalize() in {e["name"] for e in main["entities"]}
    deleted = next(s for s in data["scopes"] if s["scope"]["run_id"] == "r9")
    assert deleted["memories"] == [] and any(e[0]["event"] == "ADD" for e in deleted["history"].values())
    assert data["access_log"] == []  # this Memory is not audited (see the next test)

    for backend in PRIVACY_BACKENDS:  # into a new store of the same backend and of the other one
        folder = tmp_path / f"to-{backend}"
        folder.mkdir()
        target = open_mem(raw_store(request, folder, backend).url, mode)
        result = import_user(target, json.loads(text))
        assert result["imported"]["memories"] == sum(len(s["memories"]) for s in data["scopes"])
        assert comparable(export_user(target, "alice")) == comparable(data), backend
        hit = target.search(secret, user_id="alice")["results"]
        assert hit and secret in hit[0]["memory"], backend
        assert [e["event"] for e in target.history(result["id_map"]["memories"][mid], user_id="alice")] == [
            "ADD", "UPDATE"]
        as_carol = import_user(target, data, user_id="carol")
        assert as_carol["user_id"] == "carol" and len(target.get_all(user_id="carol")["results"]) == 2
        target.close()
    m.close()


def test_export_includes_who_accessed_the_user(raw: RawStore, mode: str) -> None:
    m = secure_memory(raw.url, embedder="hash", encrypt=mode == "encrypted", master_key=generate_master_key(),
                      actor="key:k1")
    mid = m.add("a", user_id="alice", infer=False)["results"][0]["id"]
    m.get(mid, user_id="alice")
    m.add("b", user_id="bob", infer=False)
    log = m.export_user("alice")["access_log"]  # type: ignore[union-attr]
    assert [(e["operation"], e["actor"], e["memory_ids"]) for e in log] == [("add", "key:k1", [mid]),
                                                                          ("get", "key:k1", [mid])]
    m.close()


def test_import_rejects_foreign_or_broken_documents(raw: RawStore, mode: str) -> None:
    m = open_mem(raw.url, mode)
    m.add("a", user_id="alice", infer=False)
    data = export_user(m, "alice")
    for bad in ({"format": "other"}, {**data, "version": 99}):
        with pytest.raises(InvalidInputError):
            import_user(m, bad)
    broken = json.loads(json.dumps(data))
    broken["scopes"][0]["memories"][0].pop("created_at")
    with pytest.raises(InvalidInputError, match="malformed"):
        import_user(m, broken, user_id="zed")
    assert m.get_all(user_id="zed")["results"] == [] and m.episodes(user_id="zed")["results"] == []
    assert rows_of(raw, "default", "zed") == dict.fromkeys(DATA_TABLES, 0)  # nothing half-written
    m.close()


def test_rectification_is_an_update_that_keeps_history(raw: RawStore, mode: str) -> None:
    m = open_mem(raw.url, mode)
    mid = m.add("My birthday is on 3 May", user_id="alice", infer=False)["results"][0]["id"]
    m.update(mid, text="My birthday is on 5 March", metadata={"rectified": True}, user_id="alice")
    assert m.get(mid, user_id="alice")["memory"] == "My birthday is on 5 March"
    assert m.get(mid, user_id="alice")["metadata"]["rectified"] is True
    events = m.history(mid, user_id="alice")
    assert [(e["event"], e["old_memory"], e["new_memory"]) for e in events][-1] == (
        "UPDATE", "My birthday is on 3 May", "My birthday is on 5 March")
    assert [x["memory"] for x in m.search("birthday", user_id="alice")["results"]] == ["My birthday is on 5 March"]
    with pytest.raises(NotFoundError):
        m.history(mid, user_id="bob")  # the old text is kept for its owner only
    stored = raw.sql("SELECT old_memory, new_memory FROM history WHERE memory_id = ?", (mid,))
    assert ("My birthday is on 3 May" in repr(stored)) == (mode == "plain")
    m.close()
