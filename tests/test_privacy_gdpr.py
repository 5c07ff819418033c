"""GDPR: erasure leaves no plaintext on disk, export is complete and re-importable, rectification keeps history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memstrata import Memory
from memstrata.privacy.audit import verify_audit
from memstrata.privacy.crypto import generate_master_key
from memstrata.privacy.gdpr import export_user, forget_user, import_user
from memstrata.secure import secure_memory

ALICE_SECRET = "quokkafizz"
BOB_SECRET = "pangolinjam"


def on_disk(db: Path) -> bytes:
    parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists()).lower()


@pytest.fixture(params=["plain", "encrypted"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def open_mem(db: Path, mode: str) -> Memory:
    m = secure_memory(f"sqlite:///{db}", embedder="hash", audit=False, encrypt=mode == "encrypted",
                      master_key=generate_master_key())
    assert isinstance(m, Memory)
    return m


def _fill_alice(m: Memory) -> str:
    mid = m.add(f"My cat is called {ALICE_SECRET}", user_id="alice", infer=False, conversation_id="c1",
                metadata={"tags": [ALICE_SECRET]})["results"][0]["id"]
    m.update(mid, text=f"My cat {ALICE_SECRET} is twelve", user_id="alice")
    m.add(f"My sister {ALICE_SECRET.capitalize()} moved to Lisbon.", user_id="alice", conversation_id="c1")
    m.add(f"The planner noted {ALICE_SECRET} for alice", user_id="alice", agent_id="planner", infer=False)
    doomed = m.add(f"deleted {ALICE_SECRET} note", user_id="alice", run_id="r9", infer=False)["results"][0]["id"]
    m.delete(doomed, user_id="alice", run_id="r9")  # leaves a DELETE event with the text in history
    m.search(ALICE_SECRET, user_id="alice")  # puts the query in the query cache
    return mid


def test_forget_user_leaves_no_plaintext_in_db_wal_or_shm(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "m.db"
    m = open_mem(db, mode)
    _fill_alice(m)
    m.add(f"Bob's boat is named {BOB_SECRET}", user_id="bob", infer=False, conversation_id="b1")
    m.add(f"Alice in another org: {ALICE_SECRET}", user_id="alice", org_id="acme", infer=False)
    if mode == "plain":
        assert ALICE_SECRET.encode() in on_disk(db)  # the probe can see plaintext when it is there

    receipt = forget_user(m, "alice")

    assert ALICE_SECRET.encode() in on_disk(db) if mode == "plain" else True  # acme's alice is another person
    forget_user(m, "alice", org_id="acme")
    assert ALICE_SECRET.encode() not in on_disk(db)
    assert receipt["deleted"]["long_term"] == 3 and receipt["deleted"]["episodic"] == 4
    assert receipt["deleted"]["history"] >= 5 and receipt["deleted"]["graph"] > 0
    assert receipt["deleted"]["short_term_conversations"] == 1
    assert len(receipt["scopes"]) == 3 and receipt["data_key"]["existed"] == (mode == "encrypted")
    assert receipt["storage"] == {"fts_optimized": True, "vacuumed": True, "wal_truncated": True}
    assert not m._qcache
    assert m.get_all(user_id="alice")["results"] == [] and m.episodes(user_id="alice")["results"] == []
    assert m.get_all(user_id="alice", agent_id="planner")["results"] == []
    # Bob is untouched, searchable and, in plain mode, still on disk.
    assert m.search(BOB_SECRET, user_id="bob")["results"][0]["memory"].endswith(BOB_SECRET)
    assert m.episodes(user_id="bob", query=BOB_SECRET)["results"]
    assert (BOB_SECRET.encode() in on_disk(db)) == (mode == "plain")
    entries = m.store.audit_entries(org_id="default", user_id="alice")  # type: ignore[attr-defined]
    assert entries[-1].hash == receipt["audit"]["hash"] and entries[-1].event.operation == "forget_user"
    assert verify_audit(m.store).ok
    again = forget_user(m, "alice")  # idempotent
    assert sum(again["tables"].values()) == 0
    m.close()
    assert ALICE_SECRET.encode() not in on_disk(db)


def test_export_is_complete_portable_and_round_trips(tmp_path: Path, mode: str) -> None:
    m = open_mem(tmp_path / "m.db", mode)
    mid = _fill_alice(m)
    m.add("Bob's private thing", user_id="bob", infer=False)
    data = export_user(m, "alice")
    text = json.dumps(data)  # portable: plain JSON
    assert "Bob" not in text and data["user_id"] == "alice"
    assert {(s["scope"]["agent_id"], s["scope"]["run_id"]) for s in data["scopes"]} == {
        (None, None), ("planner", None), (None, "r9")}
    main = next(s for s in data["scopes"] if s["scope"]["agent_id"] is None and s["scope"]["run_id"] is None)
    assert [h["event"] for h in main["history"][mid]] == ["ADD", "UPDATE"]
    assert main["short_term"]["c1"] and main["entities"] and main["episodes"]
    deleted = next(s for s in data["scopes"] if s["scope"]["run_id"] == "r9")
    assert deleted["memories"] == [] and any(e[0]["event"] == "ADD" for e in deleted["history"].values())
    assert data["access_log"] == []  # this Memory is not audited (see the next test)

    target = open_mem(tmp_path / "other.db", mode)
    result = import_user(target, json.loads(text))
    assert result["imported"]["memories"] == sum(len(s["memories"]) for s in data["scopes"])
    again = export_user(target, "alice")

    def comparable(d):  # type: ignore[no-untyped-def]
        out = []
        for s in sorted(d["scopes"], key=lambda s: json.dumps(s["scope"])):
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

    assert comparable(again) == comparable(data)
    hit = target.search(ALICE_SECRET, user_id="alice")["results"]
    assert hit and ALICE_SECRET in hit[0]["memory"]
    as_carol = import_user(target, data, user_id="carol")
    assert as_carol["user_id"] == "carol" and len(target.get_all(user_id="carol")["results"]) == 2
    m.close()
    target.close()


def test_export_includes_who_accessed_the_user(tmp_path: Path) -> None:
    m = secure_memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", encrypt=False, actor="key:k1")
    mid = m.add("a", user_id="alice", infer=False)["results"][0]["id"]
    m.get(mid, user_id="alice")
    m.add("b", user_id="bob", infer=False)
    log = m.export_user("alice")["access_log"]  # type: ignore[union-attr]
    assert [(e["operation"], e["actor"], e["memory_ids"]) for e in log] == [("add", "key:k1", [mid]),
                                                                          ("get", "key:k1", [mid])]
    m.close()


def test_import_rejects_foreign_or_broken_documents(tmp_path: Path) -> None:
    from memstrata import InvalidInputError

    m = open_mem(tmp_path / "m.db", "plain")
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
    m.close()


def test_rectification_is_an_update_that_keeps_history(tmp_path: Path, mode: str) -> None:
    m = open_mem(tmp_path / "m.db", mode)
    mid = m.add("My birthday is on 3 May", user_id="alice", infer=False)["results"][0]["id"]
    m.update(mid, text="My birthday is on 5 March", metadata={"rectified": True}, user_id="alice")
    assert m.get(mid, user_id="alice")["memory"] == "My birthday is on 5 March"
    events = m.history(mid, user_id="alice")
    assert [(e["event"], e["old_memory"], e["new_memory"]) for e in events][-1] == (
        "UPDATE", "My birthday is on 3 May", "My birthday is on 5 March")
    assert [x["memory"] for x in m.search("birthday", user_id="alice")["results"]] == ["My birthday is on 5 March"]
    m.close()
