"""The default add keeps whole facts, loses no statement and replaces every kind of fact.

Real MiniLM embedder, real text, public API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memstrata import IngestConfig, Memory

T1, T2 = "2025-09-10T10:00:00Z", "2026-01-20T18:00:00Z"

# kind: (first statement, later statement, question, old value, new value)
UPDATES = {
    "job": ("I work as a data analyst at Stripe.", "I started a new job at Intercom last week.",
            "Where do I work?", "Stripe", "Intercom"),
    "manager": ("My manager is Karen Li.", "After the reorg I report to Marcus Bell.", "Who is my manager?",
                "Karen", "Marcus"),
    "residence": ("I live in Hackney.", "We moved to Walthamstow last month.", "Where do I live?",
                  "Hackney", "Walthamstow"),
    "schedule": ("My dentist appointment is on Tuesday at 9am.", "The dentist moved it, the appointment is on "
                 "Thursday at 2pm now.", "When is my dentist appointment?", "Tuesday", "Thursday"),
    "preference": ("I love spicy food, the hotter the better.", "Since the ulcer I can't eat spicy food anymore.",
                   "Do I like spicy food?", "love spicy", "anymore"),
    "diet": ("I'm vegan.", "I've started eating fish again, so I'm pescatarian these days.", "What is my diet?",
             "vegan.", "pescatarian"),
    "sold": ("I drive a 2014 Ford Fiesta.", "I sold the Fiesta and bought a Kia Niro.", "What car do I drive?",
             "2014 Ford Fiesta", "Niro"),
    "phone": ("I use an iPhone 12.", "My phone died so I'm on a Pixel 8 now.", "What phone do I use?",
              "iPhone", "Pixel"),
    "weight": ("I weigh 92 kg.", "Progress update: I weigh 87 kg.", "How much do I weigh?", "92", "87"),
    "rent": ("My rent is 950 pounds a month.", "The landlord put the rent up to 1,040 pounds.",
             "How much rent do I pay?", "950", "1,040"),
    "salary": ("I earn 41k a year as a junior designer.", "Got the raise, my salary is 46k now.",
               "What is my salary?", "41k", "46k"),
    "count": ("I have one cat, a tabby called Biscuit.", "We adopted a second cat, so now we have two cats.",
              "How many cats do I have?", "one cat", "two cats"),
    "relationship": ("My boyfriend Tom and I have been together two years.", "Tom and I broke up, I'm seeing "
                     "Marcus now.", "Who am I dating?", "Tom and I have been", "Marcus"),
    "plan_dropped": ("I'm signed up for the Berlin half marathon in April.", "I dropped out of the Berlin half "
                     "marathon because of a knee injury.", "Am I running the Berlin half marathon?",
                     "signed up", "dropped out"),
    "studies": ("I'm doing a master's in data science at Edinburgh.", "I gave up the data science master's, I'm "
                "studying nursing at Napier now.", "What am I studying?", "master's in data science", "nursing"),
    "dose": ("I take 50mg of sertraline every morning.", "The GP upped my sertraline to 100mg last week.",
             "What dose of sertraline do I take?", "50mg", "100mg"),
    "gym_days": ("I go to the gym on Mondays and Thursdays.", "I switched my gym days to Tuesdays and Saturdays.",
                 "Which days do I go to the gym?", "Mondays", "Tuesdays"),
}


@pytest.fixture
def reframing_mem(store_url: str, minilm) -> Iterator[Memory]:  # type: ignore[no-untyped-def]
    """The real embedder with updates without a family switched on (``IngestConfig.reframe_updates``)."""
    m = Memory(store_url, embedder=minilm, ingest=IngestConfig(reframe_updates=True))
    yield m
    m.close()


def _said(m: Memory, uid: str, old: str, new: str) -> None:
    m.add(old, user_id=uid, timestamp=T1)
    m.add(new, user_id=uid, timestamp=T2)


def _new_value_current(m: Memory, uid: str, question: str, old_value: str, new_value: str) -> list[dict]:
    """The new value answers first, the old one is not shown as current, and it is kept as superseded
    (with ``valid_to``); returns the superseded records."""
    top = m.search(question, user_id=uid, limit=3, now=T2)["results"]
    assert new_value.lower() in top[0]["memory"].lower(), top
    assert not any(old_value.lower() in h["memory"].lower() and new_value.lower() not in h["memory"].lower()
                   for h in top), f"the old value is still presented as current: {top}"
    everything = m.get_all(user_id=uid, include_superseded=True)["results"]
    replaced = [x for x in everything if old_value.lower() in x["memory"].lower() and x["superseded_by"]]
    assert replaced and all(x["valid_to"] for x in replaced)
    return replaced


@pytest.mark.parametrize("kind", sorted(UPDATES))
def test_a_later_value_replaces_the_earlier_one(real_mem: Memory, uid: str, kind: str) -> None:
    old, new, question, old_value, new_value = UPDATES[kind]
    _said(real_mem, uid, old, new)
    replaced = _new_value_current(real_mem, uid, question, old_value, new_value)
    assert [e["event"] for e in real_mem.history(replaced[0]["id"], user_id=uid)] == ["ADD", "SUPERSEDE"]
    then = real_mem.search(question, user_id=uid, limit=3, as_of="2025-10-01T00:00:00Z")["results"]
    assert any(old_value.lower() in h["memory"].lower() for h in then)


def test_an_unmarked_change_raises_a_conflict_and_a_marked_one_does_not(real_mem: Memory, uid: str) -> None:
    _said(real_mem, uid, "I work as an accountant at Deloitte.", "I work as an accountant at KPMG.")
    (conflict,) = real_mem.conflicts(user_id=uid, status="all")["results"]
    assert "deloitte" in real_mem.get(conflict["old_memory_id"], user_id=uid)["memory"].lower()
    assert conflict["resolution"] == "policy:keep_new"  # the default policy settled it; a person may overrule
    other = uid + "-b"
    _said(real_mem, other, "I work as an accountant at Deloitte.", "I switched jobs, I'm an accountant at KPMG now.")
    assert real_mem.conflicts(user_id=other, status=None)["results"] == []
    assert "kpmg" in real_mem.search("Where do I work?", user_id=other, limit=1)["results"][0]["memory"].lower()
    dose = uid + "-c"  # "upped", "bumped", "increased": said as a change too
    _said(real_mem, dose, "I take 50mg of sertraline every morning.", "The GP upped my sertraline to 100mg last week.")
    assert real_mem.conflicts(user_id=dose, status=None)["results"] == []


@pytest.mark.parametrize("later", [
    "My sister moved to Lisbon last month.",  # a third party's fact
    "Should I move to Lisbon?",  # a question
    "If I lived in Lisbon I'd surf every day.",  # a hypothetical
    "I wish I lived in Lisbon.",  # a wish
    "I'm thinking about moving to Lisbon someday.",  # a plan not made
])
def test_others_questions_and_wishes_replace_nothing(real_mem: Memory, uid: str, later: str) -> None:
    first = real_mem.add("I live in Berlin.", user_id=uid, timestamp=T1)
    r = real_mem.add(later, user_id=uid, timestamp=T2)
    assert not any(x["event"] == "SUPERSEDE" for x in r["results"])
    kept = real_mem.get(first["results"][0]["id"], user_id=uid)
    assert kept["valid_to"] is None and kept["superseded_by"] is None
    assert real_mem.conflicts(user_id=uid, status=None)["results"] == []


def test_no_statement_is_lost_and_add_says_what_it_did(real_mem: Memory, uid: str) -> None:
    said = [
        {"role": "user", "content": "I dropped out of the half marathon because of a knee injury."},
        {"role": "user", "content": "I dropped out of the book club."},
        {"role": "user", "content": "The kitchen renovation finally finished yesterday."},
        {"role": "assistant", "content": "Sorry about the knee! Rest up."},
        {"role": "user", "content": "Thanks!"},
    ]
    r = real_mem.add(said, user_id=uid, conversation_id="c1", timestamp=T2)
    report = r["messages"]
    assert [x["index"] for x in report] == [0, 1, 2, 3, 4]
    assert all(x["memory_ids"] and x["reason"] for x in report)
    assert report[3]["outcome"] == "archived" and report[3]["reason"] == "assistant_turn"
    assert report[4]["outcome"] == "archived" and report[4]["reason"] == "small_talk"
    for query, expect in [("Am I running the half marathon?", "half marathon"), ("Am I in a book club?", "book club"),
                          ("Is the kitchen renovation done?", "kitchen renovation"),
                          ("What did the assistant say about my knee?", "rest up")]:
        hits = real_mem.search(query, user_id=uid, limit=5)["results"]
        assert any(expect in h["memory"].lower() for h in hits), (query, hits)
        assert all(h["episode_ids"] for h in hits)  # provenance
    ctx = real_mem.context("half marathon", user_id=uid)
    assert "half marathon" in ctx["text"]


def test_memories_read_whole(real_mem: Memory, uid: str) -> None:
    r = real_mem.add([
        {"role": "user", "content": "Hi! I'm planning my move. I currently live in Berlin ."},
        {"role": "assistant", "content": "Where are you moving to?"},
        {"role": "user", "content": "Lisbon, hopefully by March. My sister Anna lives in Porto, so I'll be closer "
                                    "to her."},
        {"role": "user", "content": "Wow!"},
    ], user_id=uid, conversation_id="c1", timestamp=T1)
    texts = [x["memory"] for x in real_mem.get_all(user_id=uid)["results"]]
    assert not any(" ." in t or "  " in t for t in texts), texts
    facts = [x["memory"] for x in r["results"] if x.get("kind") != "message"]
    assert "Wow!" not in facts and "Lisbon, hopefully by March." not in facts
    assert any("her (my sister Anna)" in t for t in facts), facts
    reply = next(t for t in texts if t.startswith("Lisbon, hopefully by March"))
    assert "Where are you moving to?" in reply or "Anna" in reply  # never the bare fragment


def test_a_change_announced_first_is_kept_with_its_new_value(real_mem: Memory, uid: str) -> None:
    real_mem.add("I'm a pharmacist at Boots.", user_id=uid, timestamp=T1)
    real_mem.add("I study economics at Leeds.", user_id=uid, timestamp=T1)
    r = real_mem.add("I got a new job! I'm a data analyst at Monzo.", user_id=uid, timestamp=T2)
    real_mem.add("so i changed my major, im doing computer science now. parents not thrilled.", user_id=uid,
                 timestamp=T2)
    facts = [x["memory"] for x in r["results"] if x.get("kind") != "message"]
    assert "I got a new job!" not in facts, facts  # never the bare announcement
    job = real_mem.search("What is my job?", user_id=uid, limit=3)["results"]
    assert "Monzo" in job[0]["memory"], job
    study = real_mem.search("What do I study?", user_id=uid, limit=3)["results"]
    assert "computer science" in study[0]["memory"], study


def test_a_change_that_names_the_old_value_replaces_the_users_fact_only(real_mem: Memory, uid: str) -> None:
    energy = real_mem.add("Our energy is with Octopus.", user_id=uid, timestamp=T1)["results"][-1]["id"]
    sister = real_mem.add("My sister Deepa banks with AIB.", user_id=uid, timestamp=T1)["results"][-1]["id"]
    asked = real_mem.add("Should I switch from Octopus to OVO?", user_id=uid, timestamp=T1)
    assert not any(x["event"] == "SUPERSEDE" for x in asked["results"])  # a question replaces nothing
    r = real_mem.add("I switched from Octopus to OVO in December.", user_id=uid, timestamp=T2)
    bank = real_mem.add("I switched from AIB to Revolut.", user_id=uid, timestamp=T2)
    replaced = {x["id"] for x in [*r["results"], *bank["results"]] if x["event"] == "SUPERSEDE"}
    assert energy in replaced and sister not in replaced, r["results"]
    assert real_mem.get(energy, user_id=uid)["superseded_by"]
    assert not real_mem.get(sister, user_id=uid)["superseded_by"]  # her bank is not the user's
    then = real_mem.search("Who is our energy with?", user_id=uid, as_of=T1, limit=3)["results"]
    assert any("Octopus" in h["memory"] for h in then), then  # history kept


def test_where_do_i_live_is_the_users_own_city(real_mem: Memory, uid: str) -> None:
    real_mem.add("I currently live in Berlin.", user_id=uid, timestamp=T1)
    real_mem.add("My sister Anna lives in Porto.", user_id=uid, timestamp=T1)
    real_mem.add("I moved to Lisbon last week!", user_id=uid, timestamp=T2)
    top = real_mem.search("Where do I live now?", user_id=uid, limit=2)["results"]
    assert "Lisbon" in top[0]["memory"]
    anna = real_mem.search("Where does my sister live?", user_id=uid, limit=1)["results"]
    assert "Porto" in anna[0]["memory"]


def test_someone_elses_statement_without_a_place_does_not_answer_for_the_user(real_mem: Memory, uid: str) -> None:
    """ "My sister Ines lives here" names no place a slot could hold; it still says where she lives, not where
    the user does."""
    real_mem.add("I'm a translator living in Leeds.", user_id=uid, timestamp=T1)
    real_mem.add("Some news: I moved from Leeds to York last month. My sister Ines lives here, she just had "
                 "twins, so I want to help her.", user_id=uid, timestamp=T2)
    top = real_mem.search("Which city do I live in?", user_id=uid, limit=3)["results"]
    assert "York" in top[0]["memory"], [h["memory"] for h in top]
    sister = real_mem.search("Where does my sister Ines live?", user_id=uid, limit=3)["results"]
    assert any("Ines lives here" in h["memory"] for h in sister), [h["memory"] for h in sister]


def test_dates_without_a_year_look_forward_for_plans_and_back_for_reports(real_mem: Memory, uid: str) -> None:
    plan = real_mem.add("My sister's wedding is in April.", user_id=uid, timestamp="2026-01-15T10:00:00Z")
    report = real_mem.add("In April I ran my first marathon.", user_id=uid, timestamp="2026-01-15T10:00:00Z")
    wedding = real_mem.get(plan["results"][-1]["id"], user_id=uid)
    marathon = real_mem.get(report["results"][-1]["id"], user_id=uid)
    assert wedding["valid_from"].startswith("2026-04"), wedding
    assert marathon["valid_from"].startswith("2025-04"), marathon
    # A change that takes effect then: forward, even beside a past tense ("went"); a range said in full is not.
    rise = real_mem.add("Review went well, my pay goes to 66k from March.", user_id=uid,
                        timestamp="2026-01-15T10:00:00Z")
    trip = real_mem.add("From March to May I was backpacking in Peru.", user_id=uid, timestamp="2026-01-15T10:00:00Z")
    dated = {r["memory"]: r["id"] for out in (rise, trip) for r in out["results"] if r.get("kind") != "message"}
    pay = next(real_mem.get(i, user_id=uid) for t, i in dated.items() if "66k" in t)
    peru = next(real_mem.get(i, user_id=uid) for t, i in dated.items() if "Peru" in t)
    assert pay["valid_from"].startswith("2026-03"), pay
    assert peru["valid_from"].startswith("2025-03"), peru


def _add_demo(mem: Memory, uid: str) -> list[tuple[str, str]]:
    from memstrata.cli.demo import SESSIONS

    for i, (when, turns) in enumerate(SESSIONS, start=1):
        mem.add([{"role": r, "content": t} for r, t in turns], user_id=uid, conversation_id=f"s{i}", timestamp=when)
    return [turn for _, turns in SESSIONS for turn in turns]


def test_every_demo_question_is_answered_right(real_mem: Memory, uid: str) -> None:
    from memstrata.cli.demo import NOW, QUESTIONS

    turns = _add_demo(real_mem, uid)
    expected = ["Lisbon", "4512", "Porto", "John", "meat-free|vegetarian", "Tuesday"]
    assert len(expected) == len(QUESTIONS)
    pleasantries = [t for role, t in turns if role == "assistant"]
    for question, answer in zip(QUESTIONS, expected, strict=True):
        top = [h["memory"] for h in real_mem.search(question, user_id=uid, limit=2, now=NOW)["results"]]
        assert any(a in top[0] for a in answer.split("|")), (question, top)
        assert not set(top) & set(pleasantries), (question, top)  # nor is the runner-up the assistant's cheer
    # the move is recorded with the value the reply gave, without the question it answered or the hedge
    moved = [c for c in real_mem.conflicts(user_id=uid, status="all")["results"] if c["attribute"] == "lives_in"]
    assert moved and all(c["new_value"] == "lisbon" for c in moved), moved


def test_the_demos_context_holds_the_users_life_and_no_pleasantry(real_mem: Memory, uid: str) -> None:
    from memstrata.cli.demo import CONTEXT_BUDGET, CONTEXT_QUERY, NOW

    turns = _add_demo(real_mem, uid)
    ctx = real_mem.context(CONTEXT_QUERY, user_id=uid, token_budget=CONTEXT_BUDGET, now=NOW)
    text = ctx["text"]
    assert "vegetarian" in text and "Lisbon" in text and "Portuguese" in text, text
    assert not any(t in text for role, t in turns if role != "user"), text
    assert "Thanks!" not in text  # nor the user's bare thanks
    # "..., so please suggest meat-free recipes from here on" is a standing instruction, in its reserved part
    assert [(s["kind"], s["memory"]) for s in ctx["standing"]] == [
        ("instruction", "Please suggest meat-free recipes from here on.")]
    assert "## Standing instructions and preferences\n- Please suggest meat-free recipes" in text
    # the pleasantries are still there when asked for
    said = real_mem.search("What did you say about my move?", user_id=uid, limit=3, now=NOW)["results"]
    assert {h["memory"] for h in said} & {"Congratulations on the move, and good luck with the project.",
                                           "Exciting! Where are you moving to?"}, said


# Updates said in words no pattern lists: the attribute comes from the statement's meaning (its vector against
# a few plain example statements per family), the change from the old fact it meets.
IN_OTHER_WORDS = {
    "job_no_pattern": ("I'm a backend developer at Monzo.", "I'm a staff engineer at Klarna now.",
                       "Where do I work?", "Monzo", "Klarna"),
    "commute_reason_in_past": ("I take the 38 bus to the office every morning.",
                               "These days I cycle in, the buses were always late.", "How do I get to work?",
                               "38 bus", "cycle"),
    "medication_old_value_named": ("My blood pressure tablets are amlodipine 5mg.",
                                   "The doctor switched me from amlodipine to losartan.",
                                   "What blood pressure medication do I take?", "tablets are amlodipine", "losartan"),
    "drink_same_frame": ("I drink green tea in the afternoon.", "I drink rooibos in the afternoon.",
                         "What do I drink in the afternoon?", "green tea", "rooibos"),
    "habit_restated": ("I take my tea with milk and two sugars.",
                       "Cut out sugar completely, so it's tea with just milk.", "How do I take my tea?",
                       "two sugars", "just milk"),
}


@pytest.mark.parametrize("kind", sorted(IN_OTHER_WORDS))
def test_a_change_in_other_words_replaces_the_earlier_value(real_mem: Memory, uid: str, kind: str) -> None:
    old, new, question, old_value, new_value = IN_OTHER_WORDS[kind]
    _said(real_mem, uid, old, new)
    _new_value_current(real_mem, uid, question, old_value, new_value)
    then = real_mem.search(question, user_id=uid, limit=3, as_of="2025-10-01T00:00:00Z")["results"]
    assert any(old_value.lower() in h["memory"].lower() for h in then)


def test_an_unmarked_change_in_other_words_raises_a_conflict(real_mem: Memory, uid: str) -> None:
    _said(real_mem, uid, "I'm a backend developer at Monzo.", "I'm a staff engineer at Klarna.")
    (conflict,) = real_mem.conflicts(user_id=uid, status="all")["results"]
    assert "monzo" in real_mem.get(conflict["old_memory_id"], user_id=uid)["memory"].lower()
    assert "klarna" in real_mem.get(conflict["new_memory_id"], user_id=uid)["memory"].lower()


def test_a_misread_family_or_someone_elses_news_replaces_nothing(real_mem: Memory, uid: str) -> None:
    first = real_mem.add("I work as a data analyst at Stripe.", user_id=uid, timestamp=T1)
    for later in ("I'm a Leinster rugby fan.",  # "-er" reads as an occupation to a pattern, not to its meaning
                  "My brother just got a job at Google.",  # a third party's job
                  "Would I be happier working at Google?"):  # a question
        r = real_mem.add(later, user_id=uid, timestamp=T2)
        assert not any(x["event"] == "SUPERSEDE" for x in r["results"]), (later, r["results"])
    kept = real_mem.get(first["results"][0]["id"], user_id=uid)
    assert kept["valid_to"] is None and kept["superseded_by"] is None
    assert real_mem.conflicts(user_id=uid, status=None)["results"] == []
    assert "Stripe" in real_mem.search("Where do I work?", user_id=uid, limit=1)["results"][0]["memory"]


def test_a_short_message_that_gave_only_the_old_fact_ends_with_it(real_mem: Memory, uid: str) -> None:
    real_mem.add("I commute by tram, it's like 20 minutes.", user_id=uid, timestamp=T1)
    real_mem.add("I walk to work now, the new office is close.", user_id=uid, timestamp=T2)
    current = [x["memory"] for x in real_mem.get_all(user_id=uid)["results"]]
    assert not any("tram" in t for t in current), current
    everything = real_mem.get_all(user_id=uid, include_superseded=True)["results"]
    # the message's own words stay in the history, ended (as its evidence, or as the fact that was all of it)
    assert any(x["memory"] == "I commute by tram, it's like 20 minutes." and x["valid_to"] for x in everything), \
        [(x["kind"], x["memory"], x["valid_to"]) for x in everything]


# Updates found without a family: the user's nearest statement of the same frame, given another number or name.
WITHOUT_A_FAMILY = {
    "hairdresser": ("I get my hair cut at Blade & Co every six weeks.",
                    "Blade & Co closed down so I go to a barber called Sharp Edges.",
                    "Where do I get my hair cut?", "every six weeks", "Sharp Edges"),
    "savings": ("I'm saving for a deposit, about 8k so far.", "Savings are at 13k now, the deposit's getting real.",
                "How much have I saved for the deposit?", "8k", "13k"),
}


@pytest.mark.parametrize("kind", sorted(WITHOUT_A_FAMILY))
def test_a_new_value_of_a_statement_without_a_family_replaces_it(reframing_mem: Memory, uid: str, kind: str) -> None:
    real_mem = reframing_mem
    old, new, question, old_value, new_value = WITHOUT_A_FAMILY[kind]
    _said(real_mem, uid, old, new)
    top = real_mem.search(question, user_id=uid, limit=3, now=T2)["results"]
    assert new_value.lower() in top[0]["memory"].lower(), top
    everything = real_mem.get_all(user_id=uid, include_superseded=True)["results"]
    replaced = [x for x in everything if old_value.lower() in x["memory"].lower() and x["superseded_by"]]
    assert replaced and all(x["valid_to"] for x in replaced)
    # found by no family, the replacement is a guess: a conflict record says so
    (conflict,) = real_mem.conflicts(user_id=uid, status="all")["results"]
    assert old_value.lower() in real_mem.get(conflict["old_memory_id"], user_id=uid)["memory"].lower()
    then = real_mem.search(question, user_id=uid, limit=3, as_of="2025-10-01T00:00:00Z")["results"]
    assert any(old_value.lower() in h["memory"].lower() for h in then)


def test_a_change_said_without_i_updates_the_users_fact(real_mem: Memory, uid: str) -> None:
    _said(real_mem, uid, "I weigh 92 kilos right now.", "Scale said 84 kilos this morning!!")
    top = real_mem.search("How much do I weigh?", user_id=uid, limit=3, now=T2)["results"]
    assert "84" in top[0]["memory"], top
    assert not any("92" in h["memory"] for h in top), top


def test_the_same_title_at_another_employer_is_a_new_job(real_mem: Memory, uid: str) -> None:
    _said(real_mem, uid, "I'm a data analyst at Spotify, mostly SQL and dashboards.",
          "I'm a data analyst at Klarna, the team is small but sharp.")
    current = [x["memory"] for x in real_mem.get_all(user_id=uid)["results"]]
    assert not any("Spotify" in t for t in current), current
    assert any("Klarna" in t for t in current), current


def test_someone_elses_news_and_one_off_events_replace_nothing(real_mem: Memory, uid: str) -> None:
    said = ["I'm a line cook at a tapas place called Bodega Norte.", "I bought a pair of 16 kg kettlebells."]
    real_mem.add([{"role": "user", "content": t} for t in said], user_id=uid, timestamp=T1)
    later = ["Tomasz stayed behind in Leeds, he got a job at the uni.",  # someone else, said as "he"
             "I deadlifted 140 kg for the first time."]  # a one-off event does not end another
    r = real_mem.add([{"role": "user", "content": t} for t in later], user_id=uid, timestamp=T2)
    assert not any(x["event"] == "SUPERSEDE" for x in r["results"]), r["results"]
    current = " ".join(x["memory"] for x in real_mem.get_all(user_id=uid)["results"])
    assert "Bodega Norte" in current and "16 kg" in current


def test_a_message_ending_what_an_earlier_one_names_ends_it(reframing_mem: Memory, uid: str) -> None:
    real_mem = reframing_mem
    _said(real_mem, uid, "I have a season ticket at Elland Road, been going since I was a kid.",
          "Gave up the season ticket, it was 700 quid I didn't have.")
    current = [x["memory"] for x in real_mem.get_all(user_id=uid)["results"]]
    assert not any("Elland Road" in t for t in current), current
    top = real_mem.search("Do I have a season ticket?", user_id=uid, limit=1, now=T2)["results"]
    assert "Gave up" in top[0]["memory"], top
    assert real_mem.conflicts(user_id=uid, status=None)["results"] == []  # it said so itself


def test_without_reframing_a_loosely_related_statement_replaces_nothing(real_mem: Memory, uid: str) -> None:
    """By default only attribute families replace: a new count of cats leaves the cats' names current."""
    _said(real_mem, uid, "My two cats are called Pim and Bo.", "Adopted a third cat, so three cats now.")
    top = real_mem.search("What are my cats called?", user_id=uid, limit=5, now=T2)["results"]
    assert any("Pim" in h["memory"] for h in top), top
    current = real_mem.get_all(user_id=uid)["results"]
    assert any("Pim" in x["memory"] and not x["superseded_by"] for x in current), current


