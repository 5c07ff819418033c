"""A later statement that names another value of the same kind revises the earlier one, however far apart the
two sentences are: real MiniLM embedder, real text, public API, on SQLite and PostgreSQL; and the names and
figures a statement is read to say."""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import Memory
from memstrata.ingest.named_values import named_values
from memstrata.models import MemoryRecord, Scope
from memstrata.retrieve.pipeline import Hit
from memstrata.retrieve.revisions import newer_first

T1, T2 = "2025-04-02T09:00:00Z", "2025-11-20T19:00:00Z"
NOW = "2025-12-01T09:00:00Z"


@pytest.mark.parametrize("text,values", [
    ("I drive a Ford F-150 for work", ("Ford F-150",)),
    ("I took the Silverado in for new tires yesterday", ("Silverado",)),
    ("Dieter retired, reporting to Anke now", ("Dieter", "Anke")),
    ("Signed a lease in Arroios! €1,300 a month for a one-bed", ("Arroios", "€1,300")),
    ("After the holidays my alarm is set for 5:30", ("5:30",)),
    ("Also I do sean-nós dancing on Wednesday evenings", ("Wednesday",)),
    ("Honestly. Thanks so much, that helps a lot!", ()),
])
def test_the_names_and_figures_a_statement_says(text: str, values: tuple[str, ...]) -> None:
    assert named_values(text) == values


# Earlier statement, later one, the question: the two statements share no word of change and are far apart
# as sentences; their values are of one kind.
REVISED = [
    ("I drive a Ford F-150 for work, it's got 200k miles on it.",
     "I took the Silverado in for new tires yesterday, then grabbed lunch with my crew.",
     "What truck do I drive?", "F-150", "Silverado"),
    ("I teach Grade 4 at a school in Rondebosch.",
     "How do I pitch a fractions lesson for my Grade 6 class? They're a lively bunch.",
     "Which grade do I teach?", "Grade 4", "Grade 6"),
]
# Another name said later that is no answer to the question: nothing is revised.
LEFT_ALONE = [
    ("My manager Ishikawa wants the review done by Friday.", "We bought a Toyota Prius in October, it's very quiet.",
     "Who is my boss?", "Ishikawa"),
    ("I live in Milan with my partner.", "I visited Rome last weekend with friends, it was lovely.",
     "Where do I live?", "Milan"),
]


def _add(m: Memory, user: str, first: str, later: str) -> None:
    m.add([{"role": "user", "content": first}], user_id=user, conversation_id="s1", timestamp=T1)
    m.add([{"role": "user", "content": later}], user_id=user, conversation_id="s2", timestamp=T2)


@pytest.mark.parametrize("first,later,question,old,new", REVISED)
def test_a_later_value_of_the_same_kind_comes_first_and_revises_the_earlier(
        real_mem: Memory, uid: str, first: str, later: str, question: str, old: str, new: str) -> None:
    _add(real_mem, uid, first, later)
    hits = real_mem.search(question, user_id=uid, limit=5, now=NOW)["results"]
    assert new in hits[0]["memory"], [h["memory"] for h in hits]
    earlier = next(h for h in hits if old in h["memory"])
    assert earlier["revised_by"] == hits[0]["id"]
    # a question about the past keeps the plain order, and the earlier value is still found as it was
    past = real_mem.search(question.replace("do I", "did I use to"), user_id=uid, limit=5, now=NOW)["results"]
    assert not any("revised_by" in h for h in past)
    then = real_mem.search(question, user_id=uid, limit=5, as_of="2025-06-01T00:00:00Z")["results"]
    assert old in then[0]["memory"]


@pytest.mark.parametrize("first,later,question,old", LEFT_ALONE)
def test_a_later_name_that_answers_another_question_revises_nothing(real_mem: Memory, uid: str, first: str,
                                                                    later: str, question: str, old: str) -> None:
    _add(real_mem, uid, first, later)
    hits = real_mem.search(question, user_id=uid, limit=5, now=NOW)["results"]
    assert old in hits[0]["memory"], [h["memory"] for h in hits]
    assert not any("revised_by" in h for h in hits)


# The rule on hand-built hits: statement vectors in a plane (exact cosines), values with vectors of their own.

