"""A later statement that names what it left behind ("switched from Virgin Media to Community Fibre", "sold
the Corsa") makes the earlier results that name it, where they answer the query, read as earlier.

End to end with the real MiniLM embedder on real text through the public API (SQLite and PostgreSQL); the
guards on the read-time stage itself with the real statement reader and vectors set by hand.
"""

from __future__ import annotations

import numpy as np

from memstrata import Memory
from memstrata.ingest.named_old import values_left_behind
from memstrata.ingest.statement_words import StatementWords
from memstrata.models import MemoryRecord, Scope
from memstrata.retrieve.left_behind import left_behind
from memstrata.retrieve.pipeline import Hit

T1, T2, NOW = "2024-02-10T19:00:00Z", "2024-09-03T08:00:00Z", "2024-12-01T09:00:00Z"
ASK = "Can you help me compare broadband deals? We're with Virgin Media at the moment and paying £62 a month for it."
REPLY = ("Virgin Media usually raises prices every April. Before you leave, ring Virgin Media's retentions team "
         "and ask for their best offer; mention cheaper fibre deals in your area.")
SWITCH = "We switched from Virgin Media to Community Fibre in the end, much better speeds."


def test_the_assistants_reply_about_the_old_provider_reads_as_earlier(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": ASK}, {"role": "assistant", "content": REPLY}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": SWITCH}], user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which broadband provider are we with?", user_id=uid, limit=5, now=NOW)["results"]
    texts = [h["memory"] for h in hits]
    assert texts[0] == SWITCH, texts
    reply = next(h for h in hits if h["memory"] == REPLY)
    assert reply["revised_by"] == hits[0]["id"], [(h["memory"][:40], h.get("revised_by")) for h in hits]


def test_a_question_about_then_is_left_alone(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": ASK}, {"role": "assistant", "content": REPLY}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": SWITCH}], user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which broadband provider were we with before?", user_id=uid, limit=5,
                           now=NOW)["results"]
    assert any(h["memory"] == REPLY for h in hits)
    assert not any(h.get("revised_by") for h in hits if h["memory"] == REPLY)


def test_values_left_behind_are_read_from_the_words_of_change() -> None:
    assert values_left_behind("update: sold the Corsa, got a used Yaris.") == ["Corsa"]
    assert values_left_behind("I finally ditched the Dell XPS and switched to a Framework 13") == ["Dell XPS"]
    assert values_left_behind("Tomas and I broke up in May, it was for the best.") == ["Tomas"]
    assert values_left_behind("We also moved from Halifax to Nationwide, better rate.") == ["Halifax"]
    assert values_left_behind("I left early today, the train was packed") == []
    assert values_left_behind("I sold 3 paintings at the fair") == []


# The stage itself: hits made by hand, the real reader, vectors chosen so that each case turns on one guard.
READER = StatementWords()
SCOPE = Scope(user_id="u")
Q = np.array([1.0, 0.0, 0.0], dtype=np.float32)


def _hit(text: str, at: float, role: str = "user", cos: float = 0.5) -> Hit:
    rec = MemoryRecord(id=f"m{abs(hash((text, at))) % 10**8}", scope=SCOPE, text=text, created_at=at,
                       updated_at=at, valid_from=at, source_role=role, kind="message")
    return Hit(rec, 1.0)


def _run(hits: list[Hit], cosines: list[float]) -> list[Hit]:
    vecs = {h.record.id: np.array([c, float(np.sqrt(1 - c * c)), 0.0], dtype=np.float32)
            for h, c in zip(hits, cosines, strict=True)}
    texts = {h.record.id: h.record.text for h in hits}
    return left_behind(hits, texts, vecs, None, Q, READER, 10)


def test_a_later_change_goes_above_what_it_left_behind() -> None:
    old = _hit("I bank with Halifax and pay a monthly fee for the account.", 100.0)
    new = _hit("We moved our current accounts from Halifax to Nationwide last month.", 5000.0)
    out = _run([old, new], [0.6, 0.5])
    assert out == [new, old]
    assert old.revised_by == new.record.id and "outdated" in old.stages


def test_someone_elses_change_a_question_or_an_earlier_change_leave_it_alone() -> None:
    old = _hit("I bank with Halifax and pay a monthly fee for the account.", 100.0)
    for text, at in (("My sister moved her account from Halifax to Nationwide.", 5000.0),
                     ("Should we move our accounts from Halifax to Nationwide?", 5000.0),
                     ("We moved our current accounts from Halifax to Nationwide last month.", 50.0)):
        new = _hit(text, at)
        out = _run([old, new], [0.6, 0.5])
        assert out == [old, new] and old.revised_by is None, text


def test_a_change_that_does_not_answer_the_query_leaves_it_alone() -> None:
    old = _hit("I bank with Halifax and pay a monthly fee for the account.", 100.0)
    new = _hit("We moved our current accounts from Halifax to Nationwide last month.", 5000.0)
    assert _run([old, new], [0.6, 0.3]) == [old, new]  # below 0.7 of the earlier answer's nearness
    assert old.revised_by is None


def test_the_value_must_be_named_where_the_earlier_result_answers_the_query() -> None:
    """ "Which climbing wall do I go to?": a message that names the Raleigh in another of its sentences is no
    answer that "I've switched from the Raleigh to an e-bike" outdates."""
    old = _hit("Evening! I'm a nurse in Sheffield and I cycle my old Raleigh to the hospital, which is a slog "
               "uphill. I also just joined The Depot climbing wall, the late sessions. My son is six so evenings "
               "are busy. Any tips for fitting it all in?", 100.0)
    new = _hit("I've switched from the Raleigh to an e-bike for the commute.", 5000.0)
    assert len(READER.sentences(old.record.text)) == 4

    def sentence(c: float) -> list[float]:
        return [c, float(np.sqrt(1 - c * c)), 0.0]

    for naming, marked in ((0.2, False), (0.6, True)):
        old.revised_by, old.stages = None, {}
        rows = [sentence(naming), sentence(0.6), sentence(0.1), sentence(0.1)]
        sentences = {old.record.id: np.array(rows, dtype=np.float32)}
        vecs = {old.record.id: np.array(sentence(0.6), dtype=np.float32),
                new.record.id: np.array(sentence(0.45), dtype=np.float32)}
        texts = {h.record.id: h.record.text for h in (old, new)}
        left_behind([old, new], texts, vecs, sentences, Q, READER, 10)
        assert (old.revised_by == new.record.id) is marked, naming
