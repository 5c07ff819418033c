"""The newer answer first: changes ingestion could not name are still read in the right order.

Real MiniLM embedder, real text, public API, on SQLite and PostgreSQL; plus the ordering rule itself on
hand-built hits.
"""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import Memory
from memstrata.models import MemoryRecord, Scope
from memstrata.retrieve.pipeline import Hit
from memstrata.retrieve.presets import get_preset
from memstrata.retrieve.revisions import newer_first, wants_current

T1, T2 = "2025-04-02T09:00:00Z", "2025-11-20T19:00:00Z"
NOW = "2025-12-01T09:00:00Z"

# Said months apart, with no word that marks a change and no attribute family that names it.
PAIRS = [
    ("coffee order: cortado with oat milk", "Off coffee now, just a chai latte most mornings",
     "What's my usual drink order?", "cortado", "chai"),
    ("Car insurance is with Aviva, 540 a year", "insurance renewed with Admiral instead, cheaper",
     "Who is my car insurance with?", "Aviva", "Admiral"),
]


def _add(m: Memory, user: str, first: str, later: str, extra_later: tuple[str, ...] = ()) -> None:
    m.add([{"role": "user", "content": first}], user_id=user, conversation_id="s1", timestamp=T1)
    m.add([{"role": "user", "content": t} for t in (later, *extra_later)], user_id=user, conversation_id="s2",
          timestamp=T2)


