"""Retention: policies per tier and category, legal holds, idempotent audited purges, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from memstrata import InvalidInputError, Memory
from memstrata.models import Scope
from memstrata.privacy.audit import read_audit, verify_audit
from memstrata.privacy.crypto import generate_master_key
from memstrata.privacy.gdpr import forget_user
from memstrata.privacy.retention import (
    hold_user,
    holds,
    parse_age,
    policies,
    release_user,
    remove_policy,
    run_retention,
    set_policy,
)
from memstrata.secure import secure_memory
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store

DAY = 86400.0


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


@pytest.fixture(params=["plain", "encrypted"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def master() -> str:
    return generate_master_key()


def _open(raw: RawStore, mode: str, master: str) -> Memory:
    m = secure_memory(raw.url, embedder="hash", audit=False, encrypt=mode == "encrypted", master_key=master)
    assert isinstance(m, Memory)
    return m


@pytest.fixture
def mem(raw: RawStore, mode: str, master: str) -> Iterator[Memory]:
    m = _open(raw, mode, master)
    yield m
    m.close()


def _texts(m: Memory, user: str) -> set[str]:
    return {x["memory"] for x in m.get_all(user_id=user, limit=1000, include_superseded=True)["results"]}


def _fill(m: Memory) -> None:
    for user in ("alice", "bob"):
        m.add(f"{user} has diabetes", user_id=user, infer=False, metadata={"tags": ["Health", "medical"]})
        m.add(f"{user} keeps contracts", user_id=user, infer=False, metadata={"category": "legal"})
        m.add(f"{user} likes jazz", user_id=user, infer=False, conversation_id="c1")
        m.add(f"{user} agent note", user_id=user, agent_id="bot", infer=False)


def _rows(m: Memory, user: str, agent: str | None = None) -> dict[str, int]:
    """The user's episodes, memories and history rows in one scope, counted by the store."""
    counts = m.store.stats(Scope.of(user_id=user, agent_id=agent))
    return {t: counts[t] for t in ("episodes", "memories", "history")}


def test_category_and_tier_policies_purge_what_expired_and_only_that(mem: Memory) -> None:
    _fill(mem)
    mem.add("other org fact", user_id="alice", org_id="acme", infer=False)
    set_policy(mem, "long_term", "90d", category="health")
    set_policy(mem, "long_term", "365d")
    set_policy(mem, "long_term", timedelta(days=3650), category="LEGAL")
    set_policy(mem, "episodic", 365 * DAY)
    now = time.time()

    report = run_retention(mem, now + 100 * DAY)  # only the health memories are past their age
    assert report["orgs"]["default"]["long_term"]["memories"] == 2
    assert "episodes" not in report["orgs"]["default"]["episodic"]
    assert _texts(mem, "alice") == {"alice keeps contracts", "alice likes jazz"}

    report = run_retention(mem, now + 400 * DAY)  # tier-wide year: jazz and agent notes go, legal stays
    counts = report["orgs"]["default"]
    assert counts["long_term"]["memories"] == 4 and counts["episodic"]["episodes"] == 8
    assert _texts(mem, "alice") == {"alice keeps contracts"}
    assert mem.get_all(user_id="bob", agent_id="bot")["results"] == []
    assert mem.episodes(user_id="alice")["results"] == []
    assert len(mem.get_all(user_id="alice", org_id="acme")["results"]) == 1  # no policy in that org
    assert mem.search("jazz", user_id="alice")["results"][0]["memory"] == "alice keeps contracts"


def test_retention_is_idempotent_and_audited(mem: Memory) -> None:
    _fill(mem)
    set_policy(mem, "long_term", "30d")
    set_policy(mem, "episodic", "30d")
    later = time.time() + 31 * DAY
    first = run_retention(mem, later)
    second = run_retention(mem, later)
    assert first["orgs"]["default"]["long_term"]["memories"] == 8
    assert first["orgs"]["default"]["episodic"]["episodes"] == 8
    assert second["orgs"]["default"] == {"long_term": {}, "episodic": {}}  # nothing left to delete
    log = read_audit(mem.store, limit=1000)
    purges = [e for e in log if e["operation"] == "retention.purge"]
    assert sum(len(e["memory_ids"]) for e in purges if e["details"]["tier"] == "long_term") == 8
    assert sum(len(e["memory_ids"]) for e in purges if e["details"]["tier"] == "episodic") == 8
    runs = [e for e in log if e["operation"] == "retention.run"]
    assert len(runs) == 2
    assert runs[0]["details"]["deleted"]["long_term"]["memories"] == 8
    assert runs[1]["details"]["deleted"] == {"long_term": {}, "episodic": {}}
    assert purges[-1]["seq"] < runs[0]["seq"]  # the second run purged nothing, so it logged no purge
    assert verify_audit(mem.store).ok


