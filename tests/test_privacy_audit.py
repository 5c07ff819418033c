"""The audit log: every call recorded without content, and any edit to the stored chain detected, on SQLite
and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from memstrata import Memory, NotFoundError
from memstrata.privacy.audit import Auditor, read_audit, verify_audit
from memstrata.privacy.crypto import generate_master_key
from memstrata.secure import AuditedMemory, secure_memory
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store

SECRET = "wombatlantern"


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


@pytest.fixture(params=["plain", "encrypted"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def master() -> str:
    return generate_master_key()


def _open(raw: RawStore, mode: str, master: str, *, audit: bool = True) -> Memory | AuditedMemory:
    return secure_memory(raw.url, embedder="hash", encrypt=mode == "encrypted", master_key=master,
                         actor="key:test", audit=audit)


@pytest.fixture
def audited(raw: RawStore, mode: str, master: str) -> Iterator[AuditedMemory]:
    m = _open(raw, mode, master)
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


def test_reads_and_writes_are_logged_with_ids_but_no_content(audited: AuditedMemory, raw: RawStore) -> None:
    mid = _exercise(audited)
    log = audited.audit_log(limit=100)
    ops = [e["operation"] for e in log]
    assert ops[:9] == ["add", "search", "get", "update", "history", "context", "get_all", "episodes", "get"]
    assert all(e["actor"] == "key:test" for e in log)
    assert log[1]["memory_ids"] == [mid] and log[1]["scope"]["user_id"] == "alice"
    assert log[8]["scope"]["user_id"] == "mallory" and log[8]["details"] == {"error": "NotFoundError"}
    rows = " ".join(str(r) for r in raw.sql("SELECT * FROM audit_log"))
    assert mid in rows and "key:test" in rows  # the probe reads the real rows
    assert SECRET not in rows and "green" not in rows and "blue" not in rows
    assert [e["operation"] for e in read_audit(audited.memory.store, user_id="bob")] == ["add"]
    assert audited.verify_audit()["ok"]


@pytest.mark.parametrize("attack", ["change", "erase_ids", "remove", "reorder", "insert"])
def test_tampering_with_the_stored_log_is_detected(audited: AuditedMemory, raw: RawStore, attack: str) -> None:
    _exercise(audited)
    assert verify_audit(audited.memory.store).ok
    if attack == "change":
        raw.sql("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
    elif attack == "erase_ids":  # hide which record was read
        raw.sql("UPDATE audit_log SET memory_ids = '[]' WHERE seq = 3")
    elif attack == "remove":
        raw.sql("DELETE FROM audit_log WHERE seq = 4")
    elif attack == "reorder":
        raw.sql("UPDATE audit_log SET seq = -seq WHERE seq IN (4, 5)")
        raw.sql("UPDATE audit_log SET seq = CASE seq WHEN -4 THEN 5 ELSE 4 END WHERE seq IN (-4, -5)")
    else:
        raw.sql("INSERT INTO audit_log SELECT 1000, at, actor, org_id, scope_key, operation, memory_ids, details,"
                " prev_hash, hash FROM audit_log WHERE seq = 2")
    result = verify_audit(audited.memory.store)
    assert not result.ok
    assert result.problems and all(seq >= 3 for seq, _ in result.problems)
    first = min(seq for seq, _ in result.problems)
    assert first == {"change": 3, "erase_ids": 3, "remove": 5, "reorder": 4, "insert": 1000}[attack]


def test_a_recomputed_chain_is_caught_only_with_a_key_or_a_recorded_head(raw: RawStore) -> None:
    plain = secure_memory(raw.url, embedder="hash", encrypt=False)
    assert isinstance(plain, AuditedMemory)
    _exercise(plain)
    head = verify_audit(plain.memory.store)
    assert head.entries > 8
    raw.sql("DELETE FROM audit_log WHERE seq > 8")  # cutting off the newest entries leaves a valid chain
    assert verify_audit(plain.memory.store).ok
    cut = verify_audit(plain.memory.store, expected_head=(head.head_seq, head.head_hash))
    assert not cut.ok and "cut or rewritten" in cut.problems[-1][1]
    plain.close()


def test_keyed_chain_without_the_key_reports_unauthenticated_and_downgrades_fail(raw: RawStore) -> None:
    m = secure_memory(raw.url, embedder="hash", master_key=generate_master_key())
    assert isinstance(m, AuditedMemory)
    _exercise(m)
    store = m.memory.store
    assert verify_audit(store).keyed == verify_audit(store).entries
    no_key = verify_audit(store, codec=object())
    assert no_key.ok and no_key.unauthenticated == no_key.entries > 0
    # An attacker appends a plain-SHA entry (they cannot make a keyed one without the master key).
    Auditor(store, "attacker", codec=object()).record("get", org_id="default")
    downgraded = verify_audit(store)
    assert not downgraded.ok and "unkeyed entry after keyed" in downgraded.problems[0][1]
    m.close()


def test_concurrent_appends_keep_one_chain(raw: RawStore, mode: str, master: str) -> None:
    """Threads of two store objects (two connection pools, as two server processes would have) append at
    once: one chain, seqs 1..N with no gap, no two entries after the same predecessor."""
    first = _open(raw, mode, master, audit=False)
    second = _open(raw, mode, master, audit=False)  # opened before any entry exists: both race from genesis
    assert isinstance(first, Memory) and isinstance(second, Memory)
    per_thread, workers = 30, [(first, "a"), (first, "b"), (first, "c"), (second, "d"), (second, "e"), (second, "f")]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def work(target: Memory, actor: str) -> None:
        try:
            auditor = Auditor(target.store, actor)
            start.wait()
            for i in range(per_thread):
                auditor.record("get", org_id="default", memory_ids=[f"{actor}-{i}"])
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=w) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = per_thread * len(workers)
    for store in (first.store, second.store):
        result = verify_audit(store)
        assert result.ok, result.problems
        assert result.entries == total and result.head_seq == total
        assert result.keyed == (total if mode == "encrypted" else 0)
    seqs = [r[0] for r in raw.sql("SELECT seq FROM audit_log ORDER BY seq")]
    assert seqs == list(range(1, total + 1))
    assert raw.sql("SELECT count(DISTINCT prev_hash), count(DISTINCT hash) FROM audit_log") == [(total, total)]
    by_actor = {}
    for e in read_audit(first.store, limit=total + 1):
        by_actor.setdefault(e["actor"], []).append(e["memory_ids"][0])
    assert by_actor == {a: [f"{a}-{i}" for i in range(per_thread)] for _, a in workers}  # each in its order
    second.close()
    first.close()