@pytest.mark.parametrize("first,later,question,old,new", PAIRS)
def test_later_statement_comes_first_and_names_the_earlier_one(real_mem: Memory, uid: str, first: str,
                                                                later: str, question: str, old: str,
                                                                new: str) -> None:
    _add(real_mem, uid, first, later)
    hits = real_mem.search(question, user_id=uid, limit=5, now=NOW)["results"]
    assert new in hits[0]["memory"], [h["memory"] for h in hits]
    earlier = [h for h in hits if old in h["memory"] and new not in h["memory"]]
    assert earlier, "the earlier statement stays in the results"
    assert all(h["revised_by"] == hits[0]["id"] for h in earlier)
    assert "revised_by" not in hits[0]

    explained = real_mem.search(question, user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert explained[0]["stages"]["revises"] == 1.0
    assert all(h["stages"]["outdated"] == 1.0 for h in explained if "revised_by" in h)

    ctx = real_mem.context(question, user_id=uid, token_budget=300, now=NOW)["text"]
    line = next(x for x in ctx.splitlines() if old in x)
    assert "said earlier" in line


def test_without_the_stage_the_earlier_statement_ranks_first(store_url: str, minilm, uid: str) -> None:  # type: ignore[no-untyped-def]
    first, later, question, old, _ = PAIRS[0]
    with Memory(store_url, embedder=minilm) as m:
        _add(m, uid, first, later)
        m.preset = get_preset("balanced", newer_first=False)
        hits = m.search(question, user_id=uid, limit=5, now=NOW)["results"]
        assert old in hits[0]["memory"] and not any("revised_by" in h for h in hits)


def test_wishes_questions_and_other_people_revise_nothing(real_mem: Memory, uid: str) -> None:
    first, _, question, old, _ = PAIRS[0]
    _add(real_mem, uid, first, "would love to switch to a chai latte someday",
         ("My sister drinks chai lattes now", "Should I switch to a chai latte?"))
    hits = real_mem.search(question, user_id=uid, limit=5, now=NOW)["results"]
    assert old in hits[0]["memory"], [h["memory"] for h in hits]
    assert not any("revised_by" in h for h in hits)


def test_history_questions_and_as_of_keep_the_plain_order(real_mem: Memory, uid: str) -> None:
    first, later, _, old, _ = PAIRS[0]
    _add(real_mem, uid, first, later)
    for q in ("What did I use to order at the coffee shop?", "What was my drink order before?"):
        hits = real_mem.search(q, user_id=uid, limit=5, now=NOW)["results"]
        assert not any("revised_by" in h for h in hits), q
    then = real_mem.search("What's my usual drink order?", user_id=uid, limit=5, as_of="2025-06-01T00:00:00Z")
    assert old in then["results"][0]["memory"]
    assert not any("revised_by" in h for h in then["results"])


def test_a_query_about_someone_the_user_talks_about_reads_the_users_words_about_them(real_mem: Memory,
                                                                                    uid: str) -> None:
    real_mem.add([{"role": "user", "content": "My brother Ivo drives a Golf"}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Ivo sold the Golf, he has a Tesla now"}], user_id=uid,
                 conversation_id="s2", timestamp=T2)
    hits = real_mem.search("What car does my brother drive?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Tesla" in hits[0]["memory"], [h["memory"] for h in hits]
    assert any("Golf" in h["memory"] and h.get("revised_by") == hits[0]["id"] for h in hits[1:])
    real_mem.add([{"role": "user", "content": "My son Leo just started Reception at St Anne's Primary."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Leo's at Brookfield Primary since half term, much calmer."}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which school does Leo go to?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Brookfield" in hits[0]["memory"], [h["memory"] for h in hits]


def test_a_query_about_a_speaker_of_a_conversation_between_people_is_left_alone(real_mem: Memory,
                                                                                 uid: str) -> None:
    # Between people, what one says of another is hearsay beside what that person says: the ranking stays.
    real_mem.add([{"role": "user", "name": "Ana", "content": "I love the wheel, my hands are always covered in clay"},
                  {"role": "user", "name": "Ben", "content": "Ana's pottery class is at the community centre"}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "name": "Carl", "content": "Ana's pottery class moved to the art school"}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Where is Ana's pottery class?", user_id=uid, limit=5, now=NOW)["results"]
    assert not any("revised_by" in h for h in hits), [h["memory"] for h in hits]


# The rule on hand-built hits: unit vectors in a plane, so cosines are exact.

class _Reader:
    def states_own(self, text: str, slot_subject: str | None) -> bool:
        return not text.endswith("?") and not text.startswith("My sister")

    def one_off(self, text: str) -> bool:
        return text.startswith("I bought")

    def tentative(self, text: str) -> bool:
        return text.endswith("?")

    def marks_change(self, text: str) -> bool:
        return " now" in text

    def only_ended(self, text: str) -> bool:
        return text.startswith("Dropped")

    def speaks_of_self(self, text: str) -> bool:
        return text.startswith("I ")

    def echoes(self, text: str) -> bool:
        return "(in reply to:" in text


def _hit(i: int, text: str, day: int, score: float, role: str = "user") -> Hit:
    rec = MemoryRecord(id=f"m{i}", scope=Scope(user_id="u"), text=text, created_at=day * 86400.0,
                       updated_at=day * 86400.0, valid_from=day * 86400.0, source_role=role)
    return Hit(rec, score, {"dense": score / 4})  # the query cosine, on which relevance is compared


def _vec(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r)], dtype=np.float32)


def test_rule_moves_the_latest_relevant_revision_just_above_the_earlier() -> None:
    hits = [_hit(0, "salary 48k", 1, 2.0), _hit(1, "the weather is nice", 300, 1.5),
            _hit(2, "Got a raise to 52k", 200, 1.45), _hit(3, "raise again, 55k", 320, 1.42)]
    vecs = {"m0": _vec(0), "m1": _vec(80), "m2": _vec(40), "m3": _vec(45)}
    out = newer_first(hits, vecs, _Reader(), "What's my salary?", 10)
    assert [h.record.id for h in out] == ["m3", "m0", "m1", "m2"]
    assert out[1].revised_by == "m3" and out[0].stages["revises"] == 1.0
    assert out[0].score >= out[1].score


@pytest.mark.parametrize("later,score,deg,day", [
    ("Should I ask for 55k?", 1.5, 30, 200),   # a question states nothing
    ("My sister earns 55k", 1.5, 30, 200),     # someone else's
    ("raise to 55k", 0.9, 30, 200),            # far less close to the query: answers something else
    ("raise to 55k", 1.5, 80, 200),            # far from the earlier statement
    ("raise to 55k", 1.5, 30, 1),              # the same day
    ("salary 48k", 1.5, 30, 200),              # a repeat says nothing new
])
def test_rule_leaves_what_is_no_revision(later: str, score: float, deg: float, day: int) -> None:
    hits = [_hit(0, "salary 48k", 1, 2.0), _hit(1, later, day, score)]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(deg)}, _Reader(), "What's my salary?", 10)
    assert [h.record.id for h in out] == ["m0", "m1"] and out[0].revised_by is None


def test_rule_leaves_a_broad_query_alone() -> None:
    hits = [_hit(0, "salary 48k", 1, 0.8), _hit(1, "raise to 55k", 200, 0.8)]  # query cosines 0.2: near nothing
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "What should I know about my life?", 10)
    assert [h.record.id for h in out] == ["m0", "m1"] and out[0].revised_by is None


def test_rule_keeps_one_off_happenings_and_assistant_words() -> None:
    hits = [_hit(0, "I bought 16 kg kettlebells", 1, 2.0), _hit(1, "now I lift 20 kg", 200, 1.5)]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "What weights do I use?", 10)
    assert out[0].record.id == "m0"
    hits = [_hit(0, "salary 48k", 1, 2.0), _hit(1, "Congrats on the 55k!", 200, 1.5, role="assistant")]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "What's my salary?", 10)
    assert out[0].record.id == "m0"


