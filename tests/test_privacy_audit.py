"""The audit log: every call recorded without content, and any edit to the stored chain detected."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from memstrata import Memory, NotFoundError
from memstrata.privacy.audit import Auditor, read_audit, verify_audit
from memstrata.privacy.crypto import generate_master_key
from memstrata.secure import AuditedMemory, secure_memory

SECRET = "wombatlantern"


@pytest.fixture(params=["plain", "encrypted"])
def audited(request: pytest.FixtureRequest, tmp_path: Path) -> AuditedMemory:
    m = secure_memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", encrypt=request.param == "encrypted",
                      master_key=generate_master_key(), actor="key:test")
    assert isinstance(m, AuditedMemory)
    yield m
    m.close()


def _exercise(m: AuditedMemory) -> str:
    mid = m.add(f"my {SECRET} is green", user_id="alice", infer=False, conversation_id="c1")["results"][0]["id"]
    m.search(SECRET, user_id="alice")
    m.get(mid, user_id="alice")
    m.update(mid, text=f"my {SECRET} is blue", user_id="alice")
    m.history(mid, user_id="alice")
    m.context(SECRET, user_id="alice")
    m.get_all(user_id="alice")
    m.episodes(user_id="alice", query=SECRET)
    with pytest.raises(NotFoundError):
        m.get(mid, user_id="mallory")
    m.add("bob's note", user_id="bob", infer=False)
    return mid


def _db(m: AuditedMemory) -> Path:
    return Path(m.memory.store.path)  # type: ignore[attr-defined]


def test_reads_and_writes_are_logged_with_ids_but_no_content(audited: AuditedMemory) -> None:
    mid = _exercise(audited)
    log = audited.audit_log(limit=100)
    ops = [e["operation"] for e in log]
    assert ops[:9] == ["add", "search", "get", "update", "history", "context", "get_all", "episodes", "get"]
    assert all(e["actor"] == "key:test" for e in log)
    assert log[1]["memory_ids"] == [mid] and log[1]["scope"]["user_id"] == "alice"
    assert log[8]["scope"]["user_id"] == "mallory" and log[8]["details"] == {"error": "NotFoundError"}
    raw = sqlite3.connect(_db(audited))
    rows = " ".join(str(r) for r in raw.execute("SELECT * FROM audit_log"))
    raw.close()
    assert SECRET not in rows and "green" not in rows
    assert [e["operation"] for e in read_audit(audited.memory.store, user_id="bob")] == ["add"]
    assert audited.verify_audit()["ok"]


def _tamper(db: Path, sql: str, *args: object) -> None:
    raw = sqlite3.connect(db)
    raw.execute(sql, args)
    raw.commit()
    raw.close()


@pytest.mark.parametrize("attack", ["change", "remove", "reorder", "insert"])
def test_tampering_with_the_stored_log_is_detected(audited: AuditedMemory, attack: str) -> None:
    _exercise(audited)
    db = _db(audited)
    assert verify_audit(audited.memory.store).ok
    if attack == "change":
        _tamper(db, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
    elif attack == "remove":
        _tamper(db, "DELETE FROM audit_log WHERE seq = 4")
    elif attack == "reorder":
        _tamper(db, "UPDATE audit_log SET seq = -seq WHERE seq IN (4, 5)")
        _tamper(db, "UPDATE audit_log SET seq = CASE seq WHEN -4 THEN 5 ELSE 4 END WHERE seq IN (-4, -5)")
    else:
        _tamper(db, "INSERT INTO audit_log SELECT 1000, at, actor, org_id, scope_key, operation, memory_ids, details,"
                    " prev_hash, hash FROM audit_log WHERE seq = 2")
    result = verify_audit(audited.memory.store)
    assert not result.ok
    assert result.problems and all(seq >= 3 for seq, _ in result.problems)


def test_a_recomputed_chain_is_caught_only_with_a_key_or_a_recorded_head(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    plain = secure_memory(f"sqlite:///{db}", embedder="hash", encrypt=False)
    _exercise(plain)  # type: ignore[arg-type]
    head = verify_audit(plain.memory.store)  # type: ignore[union-attr]
    _tamper(db, "DELETE FROM audit_log WHERE seq > 8")  # cutting off the newest entries leaves a valid chain
    assert verify_audit(plain.memory.store).ok  # type: ignore[union-attr]
    cut = verify_audit(plain.memory.store, expected_head=(head.head_seq, head.head_hash))  # type: ignore[union-attr]
    assert not cut.ok and "cut or rewritten" in cut.problems[-1][1]
    plain.close()


def test_keyed_chain_without_the_key_reports_unauthenticated_and_downgrades_fail(tmp_path: Path) -> None:
    key = generate_master_key()
    m = secure_memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", master_key=key)
    _exercise(m)  # type: ignore[arg-type]
    store = m.memory.store  # type: ignore[union-attr]
    no_key = verify_audit(store, codec=object())
    assert no_key.ok and no_key.unauthenticated == no_key.entries > 0
    # An attacker appends a plain-SHA entry (they cannot make a keyed one without the master key).
    Auditor(store, "attacker", codec=object()).record("get", org_id="default")
    downgraded = verify_audit(store)
    assert not downgraded.ok and "unkeyed entry after keyed" in downgraded.problems[0][1]
    m.close()


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    m = secure_memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", encrypt=False)
    other = Memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash")  # a second connection set, as another process

    def work(target: Memory, user: str) -> None:
        a = Auditor(target.store, user)
        for i in range(40):
            a.record("get", org_id="default", memory_ids=[f"{user}-{i}"])

    threads = [threading.Thread(target=work, args=(t, u)) for t, u in
               [(m.memory, "a"), (m.memory, "b"), (other, "c"), (other, "d")]]  # type: ignore[union-attr]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_audit(m.memory.store)  # type: ignore[union-attr]
    assert result.ok and result.entries == 160
    other.close()
    m.close()
