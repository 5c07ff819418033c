"""A question about the user is answered by what the user said of themselves: a request that only names its
topic ("Quick one about the car.") and a short thank-you that carries the assistant's words as its context
weigh less than a statement of the value.

The readers run on plain text; ranking uses the real MiniLM embedder through the public API.
"""

from __future__ import annotations

import pytest

from memstrata import Memory
from memstrata.ingest.statement_words import StatementWords

T1, T2 = "2025-03-02T09:00:00Z", "2025-09-14T19:00:00Z"
NOW = "2025-10-01T09:00:00Z"


@pytest.mark.parametrize("text,request_only", [
    ("hey! can you help me make a study schedule? i'm drowning", True),
    ("Hello! Quick one about the car.", True),
    ("hey. money question", True),
    ("I need help understanding my health insurance, deductibles confuse me.", True),
    ("Can you help me, I moved to Leeds and need a GP", False),   # names a place
    ("I need help with my 3 kids and their schedule", False),     # gives a number
    ("Hi, I'm starting the second year of a PhD", False),         # a statement
    ("I drive a Vauxhall Corsa to work", False),
])
def test_a_request_that_names_only_its_topic_states_nothing(text: str, request_only: bool) -> None:
    assert StatementWords().tentative(text) is request_only


@pytest.mark.parametrize("text,states", [
    ("The Octavia's boot fits two suitcases and a cooler, right?", True),   # a statement, then a short tag
    ("Dr Mensah said I need a filling on the upper left, is that a big deal?", True),
    ("My rent is 950, is that normal for Leith?", True),
    ("Is it worth it, given the cost?", False),                             # asks from the start
    ("If I moved to Cardiff, would my rent be cheaper?", False),             # supposes
    ("I was thinking of moving to Leeds, good idea?", False),                # only thinks of it
    ("Should I ask for 55k?", False),
])
def test_a_statement_with_a_short_question_after_it_still_states(text: str, states: bool) -> None:
    reader = StatementWords()
    assert reader.tentative(text) is not states and reader.states_own(text, None) is states


@pytest.mark.parametrize("text,echo", [
    ("thanks mate (in reply to: If you take a lot of photos, Google One is worth it.)", True),
    ("Lisbon (in reply to: Where are you moving to?)", False),  # it answers a question: its own words count
    ("I moved to Lisbon last week.", False),
])
def test_a_thank_you_carrying_the_assistants_words_echoes_them(text: str, echo: bool) -> None:
    assert StatementWords().echoes(text) is echo


def test_a_request_about_the_topic_does_not_outrank_what_the_user_has(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "My health insurance is with Cigna through work, on the basic plan."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Hey! I need help understanding my health insurance."},
                  {"role": "assistant", "content": "Of course. Which part is confusing: the deductible, the "
                                                   "copays or the network?"}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Who is my health insurance with?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Cigna" in hits[0]["memory"], [h["memory"] for h in hits]


def test_a_thank_you_does_not_answer_with_the_assistants_words(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "My phone is a Pixel 7 and the battery is fading."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "assistant", "content": "A new phone battery for that model costs around 90 pounds "
                                                   "at most repair shops, and it makes the phone feel new."},
                  {"role": "user", "content": "cheers, good to know"}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("What phone do I have?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Pixel 7" in hits[0]["memory"], [h["memory"] for h in hits]
    ranked = [h["memory"] for h in hits]
    thanks = next(i for i, t in enumerate(ranked) if t.startswith("cheers"))
    assert thanks > ranked.index(next(t for t in ranked if "Pixel 7" in t))