@pytest.mark.parametrize("query,current", [
    ("What's my salary?", True), ("Where do I live?", True), ("Where did I live before?", False),
    ("How many cats have I had?", False), ("What car did I use to drive?", False), ("How old am I?", True),
    ("How far do I run each week?", True), ("How many hens do I have?", True), ("List every book I read", False),
    ("How much have I spent so far?", False),
])
def test_which_queries_want_the_current_answer(query: str, current: bool) -> None:
    assert wants_current(query) is current


LONG = ("Lovely weekend, the weather finally turned and we walked along the canal for hours. I live in Hackney "
        "with my partner and our two cats, which is a big change from the old flat share.")


def test_a_long_message_stays_as_said_when_its_fact_is_replaced(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": LONG}], user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "We moved to Walthamstow last month."}], user_id=uid,
                 conversation_id="s2", timestamp=T2)
    everything = real_mem.get_all(user_id=uid, include_superseded=True, limit=100)["results"]
    replaced = [m for m in everything if "Hackney" in m["memory"] and m["superseded_by"]]
    assert replaced, "the fact drawn from the long message was replaced"
    message = next(m for m in everything if m["memory"] == LONG)
    assert message["valid_to"] is None and message["superseded_by"] is None
    hits = real_mem.search("Where do I live?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Walthamstow" in hits[0]["memory"], [h["memory"] for h in hits]
    assert any(h["memory"] == LONG for h in hits), "the canal walk and the cats stay findable"
    canal = real_mem.search("Where did we walk at the weekend?", user_id=uid, limit=3, now=NOW)["results"]
    assert canal[0]["memory"] == LONG


def test_a_short_message_that_said_only_the_old_value_ends_with_it(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "I live in Hackney."}], user_id=uid, conversation_id="s1",
                 timestamp=T1)
    real_mem.add([{"role": "user", "content": "We moved to Walthamstow last month."}], user_id=uid,
                 conversation_id="s2", timestamp=T2)
    current = real_mem.get_all(user_id=uid, limit=100)["results"]
    assert not any("Hackney" in m["memory"] for m in current)
    then = real_mem.search("Where do I live?", user_id=uid, limit=5, as_of="2025-06-01T00:00:00Z")["results"]
    assert "Hackney" in then[0]["memory"]


def test_the_web_page_shows_an_earlier_answer_as_such() -> None:
    from memstrata.ui.render import memory_table

    row = {"id": "m1", "memory": "salary 48k", "valid_from": "2025-03-02T10:00:00Z", "score": 0.9}
    assert "current" in memory_table([row], scored=True)
    html = memory_table([{**row, "revised_by": "m2"}], scored=True)
    assert "said earlier" in html and ">current<" not in html


def test_a_count_is_revised_only_by_another_count() -> None:
    hits = [_hit(0, "I keep six hens", 1, 2.0), _hit(1, "Got a new coop for the garden", 200, 1.5)]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "How many hens do I have?", 10)
    assert out[0].record.id == "m0" and out[0].revised_by is None
    hits = [_hit(0, "I keep six hens", 1, 2.0), _hit(1, "a fox got in, we're down to four", 200, 1.5)]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "How many hens do I have?", 10)
    assert out[0].record.id == "m1" and out[1].revised_by == "m1"


