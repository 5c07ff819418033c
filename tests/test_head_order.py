"""The first answers to a question about the user now are put in order by the fitted head model
(``memstrata.retrieve.head_order``); someone else's news ("My partner Lukas works at a bike shop") is not
the user's.

End to end with the real MiniLM embedder on real text through the public API; the stage itself with the real
statement reader on hits made by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import Memory
from memstrata.ingest.statement_words import StatementWords
from memstrata.ingest.updates import subject_of
from memstrata.models import MemoryRecord, Scope
from memstrata.retrieve.head_order import (
    FEATURES,
    SPAN,
    WEIGHTS,
    Item,
    head_features,
    held_in_place,
    model_order,
    order_head,
    query_type,
)
from memstrata.retrieve.pipeline import Hit
from memstrata.retrieve.presets import get_preset

JAN, JUL, NOW = "2025-01-05T09:00:00Z", "2025-07-20T10:00:00Z", "2025-08-01T00:00:00Z"
REPLY = "Sure, happy to help with that. Here are a few ideas to get you started."


def _turns(*said: str) -> list[dict[str, str]]:
    return [t for s in said for t in ({"role": "user", "content": s}, {"role": "assistant", "content": REPLY})]


def _gym_said_in_passing(mem: Memory, uid: str) -> None:
    mem.add(_turns("I train at PureGym in the evenings, usually legs and back."), user_id=uid,
            conversation_id="s1", timestamp=JAN)
    mem.add(_turns("Is a sauna after lifting a good idea? The one at Third Space is always free on Sundays."),
            user_id=uid, conversation_id="s2", timestamp=JUL)


def test_a_new_value_said_in_passing_comes_first(real_mem: Memory, uid: str) -> None:
    _gym_said_in_passing(real_mem, uid)
    hits = real_mem.search("Which gym do I go to?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "Third Space" in hits[0]["memory"], [h["memory"] for h in hits]
    assert all("head_order" in h["stages"] for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    # a question about someone else is left to the score order, also when the user speaks in it
    for about in ("Which gym does my brother go to?", "Which gym should I book for her?"):
        other = real_mem.search(about, user_id=uid, limit=5, now=NOW, explain=True)
        assert all("head_order" not in h["stages"] for h in other["results"]), about


def test_by_score_alone_the_old_gym_came_first(store_url: str, minilm, uid: str) -> None:  # type: ignore[no-untyped-def]
    # What the stage changes: the same memories in score order put PureGym first.
    with Memory(store_url, embedder=minilm, preset=get_preset("balanced", head_order=False)) as mem:
        _gym_said_in_passing(mem, uid)
        hits = mem.search("Which gym do I go to?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "PureGym" in hits[0]["memory"], [h["memory"] for h in hits]
    assert all("head_order" not in h["stages"] for h in hits)


def test_a_partners_job_is_not_the_users(real_mem: Memory, uid: str) -> None:
    real_mem.add(_turns("Hi again. New year, new job: I've left teaching and joined Zalando as a UX writer."),
                 user_id=uid, conversation_id="s1", timestamp=JAN)
    real_mem.add(_turns("My partner Lukas works at a bike shop in Prenzlauer Berg. Any gift ideas for him?"),
                 user_id=uid, conversation_id="s2", timestamp=JUL)
    hits = real_mem.search("Where do I work?", user_id=uid, limit=5, now=NOW)["results"]
    assert "Zalando" in hits[0]["memory"], [h["memory"] for h in hits]


@pytest.mark.parametrize("text,whose", [
    ("My partner Lukas works at a bike shop in Prenzlauer Berg.", "partner"),
    ("my girlfriend Kayla loves matcha", "girlfriend"),
    # said of the two of them, or naming who the partner is: the user's own
    ("My partner and I moved to Leeds in March.", "user"),
    ("My wife and I bought a house in Bath.", "user"),
    ("My girlfriend is Kayla.", "user"),
])
def test_whose_statement_it_is(text: str, whose: str) -> None:
    assert subject_of(text) == whose


# The stage itself: hits made by hand and the real statement reader.
SCOPE = Scope(user_id="u")


def _hits(texts: list[str], roles: list[str] | None = None) -> list[Hit]:
    return [Hit(MemoryRecord(id=f"m{n}", scope=SCOPE, text=t, created_at=100.0 + n, updated_at=100.0 + n,
                             valid_from=100.0 + n, source_role=(roles or ["user"] * len(texts))[n]),
                1.0 - 0.1 * n, {"dense": 0.5 - 0.05 * n})
            for n, t in enumerate(texts)]


@pytest.mark.parametrize("query,kind", [
    ("Who is my dentist?", "who"), ("How much do I pay in rent?", "amount"), ("What time do I start work?", "amount"),
    ("Where do I live now?", "where"), ("Which days am I in the office?", "when"), ("What phone do I have?", "what"),
])
def test_the_kind_of_answer_a_question_wants(query: str, kind: str) -> None:
    assert query_type(query) == kind


def test_features_read_what_the_stages_recorded() -> None:
    items = [Item("Training Tuesday and Saturday these days.", "fact", "user", 200.0, 1.0,
                  {"dense": 0.5, "subject": 1.25, "attribute": 1.2}),
             Item("What are you training for?", "message", "assistant", 100.0, 0.5,
                  {"dense": 0.3, "sentence": 0.4, "assistant": 0.7, "outdated": 1.0})]
    x = head_features(items, "Which days do I train?", StatementWords())
    assert x.shape == (2, len(FEATURES))
    col = {name: x[:, k].tolist() for k, name in enumerate(FEATURES)}
    assert col["score_share"] == [1.0, 0.5]
    assert col["relevance"] == [0.5, 0.4]
    assert col["own_subject"] == [1.0, 0.0] and col["same_attribute"] == [1.0, 0.0]
    assert col["assistant"] == [0.0, 1.0] and col["assistant_damped"] == [0.0, 1.0] and col["outdated"] == [0.0, 1.0]
    assert col["when_time"] == [1.0, 0.0]  # the question asks which days; only the first names one
    assert col["age_rank"] == [0.0, 1.0]  # the first is the newer
    assert col["tentative"] == [0.0, 1.0]  # the reply ends in a question and says nothing else
    assert col["message"] == [0.0, 1.0] and col["fact"] == [1.0, 0.0]


def test_order_follows_the_weights_and_scores_still_fall() -> None:
    hits = _hits(["The gym is busy in the evenings.", "I go to Third Space near work.", "Gyms are pricey."])
    before = [h.score for h in hits]
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("names_something")] = 5.0  # only a result that names something can lead
    out = order_head(hits, "Which gym do I go to?", StatementWords(), weights=w)
    assert [h.record.id for h in out] == ["m1", "m0", "m2"]
    assert [h.score for h in out] == before  # the scores are handed out again in the new order
    assert all("head_order" in h.stages for h in out)


def test_only_the_first_span_results_move_and_no_weights_change_nothing() -> None:
    texts = [f"Note number {n} about the week." for n in range(SPAN + 3)]
    texts[-1] = "I work at Aviva."
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("where_name")] = 50.0
    hits = order_head(_hits(texts), "Where do I work?", StatementWords(), weights=w)
    assert hits[-1].record.text == "I work at Aviva."  # beyond the span: not read, not moved
    same = order_head(_hits(texts), "Where do I work?", StatementWords(), weights=np.zeros(len(FEATURES)))
    assert [h.record.id for h in same] == [f"m{n}" for n in range(SPAN + 3)]
    assert all("head_order" not in h.stages for h in same)


def test_the_shipped_weights_are_one_per_feature() -> None:
    assert WEIGHTS.shape == (len(FEATURES),) and np.isfinite(WEIGHTS).all() and WEIGHTS.any()


def test_a_pleasantry_or_a_bare_request_keeps_its_place() -> None:
    hits = _hits(["Moving in March.", "Congratulations on the move!", "I'll live in Alfama, near the castle."],
                 roles=["user", "assistant", "user"])
    hits[1].stages["pleasantry"] = 0.2  # damped by an earlier stage for what it is
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("log_rank")] = 5.0  # the model would turn the order round
    out = order_head(hits, "Where will I live?", StatementWords(), weights=w)
    assert [h.record.id for h in out] == ["m2", "m1", "m0"]  # the others swap round it
    assert model_order([0.0, 9.0, 1.0, 2.0], [False, True, False, False]) == [3, 1, 2, 0]
    assert held_in_place({"tentative": 0.4}) and not held_in_place({"dense": 0.5, "subject": 1.25})


def test_what_was_said_on_other_days_is_read_through_the_public_api(real_mem: Memory, uid: str) -> None:
    real_mem.add(_turns("I lift at PureGym on Mondays and Thursdays after work."), user_id=uid,
                 conversation_id="s1", timestamp=JAN)
    real_mem.add(_turns("Did legs at Third Space last night and I can barely walk today."), user_id=uid,
                 conversation_id="s2", timestamp=JUL)
    hits = real_mem.search("Which gym do I go to?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "Third Space" in hits[0]["memory"], [h["memory"] for h in hits]
    old = next(h for h in hits if "PureGym" in h["memory"])
    new = hits[0]
    # the January statement has a later answer to the same question, the July one an earlier answer
    assert 0 < old["stages"]["later_near"] <= old["stages"]["later_answer"] <= 1
    assert "later_answer" not in new["stages"] and 0 < new["stages"]["earlier_answer"] <= 1
    # the assistant's reply is no statement of the user's
    assert all("later_answer" not in h["stages"] and "earlier_answer" not in h["stages"]
               for h in hits if h["memory"] == REPLY)
