"""A change announced without its new value is kept with the words that give it."""

from __future__ import annotations

import pytest

from memstrata.ingest.announcements import is_bare_announcement, with_what_follows


@pytest.mark.parametrize("text", [
    "I changed my major", "I see a new doctor now", "We moved!", "I got a new job!", "I switched banks.",
    "So I've finally got a new car", "we just moved", "I started a new job last week",
    "I finally replaced the old laptop", "I lost weight", "I got a raise", "I got promoted",
])
def test_announcements_without_a_value(text: str) -> None:
    assert is_bare_announcement(text)


@pytest.mark.parametrize("text", [
    "We moved to Leeds", "I switched to oat milk", "I have a new manager, Priya", "I got a new job at Monzo",
    "I have a dog", "Did you change your bank?", "I moved in with my boyfriend", "I bought 3 new plants",
    "My sister changed her major", "I changed my major to history because the maths modules were too hard",
    "I lost my keys", "I lost 5 kg", "I got promoted to team lead", "I got a raise of 3,000 a year",
])
def test_statements_that_say_more(text: str) -> None:
    assert not is_bare_announcement(text)


@pytest.mark.parametrize(("fact", "message", "expected"), [
    ("I see a new doctor now", "Also I see a new doctor now, Dr. Reynolds, since mine retired. He's nice.",
     "I see a new doctor now, Dr. Reynolds, since mine retired."),
    ("I changed my major", "so i changed my major, im doing computer science now. parents not thrilled.",
     "I changed my major, im doing computer science now."),
    ("We moved!", "also we moved! Maya and I are in the Junction now. Way more space.",
     "We moved! Maya and I are in the Junction now."),
    ("I switched banks.", "Big news: I switched banks. I'm with Starling now.",
     "I switched banks. I'm with Starling now."),
    ("I lost weight", "Guess what, I lost weight, I'm 71 kg now! Any ideas for a reward?",
     "I lost weight, I'm 71 kg now."),
])
def test_the_words_that_follow_are_kept(fact: str, message: str, expected: str) -> None:
    assert with_what_follows(fact, message) == expected


@pytest.mark.parametrize(("fact", "message"), [
    ("We moved!", "We moved! Any tips for unpacking?"),  # a question follows: it says nothing new
    ("I changed my major", "I changed my major, was that dumb?"),  # the rest of its sentence asks
    ("We moved!", "We moved!"),  # nothing follows
    ("I changed my major", "Something else entirely."),  # not in the message
])
def test_nothing_is_added_when_nothing_says_the_value(fact: str, message: str) -> None:
    assert with_what_follows(fact, message) == fact


@pytest.mark.parametrize(("text", "named"), [
    ("I switched from Octopus to OVO in December", ["Octopus"]),
    ("I left Bosch and joined Porsche in Weissach", ["Bosch"]),
    ("I'm doing Brisbane to Townsville now instead of Sydney.", ["Sydney"]),
    ("Doc took me off lisinopril because of the cough", ["lisinopril"]),
    ("I quit the bridge club in the autumn and joined the choir", ["bridge club"]),
    ("I switched my registration from the half to the full marathon", ["half"]),
    ("I love my job at Bosch", []),
    ("I went to Japan from April 15th to 22nd", []),  # a trip's dates
    ("We went from Paris to Rome by train", []),  # a journey, not a change
    ("I moved my shift from 9 to 5", []),
])
def test_the_old_value_a_change_names(text: str, named: list[str]) -> None:
    from memstrata.ingest.named_old import named_old_values

    assert named_old_values(text) == named


def test_instead_of_names_an_old_value_only_when_it_is_a_name() -> None:
    from memstrata.ingest.named_old import named_old_values

    assert named_old_values("Now I buy wine from Vini Bellini instead of Cantina Rossi.") == ["Cantina Rossi"]
    assert named_old_values("I've been choosing paper packaging instead of plastic.") == []