def test_a_count_question_with_no_count_said_leaves_the_order_alone() -> None:
    hits = [_hit(0, "I love my hens", 1, 2.0), _hit(1, "Got a new coop for the garden", 200, 1.5)]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "How many hens do I have?", 10)
    assert [h.record.id for h in out] == ["m0", "m1"] and all(h.revised_by is None for h in out)
    hits = [_hit(0, "I keep six hens", 1, 2.0), _hit(1, "Got a new coop for the garden", 200, 1.5)]
    out = newer_first(hits, {"m0": _vec(0), "m1": _vec(20)}, _Reader(), "How many hens do I have?", 10)
    assert [h.record.id for h in out] == ["m0", "m1"]  # one count said: nothing to pair it with


def test_the_later_said_statement_wins_even_when_it_names_a_later_date(real_mem: Memory, uid: str) -> None:
    # Said in November about January: the pay rise is the newer word, though its date lies ahead.
    _add(real_mem, uid, "Salary is 61k at the moment.", "Annual review went well, salary's 66k from January.")
    hits = real_mem.search("What is my salary?", user_id=uid, limit=5, now=NOW)["results"]
    assert "66k" in hits[0]["memory"], [h["memory"] for h in hits]
    assert any("61k" in h["memory"] and h.get("revised_by") == hits[0]["id"] for h in hits)


def test_a_statement_before_a_question_is_kept_and_revises(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "My phone is a Pixel 6, still going strong."}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    out = real_mem.add([{"role": "user", "content": "My phone's an iPhone 14, does it support eSIM?"}],
                       user_id=uid, conversation_id="s2", timestamp=T2)
    assert out["messages"][0]["outcome"] in ("kept", "superseded")
    facts = [m["memory"] for m in real_mem.get_all(user_id=uid)["results"] if m.get("kind") != "message"]
    assert "My phone is an iPhone 14." in facts  # the contracted 'is' read as 'is'
    hits = real_mem.search("What phone do I have?", user_id=uid, limit=5, now=NOW)["results"]
    assert "iPhone 14" in hits[0]["memory"], [h["memory"] for h in hits]