def test_a_held_user_is_not_purged_nor_erased_until_released(mem: Memory) -> None:
    _fill(mem)
    hold_user(mem, "alice", reason="case 2024-17")
    assert holds(mem)[0]["user_id"] == "alice"
    kept = _rows(mem, "alice")
    assert kept == {"episodes": 3, "memories": 3, "history": 3}
    set_policy(mem, "long_term", "1d")
    set_policy(mem, "episodic", "1d")
    set_policy(mem, "short_term", "1h")
    later = time.time() + 2 * DAY
    run_retention(mem, later)
    assert len(_texts(mem, "alice")) == 3 and _texts(mem, "bob") == set()
    assert len(mem.episodes(user_id="alice")["results"]) == 3
    assert _rows(mem, "alice") == kept and _rows(mem, "alice", "bot")["memories"] == 1
    assert _rows(mem, "bob") == {"episodes": 0, "memories": 0, "history": 0}
    with pytest.raises(InvalidInputError, match="legal hold"):
        forget_user(mem, "alice")
    assert release_user(mem, "alice") and not release_user(mem, "alice")
    run_retention(mem, later)
    assert _texts(mem, "alice") == set()
    assert _rows(mem, "alice") == {"episodes": 0, "memories": 0, "history": 0}
    assert _rows(mem, "alice", "bot") == {"episodes": 0, "memories": 0, "history": 0}


@pytest.mark.parametrize(("tier", "table"), [("long_term", "memories"), ("episodic", "episodes")])
def test_a_hold_placed_during_a_purge_keeps_the_held_users_rows(mem: Memory, tier: str, table: str) -> None:
    """The hold lands after the purge has picked its rows and before it deletes them: the purge must
    check the holds again where it deletes, so the held user keeps every row."""
    _fill(mem)
    set_policy(mem, tier, "1d")
    store: Any = mem.store
    scan = store._candidates
    picked: list[int] = []

    def scan_then_hold(*args: Any, **kwargs: Any) -> Any:
        found = scan(*args, **kwargs)
        if args[0] == table and not picked:
            picked.append(len(found))
            hold_user(mem, "alice", reason="subpoena")
        return found

    store._candidates = scan_then_hold
    try:
        report = run_retention(mem, time.time() + 2 * DAY)
    finally:
        del store._candidates
    assert picked == [8]  # both users' rows were picked before the hold
    assert report["orgs"]["default"][tier][table] == 4  # bob's only
    assert _rows(mem, "alice")[table] == 3 and _rows(mem, "alice", "bot")[table] == 1
    assert _rows(mem, "bob")[table] == 0
    if table == "memories":
        assert _rows(mem, "alice")["history"] == 3 and len(_texts(mem, "alice")) == 3
    purged = {e["scope"]["user_id"] for e in read_audit(mem.store, limit=1000) if e["operation"] == "retention.purge"}
    assert purged == {"bob"}

    assert release_user(mem, "alice")
    report = run_retention(mem, time.time() + 2 * DAY)
    assert report["orgs"]["default"][tier][table] == 4
    assert _rows(mem, "alice")[table] == 0 and _rows(mem, "alice", "bot")[table] == 0


def test_a_purge_keeps_search_and_the_scope_counters_consistent(
    mem: Memory, raw: RawStore, mode: str, master: str
) -> None:
    health = [f"checkup {i}: blood sugar reading" for i in range(6)]
    others = [f"likes jazz record number {i}" for i in range(4)]
    for text in health:
        mem.add(text, user_id="alice", infer=False, metadata={"category": "health"})
    for text in others:
        mem.add(text, user_id="alice", infer=False)
    mem.add("bob checkup: blood sugar", user_id="bob", infer=False, metadata={"category": "health"})
    key = Scope.of(user_id="alice").key
    vectors_before = raw.sql("SELECT count(*) FROM memory_vectors WHERE scope_key = ?", (key,))[0][0]
    assert vectors_before == 10
    assert {r["memory"] for r in mem.search("blood sugar checkup", user_id="alice", limit=20)["results"]} >= set(health)
    assert mem.store.stats(Scope.of(user_id="alice"))["memories"] == 10

    set_policy(mem, "long_term", "1d", category="health")
    report = run_retention(mem, time.time() + 2 * DAY)
    assert report["orgs"]["default"]["long_term"]["memories"] == 7
    assert report["orgs"]["default"]["long_term"]["memory_vectors"] == 7

    found = {r["memory"] for r in mem.search("blood sugar checkup", user_id="alice", limit=20)["results"]}
    assert not found & set(health) and found <= set(others)
    assert {r["memory"] for r in mem.search("jazz record", user_id="alice", limit=20)["results"]} == set(others)
    assert _texts(mem, "alice") == set(others) and _texts(mem, "bob") == set()
    assert mem.search("blood sugar", user_id="bob")["results"] == []
    stats = mem.store.stats(Scope.of(user_id="alice"))
    assert stats["memories"] == 4 and stats["history"] == 4
    assert raw.sql("SELECT count(*) FROM memory_vectors WHERE scope_key = ?", (key,))[0][0] == 4
    if raw.backend == "postgres":
        # PostgresStore keeps per-scope counters (kNN path choice, BM25 statistics): the purge must move them.
        assert stats["vectors"] == 4
        counters = raw.sql("SELECT vectors, docs, doc_len FROM scope_counts WHERE scope_key = ?", (key,))
        actual = raw.sql("SELECT count(*), coalesce(sum(fts_len), 0) FROM memories WHERE scope_key = ?", (key,))
        assert counters == [(4, actual[0][0], actual[0][1])]
        bob = raw.sql("SELECT vectors, docs, doc_len FROM scope_counts WHERE scope_key = ?",
                      (Scope.of(user_id="bob").key,))
        assert bob == [(0, 0, 0)]
    else:
        assert "vectors" not in stats  # SQLite counts nothing per scope; its in-process index is dropped instead

    # A second store object (another process on the same database) sees the same state.
    again = _open(raw, mode, master)
    try:
        assert _texts(again, "alice") == set(others)
        assert {r["memory"] for r in again.search("blood sugar checkup", user_id="alice", limit=20)["results"]} \
            <= set(others)
    finally:
        again.close()


