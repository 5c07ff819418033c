"""A question asks in the base form ("Where did I grow up?"); the user said it in the past ("where I grew up")."""

from __future__ import annotations

from memstrata import Memory
from memstrata.core.text import query_terms
from memstrata.retrieve.query_words import with_past_forms


def test_irregular_past_forms_join_the_keyword_terms() -> None:
    assert query_terms(with_past_forms("Where did I grow up?")) == ["grow", "grew", "grown"]
    assert query_terms(with_past_forms("What did I buy for Mum?")) == ["buy", "mum", "bought"]
    # a regular verb is the stemmer's; a query with no such verb is left as it is
    assert with_past_forms("Where did I move to?") == "Where did I move to?"
    assert with_past_forms("") == ""


def test_a_statement_in_the_past_is_a_keyword_match_through_the_public_api(mem: Memory, uid: str) -> None:
    mem.add([{"role": "user", "content": "Old school mates from Leicester, where I grew up, are coming for dinner."},
             {"role": "user", "content": "My tomatoes are growing fast this year."}],
            user_id=uid, infer=False)
    hits = mem.search("Where did I grow up?", user_id=uid, limit=5, explain=True)["results"]
    leicester = next(h for h in hits if "Leicester" in h["memory"])
    assert "keyword" in leicester["stages"], leicester["stages"]