@pytest.mark.parametrize("theirs", ["My housemate is doing a PhD in astrophysics at Exeter.",
                                    "My sister is a PhD student in chemistry at Durham."])
def test_someone_elses_studies_replace_nothing_of_the_users(real_mem: Memory, uid: str, theirs: str) -> None:
    real_mem.add("I just began a PhD in marine biology at Plymouth, funded by NERC.", user_id=uid, timestamp=T1)
    out = real_mem.add(theirs, user_id=uid, timestamp=T2)
    assert out["messages"][0]["outcome"] == "kept", out["messages"]
    mine = [m for m in real_mem.get_all(user_id=uid, include_superseded=True)["results"] if "NERC" in m["memory"]]
    assert mine and not any(m["superseded_by"] for m in mine)
    assert real_mem.conflicts(user_id=uid, status=None)["results"] == []


def test_who_someone_of_the_users_is_remains_the_users_own_attribute(real_mem: Memory, uid: str) -> None:
    real_mem.add("My housemate is a guy called Femi.", user_id=uid, timestamp=T1)
    real_mem.add("Femi moved out, my new housemate is Clara.", user_id=uid, timestamp=T2)
    hits = real_mem.search("Who is my housemate?", user_id=uid, limit=5)["results"]
    assert "Clara" in hits[0]["memory"], [h["memory"] for h in hits]