def test_short_term_retention_clears_idle_conversations(mem: Memory) -> None:
    mem.add("hello there", user_id="alice", conversation_id="old", infer=False)
    set_policy(mem, "short_term", "2h")
    assert run_retention(mem)["orgs"]["default"]["short_term"]["conversations"] == 0
    assert mem.short_term.recent(mem._scope("alice", None, None, None), "old")
    report = run_retention(mem, time.time() + 3 * 3600)
    assert report["orgs"]["default"]["short_term"]["conversations"] == 1
    assert mem.short_term.recent(mem._scope("alice", None, None, None), "old") == []
    assert run_retention(mem, time.time() + 3 * 3600)["orgs"]["default"]["short_term"]["conversations"] == 0


def test_setting_a_policy_again_replaces_it(mem: Memory, raw: RawStore) -> None:
    set_policy(mem, "long_term", "30d", category="health")
    set_policy(mem, "long_term", "400d")
    set_policy(mem, "long_term", "60d", category="Health")  # the same category, case-folded
    set_policy(mem, "long_term", "500d")  # the tier-wide one (no category) is replaced too
    set_policy(mem, "long_term", "10d", org_id="acme")  # another org: a policy of its own
    got = [(p["tier"], p["category"], p["max_age_days"]) for p in policies(mem, "default")]
    assert got == [("long_term", None, 500.0), ("long_term", "health", 60.0)]
    assert raw.sql("SELECT count(*) FROM retention_policies WHERE org_id = 'default'")[0][0] == 2
    assert [p["max_age_days"] for p in policies(mem, "acme")] == [10.0]
    # The replaced ages are the ones enforced: a 45-day-old health memory outlives the old 30-day policy.
    mem.add("alice has diabetes", user_id="alice", infer=False, metadata={"category": "health"})
    assert run_retention(mem, time.time() + 45 * DAY)["orgs"]["default"]["long_term"] == {}
    assert run_retention(mem, time.time() + 61 * DAY)["orgs"]["default"]["long_term"]["memories"] == 1
    assert remove_policy(mem, "long_term", category="HEALTH")
    assert [p["category"] for p in policies(mem, "default")] == [None]
    assert remove_policy(mem, "long_term") and not remove_policy(mem, "long_term")
    assert policies(mem, "default") == []


def test_policy_management_and_bad_input(mem: Memory) -> None:
    set_policy(mem, "episodic", "30d", org_id="acme")
    set_policy(mem, "episodic", "60d", org_id="acme")  # replaces, not a second policy
    assert [(p["tier"], p["max_age_days"]) for p in policies(mem, "acme")] == [("episodic", 60.0)]
    assert remove_policy(mem, "episodic", org_id="acme") and policies(mem) == []
    assert parse_age("12h") == 43200 and parse_age("1y") == 365 * DAY and parse_age(5) == 5.0
    for bad in ("soon", -1, 0, True):
        with pytest.raises(InvalidInputError):
            parse_age(bad)
    with pytest.raises(InvalidInputError, match="tier"):
        set_policy(mem, "forever", "1d")
    with pytest.raises(InvalidInputError, match="short-term"):
        set_policy(mem, "short_term", "1d", category="health")
    with pytest.raises(InvalidInputError, match="reason"):
        hold_user(mem, "alice", reason=" ")
    assert policies(mem) == [] and holds(mem) == []  # bad input wrote nothing