class _ValueReader:
    """States own for every statement; values are the capitalised words; their vectors are given."""

    # angles: Ford~Silverado cos 0.87, Ford~Prius 0.09, Ford~Tundra 0.5
    VALUES = {"Ford": 0.0, "Silverado": 30.0, "Prius": 85.0, "Tundra": -60.0}

    def states_own(self, text: str, slot_subject: str | None) -> bool:
        return True

    def one_off(self, text: str) -> bool:
        return False

    def tentative(self, text: str) -> bool:
        return False

    def marks_change(self, text: str) -> bool:
        return False

    def only_ended(self, text: str) -> bool:
        return False

    def echoes(self, text: str) -> bool:
        return False

    def named_values(self, text: str) -> list[str]:
        return [w for w in text.split() if w in self.VALUES]

    def value_vectors(self, values: list[str]) -> np.ndarray:
        return np.stack([_vec(self.VALUES[v]) for v in values])


def _hit(i: int, text: str, day: int, cosine: float) -> Hit:
    rec = MemoryRecord(id=f"m{i}", scope=Scope(user_id="u"), text=text, created_at=day * 86400.0,
                       updated_at=day * 86400.0, valid_from=day * 86400.0, source_role="user")
    return Hit(rec, cosine * 4, {"dense": cosine})


def _vec(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r)], dtype=np.float32)


QUERY = _vec(40.0)  # near Ford, Silverado and Prius (cos 0.77, 0.98, 0.71), away from Tundra (-0.17)


@pytest.mark.parametrize("later,cosine,revised", [
    ("took the Silverado in for tyres", 0.2, True),   # far from the earlier statement, a value of its kind
    ("took the Silverado in for tyres", 0.15, False),  # less than 0.35 as near the query as the earlier one
    ("took the Prius in for tyres", 0.3, False),       # its value is of another kind than the earlier one's
    ("took the Tundra in for tyres", 0.3, False),      # its value is of the kind, but far from the query
    ("took it in for tyres", 0.3, False),              # names no value
])
def test_rule_a_later_value_of_the_kind_revises(later: str, cosine: float, revised: bool) -> None:
    hits = [_hit(0, "I drive a Ford for work", 1, 0.5), _hit(1, later, 200, cosine)]
    vecs = {"m0": _vec(0), "m1": _vec(85)}  # the two statements: cosine 0.09, no pair by meaning
    out = newer_first(hits, vecs, _ValueReader(), "What truck do I drive?", 10, qvec=QUERY)
    assert (out[0].record.id == "m1") is revised
    assert (hits[0].revised_by == "m1") is revised
    # without the query's vector no value is read
    fresh = [_hit(0, "I drive a Ford for work", 1, 0.5), _hit(1, later, 200, cosine)]
    assert newer_first(fresh, vecs, _ValueReader(), "What truck do I drive?", 10)[0].record.id == "m0"


def test_the_assistants_reply_to_a_revised_statement_is_revised_with_it(real_mem: Memory, uid: str) -> None:
    real_mem.add([
        {"role": "user", "content": "I train at Anytime Fitness near the station before my shifts, any tips for a "
                                    "quick session?"},
        {"role": "assistant", "content": "Anytime Fitness is open all night, so a 40-minute full-body circuit fits "
                                         "well: squats, rows, push-ups and a short bike finisher."},
    ], user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([
        {"role": "user", "content": "The squat racks at Gold's Gym are much better, I lift there four mornings a "
                                    "week."},
        {"role": "assistant", "content": "Four mornings a week is plenty; keep one day for rest."},
    ], user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which gym do I go to?", user_id=uid, limit=10, now=NOW)["results"]
    assert "Gold's Gym" in hits[0]["memory"], [h["memory"] for h in hits]
    reply = next(h for h in hits if h["memory"].startswith("Anytime Fitness is open"))
    assert reply["revised_by"] and "Gold's Gym" in next(h["memory"] for h in hits if h["id"] == reply["revised_by"])
    assert hits.index(reply) >= 3  # below the current answers
    # the later reply names nothing of the earlier statement: it stays as it was
    assert not any("revised_by" in h for h in hits if h["memory"].startswith("Four mornings"))
