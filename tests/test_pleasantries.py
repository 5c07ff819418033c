"""Pleasantries weigh little, lasting requests inside compound sentences are standing instructions, and a
changed value reads without the hedges said around it.

The classifiers run on plain text; the rest uses the real spaCy model, and the MiniLM embedder where ranking
is what is tested.
"""

from __future__ import annotations

import pytest

from memstrata import Memory
from memstrata.core.salience import LOW_IMPORTANCE, asks_assistant
from memstrata.ingest.candidate import Message
from memstrata.ingest.conflicts import clean_value
from memstrata.ingest.phatic import is_phatic
from memstrata.ingest.rules import RulesExtractor

PLEASANTRIES = [
    "Exciting! Where are you moving to?", "Great, consistency helps a lot.",
    "Congratulations on the move, and good luck with the project.", "You're welcome!",
    "Hello! How can I help you today?",
    "That's great news! How did the interview go?", "Sorry to hear that. How are you feeling?",
    "Glad I could help. Let me know if you need anything else.", "Enjoy your trip to Sintra!", "Got it.",
    "It is my pleasure. Enjoy your new hobby!", "My pleasure.",
]
CONTENT = [
    "Use tabs, not spaces.", "Have a look at the Oceanário in Lisbon.", "It's a good idea to pin the version.",
    "Great, here is a recipe: lentil soup with cumin, garlic and lemon.", "Good idea, but pin the version to 3.11.",
    "Have you considered Porto instead?", "Sure, I'd recommend the Time Out Market.", "The train leaves at 9:15.",
    "You could cache the responses in Redis with a TTL of an hour so repeated calls stay fast.",
    "Great question! Python's GIL means threads won't speed up CPU-bound work; use multiprocessing.",
    "It is a pleasure. Bonsai needs watering daily, so check the soil.",
]


@pytest.mark.parametrize("text", PLEASANTRIES)
def test_a_message_of_pleasantries_and_questions_back_says_nothing_of_its_own(text: str) -> None:
    assert is_phatic(text)


@pytest.mark.parametrize("text", CONTENT)
def test_advice_names_numbers_and_code_are_content(text: str) -> None:
    assert not is_phatic(text)


def test_a_long_reply_is_content_whatever_its_words() -> None:
    assert not is_phatic("Thanks! " * 40)


@pytest.mark.parametrize(("query", "asks"), [
    ("What did you say about my move?", True), ("What recipes did you recommend?", True),
    ("What was your advice on the flat?", True), ("Where do I live now?", False),
    ("What kind of food should you suggest to me?", False), ("What do I do on Tuesdays?", False),
])
def test_a_query_about_what_the_assistant_said(query: str, asks: bool) -> None:
    assert asks_assistant(query) is asks


@pytest.mark.parametrize(("value", "attribute", "clean"), [
    ("lisbon hopefully by march", "lives_in", "lisbon"),
    ("i currently live in berlin", "lives_in", "i live in berlin"),
    ("vegetarian now", "diet", "vegetarian"),
    ("i work at google since 2020", "job", "i work at google"),
    ("probably", "job", "probably"),  # nothing would be left: kept as said
    ("7KX-392", "plate", "7KX-392"),  # nothing to strip: not even normalised
    ("march 4", "birthday", "march 4"),  # a time is the value of a time attribute
    ("tuesday evening next week", "lesson_day", "tuesday evening next week"),
    ("i may move to porto", "lives_in", "i may move to porto"),  # "may" the verb is no month
])
def test_hedges_and_time_phrases_leave_the_value(value: str, attribute: str, clean: str) -> None:
    assert clean_value(value, attribute) == clean


@pytest.fixture(scope="module")
def rules() -> RulesExtractor:
    return RulesExtractor()


def _kinds(rules: RulesExtractor, text: str) -> list[tuple[str, str]]:
    return [(c.kind, c.text) for c in rules.extract([Message("user", text, 0)])]


@pytest.mark.parametrize(("text", "instruction", "fact"), [
    ("Also, I'm vegetarian now, so please suggest meat-free recipes from here on.",
     "Please suggest meat-free recipes from here on.", "vegetarian now"),
    ("I moved to Lisbon, and from now on please use Lisbon time for my meetings.",
     "From now on please use Lisbon time for my meetings.", "I moved to Lisbon"),
    ("I'm a vegetarian now, so from now on only suggest meat-free recipes.",
     "From now on only suggest meat-free recipes.", "I'm a vegetarian now"),
])
def test_a_lasting_request_after_a_statement_is_an_instruction(rules: RulesExtractor, text: str, instruction: str,
                                                               fact: str) -> None:
    found = _kinds(rules, text)
    assert ("instruction", instruction) in found, found
    facts = [t for k, t in found if k == "fact"]
    assert len(facts) == 1 and facts[0].endswith(fact), found  # the statement stays a fact, with no dangling "so"


@pytest.mark.parametrize("text", [
    "From here on out, use British spelling.", "Use metric units until further notice.",
    "In future, keep your answers short.", "Henceforth, write dates as day, month, year.",
    "For all future answers, use British spelling.",
])
def test_persistence_cues(rules: RulesExtractor, text: str) -> None:
    assert [k for k, _ in _kinds(rules, text)] == ["instruction"]


@pytest.mark.parametrize("text", ["In future, call me Sam.", "In future, be brief.", "Going forward, reply in German.",
                                  "From now on, reply in German.", "Henceforth, cite sources.",
                                  "Reply in Spanish from now on."])