def test_a_supposing_question_states_nothing(real_mem: Memory, uid: str) -> None:
    out = real_mem.add([{"role": "user", "content": "If I moved to Bristol, would my rent go up a lot?"},
                        {"role": "user", "content": "Rent is 1,150 a month, bills on top."}],
                       user_id=uid, conversation_id="s1", timestamp=T1)
    assert out["messages"][0]["outcome"] == "archived"
    hits = real_mem.search("How much is my rent?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "1,150" in hits[0]["memory"], [h["memory"] for h in hits]
    asked = next(h for h in hits if "Bristol" in h["memory"])
    assert asked["stages"]["tentative"] < 1.0  # found, but below the answer


def test_a_question_about_us_is_a_question_about_the_user(real_mem: Memory, uid: str) -> None:
    _add(real_mem, uid, "We bank with Lloyds, have done for years.", "Our joint account is with Monzo these days.")
    hits = real_mem.search("Who do we bank with?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Monzo" in hits[0]["memory"], [h["memory"] for h in hits]


def test_a_question_about_the_past_finds_what_was_replaced_marked_as_such(real_mem: Memory, uid: str) -> None:
    _add(real_mem, uid, "I'm a data engineer at Ocado, mostly on the routing service.",
         "I work at Monzo now, as a senior engineer.")
    replaced = [m for m in real_mem.get_all(user_id=uid, include_superseded=True, limit=100)["results"]
                if "routing" in m["memory"] and m["superseded_by"]]
    assert replaced, "the move replaces the Ocado statement"
    now = real_mem.search("Where do I work?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Monzo" in now[0]["memory"]
    assert not any("routing" in h["memory"] for h in now), "a present question gets what holds now"
    then = real_mem.search("What did I work on at Ocado?", user_id=uid, limit=5, now=NOW)["results"]
    old = [h for h in then if "routing" in h["memory"]]
    assert old and all(h["superseded_by"] for h in old), [h["memory"] for h in then]
    ctx = real_mem.context("What did I work on at Ocado?", user_id=uid, token_budget=300, now=NOW)["text"]
    assert "no longer current" in next(x for x in ctx.splitlines() if "routing" in x)


def test_what_ended_ranks_below_what_took_its_place(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "I'm doing an evening course in web design at the college."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Dropped the web design course, it wasn't for me."},
                  {"role": "user", "content": "These days I'm doing a part-time photography course online."}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("What course am I doing?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "photography" in hits[0]["memory"], [h["memory"] for h in hits]
    dropped = next(h for h in hits if h["memory"].startswith("Dropped"))
    assert dropped["stages"]["ended"] < 1.0
    then = real_mem.search("Which course did I drop?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert not any("ended" in h["stages"] for h in then)  # a question about the past wants it plainly


def test_the_users_words_about_a_friend_do_not_answer_for_the_user(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "I'm on 41k as a junior analyst."},
                  {"role": "user", "content": "My mate Callum earns 60k at Amazon, jealous."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    hits = real_mem.search("What is my salary?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "41k" in hits[0]["memory"], [h["memory"] for h in hits]
    callum = [h for h in hits if "Callum" in h["memory"]]
    assert callum and all(h["stages"].get("subject", 1.0) <= 1.0 for h in callum)


def test_a_capitalised_thing_is_no_person_the_user_talks_about(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "The API key lives in an environment variable called TIDE_API_KEY."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Back on tidewatch. The parser chokes on the API's height field."}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("What environment variable holds the tide API key?", user_id=uid, limit=5,
                           now=NOW)["results"]
    assert "TIDE_API_KEY" in hits[0]["memory"], [h["memory"] for h in hits]
    assert not any("revised_by" in h for h in hits)


def test_what_a_revised_message_said_is_revised_with_it(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "I'm a secondary school teacher in Leeds, I teach chemistry at Roundhay "
                                              "School. I want to plan a more sustainable workload."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Happy new year!"},
                  {"role": "assistant", "content": "Happy new year! How is the term going?"},
                  {"role": "user", "content": "Right, new year update. I'm at Allerton Grange now, moved in "
                                              "September. Still chemistry."},
                  {"role": "assistant", "content": "A new school is a big change. How's the timetable compared to "
                                                   "before?"}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which school do I teach at?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Allerton Grange" in hits[0]["memory"], [h["memory"] for h in hits]
    older = [h for h in hits if "Roundhay" in h["memory"]]
    assert len(older) >= 2  # the message and the fact drawn from it
    assert all(h.get("revised_by") for h in older)


def test_the_assistants_words_do_not_answer_what_the_user_has(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "My Pixel 7 battery is dying by lunchtime, is it worth replacing?"},
                  {"role": "assistant", "content": "If the phone is otherwise fine, a battery replacement is much "
                                                   "cheaper than a new phone, and the Pixel 7 still gets updates."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "I use an iPhone 16 these days, and CarPlay keeps dropping in my "
                                              "mate's car."},
                  {"role": "assistant", "content": "Try forgetting the car under Settings > General > CarPlay on "
                                                   "the phone, then pair it again with a different cable."}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("What phone do I have?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert hits[0]["source"]["role"] == "user" and "iPhone 16" in hits[0]["memory"], [h["memory"] for h in hits]
    assert all(h["stages"].get("assistant") for h in hits if h["source"]["role"] == "assistant")
    # asking what the assistant said lifts nothing of the user's over it
    said = real_mem.search("What did you suggest about my phone battery?", user_id=uid, limit=5, now=NOW,
                           explain=True)["results"]
    assert not any("assistant" in h["stages"] for h in said)


def test_what_it_changed_to_comes_before_the_word_that_it_changed(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "My GP is Dr Okafor at the Leatside surgery."}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "Lemon curd, what a good idea. Also, I've changed GP practices. I'm now "
                                              "with Dr Pemberton at Catherine House, she's much easier to get an "
                                              "appointment with."}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Who is my GP?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Dr Pemberton" in hits[0]["memory"], [h["memory"] for h in hits]


def test_an_ending_said_with_what_replaced_it_reads_as_history(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "I play the violin in a community orchestra in Ghent."}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": "I gave up on the violin, honestly. Now I play the cello with a "
                                              "string quartet on Tuesday evenings."}],
                 user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which instrument do I play?", user_id=uid, limit=5, now=NOW)["results"]
    assert "cello" in hits[0]["memory"], [h["memory"] for h in hits]
    ending = next(h for h in hits if h["memory"].startswith("I gave up on the violin") and "cello" not in h["memory"])
    assert ending["revised_by"] == next(h["id"] for h in hits if h["memory"].startswith("Now I play the cello"))


def test_a_place_named_with_a_possessive_keeps_its_name(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": "Knackered but good. I moved hospitals in the autumn, I'm at "
                                              "St Vincent's now, on the same kind of ward."},
                  {"role": "user", "content": "Rent's £875 a month and my brother Dave's a plumber."}],
                 user_id=uid, conversation_id="s1", timestamp=T1)
    texts = [m["memory"] for m in real_mem.get_all(user_id=uid)["results"]]
    assert not any("St Vincent is" in t for t in texts), texts
    assert any("Rent is £875" in t for t in texts), texts
    hits = real_mem.search("Which hospital do I work at?", user_id=uid, limit=3, now=NOW)["results"]
    assert "St Vincent's" in hits[0]["memory"], [h["memory"] for h in hits]


def _stated(i: int, text: str, day: int, score: float, cosine: float) -> Hit:
    rec = MemoryRecord(id=f"m{i}", scope=Scope(user_id="u"), text=text, created_at=day * 86400.0,
                       updated_at=day * 86400.0, valid_from=day * 86400.0, source_role="user")
    return Hit(rec, score, {"dense": cosine})


def test_rule_puts_what_was_revised_after_the_first_current_answers() -> None:
    # m1..m3 are far from the salary statements (and near nothing), so only m0 -> m4 is a revision
    hits = [_stated(0, "salary 48k", 1, 2.0, 0.5), _stated(1, "I cycle to work", 300, 1.9, 0.2),
            _stated(2, "I live in Leeds", 300, 1.8, 0.2), _stated(3, "My cat is Tom", 300, 1.7, 0.2),
            _stated(4, "Got a raise to 55k", 200, 1.6, 0.45), _stated(5, "I swim on Fridays", 300, 1.5, 0.2)]
    vecs = {"m0": _vec(0), "m1": _vec(89), "m2": _vec(-89), "m3": _vec(91), "m4": _vec(30), "m5": _vec(-91)}
    out = newer_first(hits, vecs, _Reader(), "What's my salary?", 10)
    assert [h.record.id for h in out] == ["m4", "m1", "m2", "m0", "m3", "m5"]
    assert out[3].revised_by == "m4"
    # fewer current answers than that: the revised one comes last of the head, and nothing is dropped
    out = newer_first(hits[:2] + hits[4:5], vecs, _Reader(), "What's my salary?", 10)
    assert [h.record.id for h in out] == ["m4", "m1", "m0"]
    # a question about the past keeps the plain order
    assert [h.record.id for h in newer_first(hits, vecs, _Reader(), "What was my salary before?", 10)] == \
        [h.record.id for h in hits]


def test_rule_reads_a_long_message_by_the_sentence_that_answers() -> None:
    # the message as a whole is far from the later statement; its sentence about the salary is not
    hits = [_stated(0, "Long message about work. My salary is 48k. And a question?", 1, 2.0, 0.5),
            _stated(1, "Got a raise to 55k", 200, 1.6, 0.45)]
    vecs = {"m0": _vec(0), "m1": _vec(80)}
    assert newer_first(hits, vecs, _Reader(), "What's my salary?", 10)[0].record.id == "m0"
    out = newer_first(hits, {**vecs, "m0": _vec(60)}, _Reader(), "What's my salary?", 10,
                      texts={"m0": "My salary is 48k."})
    assert [h.record.id for h in out] == ["m1", "m0"] and out[1].revised_by == "m1"


def test_an_old_value_said_in_passing_in_a_long_message_is_read_as_earlier(real_mem: Memory, uid: str) -> None:
    first = ("I'm a nurse on a cardiac ward in Sheffield and the twelve hour shifts are wrecking my sleep. "
             "I weigh 95 kilos at the moment and my GP wants me to lose some before my knee surgery. "
             "What's a realistic plan for someone who works nights?")
    _add(real_mem, uid, first, "Weighed in at 88 kilos this morning, the night shift meal prep is paying off.")
    hits = real_mem.search("How much do I weigh?", user_id=uid, limit=5, now=NOW)["results"]
    assert "88 kilos" in hits[0]["memory"], [h["memory"] for h in hits]
    earlier = [h for h in hits if "95 kilos" in h["memory"]]
    assert earlier, "what was said before stays in the results"
    assert all(h.get("revised_by") for h in earlier)
    current = [h for h in hits if not h.get("revised_by")]
    first_earlier = next(i for i, h in enumerate(hits) if "95 kilos" in h["memory"])
    assert first_earlier >= min(3, len(current)), [h["memory"] for h in hits]


@pytest.mark.parametrize("text,states", [
    ("Our rent is £1,200 a month and the landlord is slow with repairs. Is that normal?", True),
    ("im a welder in hull. whats the best boots for standing all day?", True),
    ("Should I move to Leeds? What do you think?", False),
    ("If I moved to Cardiff, would my rent be cheaper? Just wondering.", False),
    ("My sister earns 55k. Is that a lot?", False),
])
def test_a_message_that_states_and_then_asks_still_states(text: str, states: bool) -> None:
    from memstrata.ingest.statement_words import StatementWords

    assert StatementWords().states_own(text, None) is states


def test_an_old_value_stated_before_a_question_is_read_as_earlier(real_mem: Memory, uid: str) -> None:
    first = "Our rent is £1,200 a month for the flat in Leith. Is it worth asking the landlord for a fixed term?"
    _add(real_mem, uid, first, "Paid the £1,375 rent today, the new lease started last week.")
    hits = real_mem.search("How much is my rent?", user_id=uid, limit=5, now=NOW)["results"]
    assert "£1,375" in hits[0]["memory"], [h["memory"] for h in hits]
    assert all(h.get("revised_by") for h in hits if "£1,200" in h["memory"])


def test_rule_on_one_day_picks_the_word_on_the_old_statement_not_a_greeting() -> None:
    hits = [_stated(0, "Days off are Mondays and Tuesdays", 1, 2.0, 0.6),
            _stated(1, "Evening. Long day.", 200, 1.9, 0.47),
            _stated(2, "On my Sundays and Mondays off I bake", 200, 1.5, 0.45)]
    hits[1].record.created_at += 600  # said later that day
    vecs = {"m0": _vec(0), "m1": _vec(70), "m2": _vec(40)}
    out = newer_first(hits, vecs, _Reader(), "Which days am I off?", 10)
    assert out[0].record.id == "m2" and next(h for h in out if h.record.id == "m0").revised_by == "m2"


def test_rule_revises_a_statement_drawn_from_a_revised_message_with_it() -> None:
    message = _stated(0, "Our energy's with Octopus and the bill's gone up again.", 1, 1.4, 0.32)
    fact = _stated(1, "Our energy is with Octopus", 1, 2.5, 0.3)
    later = _stated(2, "We switched to EDF in the summer", 200, 1.3, 0.32)
    fact.record.episode_ids = message.record.episode_ids = ["e1"]
    # the fact is far from the later statement; the message it was drawn from is not
    vecs = {"m0": _vec(0), "m1": _vec(-60), "m2": _vec(40)}
    out = newer_first([fact, message, later], vecs, _Reader(), "Who's our energy supplier?", 10)
    assert out[0].record.id == "m2"
    assert {h.record.id: h.revised_by for h in out} == {"m0": "m2", "m1": "m2", "m2": None}


def test_an_old_statement_found_by_the_querys_words_is_still_revised(real_mem: Memory, uid: str) -> None:
    # The first message reaches "where do I work?" through the word "work", not its meaning; the later
    # one is near the question in meaning. The later one still comes first and names the earlier one.
    _add(real_mem, uid, "That plan sounds fine. I work as a buyer at Tesco's distribution centre so I'm on my "
         "feet for most of the day. Should I stretch more?",
         "Also news from March: I'm a buyer at Ocado these days. The office is right by the station.")
    hits = real_mem.search("Where do I work?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Ocado" in hits[0]["memory"], [h["memory"] for h in hits]
    earlier = [h for h in hits[:3] if "Tesco" in h["memory"]]
    assert all(h.get("revised_by") for h in earlier), [(h["memory"], h.get("revised_by")) for h in hits]
