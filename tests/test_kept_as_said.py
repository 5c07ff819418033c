"""A replaced fact that was its whole message word for word leaves the message findable as said, when the
message said more than the change: the other things it told stay reachable, the old value reads as earlier.

Real MiniLM embedder, real text, public API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from memstrata import Memory

T1, T2 = "2025-02-03T18:00:00Z", "2025-11-20T19:00:00Z"
NOW = "2025-12-01T09:00:00Z"
FIRST = "Rent is £950 a month for my room in a terrace in Kirkstall with three flatmates, so money's tight."


def test_what_else_a_replaced_message_said_stays_findable(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": FIRST}], user_id=uid, conversation_id="s1", timestamp=T1)
    report = real_mem.add([{"role": "user", "content": "My rent is £1,020 a month now."}], user_id=uid,
                          conversation_id="s2", timestamp=T2)
    assert any(r["event"] == "SUPERSEDE" and r["memory"] == FIRST for r in report["results"]), report["results"]
    everything = real_mem.get_all(user_id=uid, include_superseded=True, limit=100)["results"]
    as_said = [m for m in everything if m["memory"] == FIRST]
    assert len(as_said) == 2, "the replaced fact, and the message kept as said"
    assert sorted(bool(m["superseded_by"]) for m in as_said) == [False, True]
    kept = next(m for m in as_said if not m["superseded_by"])
    assert kept["kind"] == "message" and kept["episode_ids"]
    # the report of the add that replaced it says so, and the later message itself is reported as a change
    said = next(r for r in report["results"] if r["id"] == kept["id"])
    assert said["event"] == "ADD" and said["reason"] == "kept_as_said"
    assert report["messages"][0]["outcome"] == "superseded"

    where = real_mem.search("Which area is my room in?", user_id=uid, limit=5, now=NOW)["results"]
    assert any("Kirkstall" in h["memory"] for h in where), [h["memory"] for h in where]
    rent = real_mem.search("How much is my rent?", user_id=uid, limit=5, now=NOW)["results"]
    assert "£1,020" in rent[0]["memory"], [h["memory"] for h in rent]
    assert all(h.get("revised_by") for h in rent if "£950" in h["memory"])


def test_a_message_that_said_only_the_change_is_not_kept(real_mem: Memory, uid: str) -> None:
    for text, when in (("My rent is £950 a month.", T1), ("My rent is £1,020 a month now.", T2)):
        real_mem.add([{"role": "user", "content": text}], user_id=uid, conversation_id=when, timestamp=when)
    everything = real_mem.get_all(user_id=uid, include_superseded=True, limit=100)["results"]
    old = [m for m in everything if "£950" in m["memory"]]
    assert old and all(m["superseded_by"] for m in old), [(m["memory"], m["superseded_by"]) for m in old]


def test_a_fact_that_is_its_whole_message_keeps_the_words_said(mem: Memory, uid: str) -> None:
    """Parsing reads "it's" as "it is"; a fact that is all its message says is kept in the user's words, once
    (no second, near-identical memory of the message beside it)."""
    said = "I drive a Vauxhall Corsa to the delivery office, it's about 15 minutes."
    mem.add([{"role": "user", "content": said}], user_id=uid, conversation_id="s1", timestamp=T1)
    everything = mem.get_all(user_id=uid, limit=100)["results"]
    assert [m["memory"] for m in everything] == [said], [(m["kind"], m["memory"]) for m in everything]
