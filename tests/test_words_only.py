"""A keyword match with nothing in meaning counts for less: "second place" does not answer "who do I share my
place with?". Real MiniLM embedder, public API, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from memstrata import Memory
from memstrata.retrieve import pipeline

T1, T2, NOW = "2025-03-01T10:00:00Z", "2025-03-08T10:00:00Z", "2025-03-09T10:00:00Z"
QUESTION = "How many people do I share my place with?"
TURNS = [
    ("I live with two flatmates in a small flat near the river.", T1),
    ("we came second place in the chess tournament at the weekend!!", T2),
]


def _fill(m: Memory, uid: str) -> None:
    for text, ts in TURNS:
        m.add([{"role": "user", "content": text}], user_id=uid, timestamp=ts, infer=False)


def test_a_shared_word_without_meaning_ranks_below_the_answer(real_mem: Memory, uid: str) -> None:
    _fill(real_mem, uid)
    hits = real_mem.search(QUESTION, user_id=uid, limit=2, now=NOW, explain=True)["results"]
    assert "flatmates" in hits[0]["memory"], [h["memory"] for h in hits]
    chess = next(h for h in hits if "chess" in h["memory"])
    assert chess["stages"]["words_only"] == pipeline.WORDS_ONLY_SCALE
    assert "words_only" not in hits[0]["stages"]


def test_without_the_rule_the_shared_word_wins(real_mem: Memory, uid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "WORDS_ONLY_SCALE", 1.0)
    _fill(real_mem, uid)
    hits = real_mem.search(QUESTION, user_id=uid, limit=2, now=NOW)["results"]
    assert "chess" in hits[0]["memory"], [h["memory"] for h in hits]