def test_a_short_lasting_imperative_is_kept_whole(mem: Memory, uid: str, text: str) -> None:
    # no subject word, yet no fragment: an imperative is whole, and it must not be left as evidence only
    r = mem.add([{"role": "user", "content": text}], user_id=uid, timestamp="2026-01-14T10:00:00Z")
    assert r["messages"][0]["outcome"] == "kept", r["messages"]
    assert [x["memory"] for x in r["results"] if x["kind"] == "instruction"] == [text]


def test_a_lasting_imperative_inside_a_message_and_a_one_off_one(rules: RulesExtractor) -> None:
    found = _kinds(rules, "I moved to Berlin. From now on, use metric units.")
    assert ("instruction", "From now on, use metric units.") in found, found
    assert [k for k, _ in _kinds(rules, "Reply in German.")] == [], "no lasting cue: a one-off request"
    assert [k for k, _ in _kinds(rules, "From now on I walk to work.")] == ["fact"]


def test_a_one_off_request_after_a_statement_is_no_instruction(rules: RulesExtractor) -> None:
    found = _kinds(rules, "I'm vegetarian now, so please suggest a recipe for tonight.")
    assert [k for k, _ in found] == ["fact"], found


def test_a_pleasantry_is_kept_findable_but_ranks_and_packs_low(real_mem: Memory, uid: str) -> None:
    real_mem.add([
        {"role": "user", "content": "I'm moving from Berlin to Lisbon in March."},
        {"role": "assistant", "content": "Congratulations on the move! Where will you live in Lisbon?"},
        {"role": "user", "content": "In Alfama, near the castle."},
        {"role": "assistant", "content": "For the move itself, book a removal van at least three weeks ahead."},
    ], user_id=uid, conversation_id="c1", timestamp="2026-01-10T10:00:00Z")
    everything = real_mem.get_all(user_id=uid, limit=100)["results"]
    cheer = next(x for x in everything if x["memory"].startswith("Congratulations"))
    advice = next(x for x in everything if x["memory"].startswith("For the move itself"))
    assert cheer["importance"] < LOW_IMPORTANCE <= advice["importance"]

    # the question back repeats the query's words, yet the user's own statement ranks above it
    ranked = [h["memory"] for h in real_mem.search("Where will I live?", user_id=uid, limit=10)["results"]]
    said = next(i for i, t in enumerate(ranked) if t.startswith("I'm moving from Berlin"))
    assert said < next(i for i, t in enumerate(ranked) if t.startswith("Congratulations")), ranked
    said = real_mem.search("What did you say about my move?", user_id=uid, limit=3)["results"]
    assert any(h["memory"].startswith("Congratulations") for h in said), said

    ctx = real_mem.context("Tell me about the move to Lisbon.", user_id=uid, token_budget=400)
    assert "Lisbon" in ctx["text"] and "removal van" in ctx["text"]
    assert not any(i["memory"].startswith("Congratulations") for i in ctx["items"]), ctx["text"]  # (a reply
    # may still quote it as the question it answered)
    asked = real_mem.context("What did you say about my move?", user_id=uid, token_budget=400)
    assert any(i["memory"].startswith("Congratulations") for i in asked["items"]), asked["text"]


def test_a_name_the_user_just_said_is_not_the_assistants_own() -> None:
    question = "Where will you live in Lisbon?"
    assert not is_phatic(question)  # alone, a place named in a question may be a suggestion
    assert is_phatic(question, said="I'm moving to Lisbon in March.")


def test_a_clause_named_only_by_a_pronoun_is_no_fact_of_its_own(real_mem: Memory, uid: str) -> None:
    text = "My brother Simon is no help, he lives in Calgary and works in oil and gas."
    r = real_mem.add([{"role": "user", "content": text}], user_id=uid)
    kept = [real_mem.get(i, user_id=uid)["memory"] for i in r["messages"][0]["memory_ids"]]
    assert text in kept  # the message itself, as said
    assert not any(k.lower().startswith("he lives") for k in kept), kept
    hits = real_mem.search("Where does my brother Simon live?", user_id=uid, limit=3)["results"]
    assert any("Calgary" in h["memory"] and "Simon" in h["memory"] for h in hits)
    # a pronoun the message names stays a fact, with the name beside it
    r = real_mem.add([{"role": "user", "content": "My sister Anna lives in Porto. I will be closer to her."}],
                     user_id=uid)
    kept = [real_mem.get(i, user_id=uid)["memory"] for i in r["messages"][0]["memory_ids"]]
    assert "I will be closer to her (my sister Anna)." in kept


def test_there_is_named_by_the_place_said_before_it(real_mem: Memory, uid: str) -> None:
    from memstrata.ingest.evidence import resolve_pronouns

    said = "next weekend i'm heading to Nagpur for my cousin's wedding — i grew up there so it'll be hot."
    assert resolve_pronouns("I grew up there", said) == "I grew up there (Nagpur)"
    assert resolve_pronouns("I work there now", "I got an offer at Deloitte in March.") == "I work there (Deloitte) now"
    assert resolve_pronouns("there is nothing to do", "I moved to Leeds.") == "there is nothing to do"  # no place
    assert resolve_pronouns("It was lovely there", "We met in March.") == "It was lovely there"  # a month is no place
    r = real_mem.add([{"role": "user", "content": said}], user_id=uid, timestamp="2025-03-01T10:00:00Z")
    kept = [real_mem.get(i, user_id=uid)["memory"] for i in r["messages"][0]["memory_ids"]]
    assert not any(k.lower().rstrip(".") == "i grew up there" for k in kept), kept
    hits = real_mem.search("Where did I grow up?", user_id=uid, limit=3)["results"]
    assert "Nagpur" in hits[0]["memory"], [h["memory"] for h in hits]
