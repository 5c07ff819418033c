"""Changing facts: new versions supersede old ones without erasing them, under each conflict policy."""

from __future__ import annotations

import pytest

from memstrata import IngestConfig, InvalidInputError, Memory, NotFoundError


def _mem(tmp_path, policy: str) -> Memory:  # type: ignore[no-untyped-def]
    return Memory(f"sqlite:///{tmp_path / f'{policy}.db'}", embedder="hash",
                  ingest=IngestConfig(conflict_policy=policy))


def _move(m: Memory) -> tuple[str, str]:
    old = m.add("I live in Berlin.", user_id="a", timestamp="2025-01-10T09:00:00Z")["results"][0]["id"]
    r = m.add("I live in Lisbon.", user_id="a", timestamp="2026-03-01T09:00:00Z")  # not said as a change
    new = next(x["id"] for x in r["results"] if x["event"] == "ADD")
    return old, new


def test_latest_wins_supersedes_and_keeps_the_old_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _mem(tmp_path, "latest_wins") as m:
        old, new = _move(m)
        old_rec, new_rec = m.get(old, user_id="a"), m.get(new, user_id="a")
        assert old_rec["superseded_by"] == new and old_rec["valid_to"].startswith("2026-03-01")
        assert new_rec["valid_to"] is None and new_rec["source"]["role"] == "user"
        assert "supersedes" in new_rec["confidence_reason"]
        current = [x["id"] for x in m.search("where do I live?", user_id="a")["results"]]
        assert new in current and old not in current
        then = [x["id"] for x in m.search("where do I live?", user_id="a", as_of="2025-06-01T00:00:00Z")["results"]]
        assert then == [old]
        assert [e["event"] for e in m.history(old, user_id="a")] == ["ADD", "SUPERSEDE"]
        assert m.conflicts(user_id="a")["results"] == []  # the policy settled it: nothing waits for a person
        (conflict,) = m.conflicts(user_id="a", status="resolved")["results"]
        assert (conflict["subject"], conflict["attribute"], conflict["old_value"], conflict["new_value"]) == (
            "user", "lives_in", "berlin", "lisbon")
        assert conflict["policy"] == "latest_wins" and conflict["resolution"] == "policy:keep_new"


def test_resolving_keep_old_restores_the_old_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _mem(tmp_path, "latest_wins") as m:
        old, new = _move(m)
        cid = m.conflicts(user_id="a", status="all")["results"][0]["id"]
        out = m.resolve_conflict(cid, keep="old", user_id="a")
        assert out["status"] == "resolved" and out["resolution"] == "keep_old"
        assert m.get(old, user_id="a")["valid_to"] is None
        assert m.get(new, user_id="a")["superseded_by"] == old
        assert m.conflicts(user_id="a")["results"] == []
        assert len(m.conflicts(user_id="a", status="resolved")["results"]) == 1
        with pytest.raises(InvalidInputError, match="already resolved"):
            m.resolve_conflict(cid, keep="new", user_id="a")
        with pytest.raises(NotFoundError):
            m.resolve_conflict(cid, keep="new", user_id="b")


def test_keep_both_and_manual_leave_both_current_until_resolved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for policy in ("keep_both", "manual"):
        with _mem(tmp_path, policy) as m:
            old, new = _move(m)
            assert m.get(old, user_id="a")["valid_to"] is None
            current = {x["id"] for x in m.get_all(user_id="a")["results"]}
            assert {old, new} <= current
            (conflict,) = m.conflicts(user_id="a", status="all")["results"]
            assert conflict["policy"] == policy
            m.resolve_conflict(conflict["id"], keep="new", user_id="a")
            assert m.get(old, user_id="a")["superseded_by"] == new


def test_same_value_again_is_a_merge_not_a_conflict(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _mem(tmp_path, "latest_wins") as m:
        first = m.add("I live in Berlin.", user_id="a")["results"][0]
        again = m.add("I live in Berlin.", user_id="a")["results"][0]
        assert again["event"] == "MERGE" and again["id"] == first["id"]
        assert m.conflicts(user_id="a")["results"] == []


def test_third_parties_do_not_conflict_with_the_user(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _mem(tmp_path, "latest_wins") as m:
        m.add("I live in Berlin.", user_id="a")
        m.add("My boss lives in Paris.", user_id="a")
        assert m.conflicts(user_id="a")["results"] == []
        assert len(m.get_all(user_id="a")["results"]) == 2


def test_schedule_change_supersedes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _mem(tmp_path, "latest_wins") as m:
        m.add("The team meeting is on Thursday.", user_id="a")
        m.add("The team meeting moved to Friday.", user_id="a")
        current = [x["memory"] for x in m.get_all(user_id="a")["results"]]
        assert current == ["The team meeting moved to Friday."]
        assert len(m.get_all(user_id="a", include_superseded=True)["results"]) == 2


def test_low_importance_is_kept_as_evidence_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _mem(tmp_path, "latest_wins") as m:
        for text in ("thanks!", "ok", "haha nice", "Good morning!"):
            r = m.add(text, user_id="a")
            assert [x["kind"] for x in r["results"]] == ["message"] and len(r["episodes"]) == 1
            (report,) = r["messages"]
            assert report["outcome"] == "archived" and report["reason"] == "small_talk"
        assert {x["kind"] for x in m.get_all(user_id="a")["results"]} == {"message"}
        assert len(m.episodes(user_id="a")["results"]) == 4
        assert {e["extraction_status"] for e in m.episodes(user_id="a")["results"]} == {"skipped"}
        kept = m.add("Remember that my gate code is 4512", user_id="a")["results"]
        assert kept and "4512" in kept[0]["memory"]
