"""The names and figures a statement is read to say, and what they are for: the assistant's reply to a statement
since revised, naming what that statement named, is revised with it (real MiniLM embedder, real text, public API,
on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from memstrata import Memory
from memstrata.ingest.named_values import named_values

T1, T2 = "2025-04-02T09:00:00Z", "2025-11-20T19:00:00Z"
NOW = "2025-12-01T09:00:00Z"


@pytest.mark.parametrize("text,values", [
    ("I drive a Ford F-150 for work", ("Ford F-150",)),
    ("I took the Silverado in for new tires yesterday", ("Silverado",)),
    ("Dieter retired, reporting to Anke now", ("Dieter", "Anke")),
    ("Signed a lease in Arroios! €1,300 a month for a one-bed", ("Arroios", "€1,300")),
    ("After the holidays my alarm is set for 5:30", ("5:30",)),
    ("My rent in Phibsborough is €1,650 a month", ("Phibsborough", "€1,650")),
    ("Also I do sean-nós dancing on Wednesday evenings", ("Wednesday",)),
    ("Honestly. Thanks so much, that helps a lot!", ()),
])
def test_the_names_and_figures_a_statement_says(text: str, values: tuple[str, ...]) -> None:
    assert named_values(text) == values


# Another name said later, that answers another question: nothing is revised.
LEFT_ALONE = [
    ("My manager Ishikawa wants the review done by Friday.", "We bought a Toyota Prius in October, it's very quiet.",
     "Who is my boss?", "Ishikawa"),
    ("I live in Milan with my partner.", "I visited Rome last weekend with friends, it was lovely.",
     "Where do I live?", "Milan"),
]


def _add(m: Memory, user: str, first: str, later: str) -> None:
    m.add([{"role": "user", "content": first}], user_id=user, conversation_id="s1", timestamp=T1)
    m.add([{"role": "user", "content": later}], user_id=user, conversation_id="s2", timestamp=T2)


@pytest.mark.parametrize("first,later,question,old", LEFT_ALONE)
def test_a_later_name_that_answers_another_question_revises_nothing(real_mem: Memory, uid: str, first: str,
                                                                    later: str, question: str, old: str) -> None:
    _add(real_mem, uid, first, later)
    hits = real_mem.search(question, user_id=uid, limit=5, now=NOW)["results"]
    assert old in hits[0]["memory"], [h["memory"] for h in hits]
    assert not any("revised_by" in h for h in hits)


def test_the_assistants_reply_to_a_revised_statement_is_revised_with_it(real_mem: Memory, uid: str) -> None:
    real_mem.add([
        {"role": "user", "content": "I train at Anytime Fitness near the station before my shifts, any tips for a "
                                    "quick session?"},
        {"role": "assistant", "content": "Anytime Fitness is open all night, so a 40-minute full-body circuit fits "
                                         "well: squats, rows, push-ups and a short bike finisher."},
        {"role": "user", "content": "It gets crowded at six though."},
        {"role": "assistant", "content": "If Anytime Fitness gets crowded, Gold's Gym across the road is quieter "
                                         "at six."},
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
    # a reply that names the later value too, and the later reply, stay as they were
    both = next(h for h in hits if h["memory"].startswith("If Anytime Fitness gets crowded"))
    assert "revised_by" not in both
    assert not any("revised_by" in h for h in hits if h["memory"].startswith("Four mornings"))
