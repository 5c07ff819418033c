"""Retention: policies per tier and category, legal holds, idempotent audited purges."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from memstrata import InvalidInputError, Memory
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

DAY = 86400.0


@pytest.fixture(params=["plain", "encrypted"])
def mem(request: pytest.FixtureRequest, tmp_path: Path) -> Memory:
    m = secure_memory(f"sqlite:///{tmp_path / 'm.db'}", embedder="hash", audit=False,
                      encrypt=request.param == "encrypted", master_key=generate_master_key())
    assert isinstance(m, Memory)
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
    later = time.time() + 31 * DAY
    first = run_retention(mem, later)
    second = run_retention(mem, later)
    assert first["orgs"]["default"]["long_term"]["memories"] == 8
    assert second["orgs"]["default"]["long_term"] == {}
    log = read_audit(mem.store, limit=1000)
    purges = [e for e in log if e["operation"] == "retention.purge"]
    assert sum(len(e["memory_ids"]) for e in purges) == 8
    assert [e["operation"] for e in log].count("retention.run") == 2
    assert verify_audit(mem.store).ok


def test_a_held_user_is_not_purged_nor_erased_until_released(mem: Memory) -> None:
    _fill(mem)
    hold_user(mem, "alice", reason="case 2024-17")
    assert holds(mem)[0]["user_id"] == "alice"
    set_policy(mem, "long_term", "1d")
    set_policy(mem, "episodic", "1d")
    set_policy(mem, "short_term", "1h")
    later = time.time() + 2 * DAY
    run_retention(mem, later)
    assert len(_texts(mem, "alice")) == 3 and _texts(mem, "bob") == set()
    assert len(mem.episodes(user_id="alice")["results"]) == 3
    with pytest.raises(InvalidInputError, match="legal hold"):
        forget_user(mem, "alice")
    assert release_user(mem, "alice") and not release_user(mem, "alice")
    run_retention(mem, later)
    assert _texts(mem, "alice") == set()


def test_short_term_retention_clears_idle_conversations(mem: Memory) -> None:
    mem.add("hello there", user_id="alice", conversation_id="old", infer=False)
    set_policy(mem, "short_term", "2h")
    assert run_retention(mem)["orgs"]["default"]["short_term"]["conversations"] == 0
    assert mem.short_term.recent(mem._scope("alice", None, None, None), "old")
    report = run_retention(mem, time.time() + 3 * 3600)
    assert report["orgs"]["default"]["short_term"]["conversations"] == 1
    assert mem.short_term.recent(mem._scope("alice", None, None, None), "old") == []
    assert run_retention(mem, time.time() + 3 * 3600)["orgs"]["default"]["short_term"]["conversations"] == 0


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
