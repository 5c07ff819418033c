"""'Let's …' plans keep their first word: the parser hangs "'s plan X" under "Let", and a memory built from
the predicate's subtree alone used to read "'s plan X"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memstrata.ingest.candidate import Message
from memstrata.ingest.rules import RulesExtractor

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Let's plan the Alpha project launch with John for next Monday.",
         "Let's plan the Alpha project launch with John for next Monday"),
        ("Let's book the venue in Porto for the offsite on May 3.", "Let's book the venue in Porto"),
        ("Let us meet Anna at the Lisbon office next Friday.", "Let us meet Anna at the Lisbon office"),
    ],
)
def test_lets_plans_keep_their_first_word(text: str, expected: str) -> None:
    found = RulesExtractor().extract([Message("user", text, 0)], NOW)
    assert found, f"no memory from {text!r}"
    assert found[0].text.startswith(expected), found[0].text
    assert not any(c.text.startswith(("'s", "’s")) for c in found)


def test_memory_add_stores_the_whole_plan() -> None:
    from memstrata import Memory

    with Memory("sqlite:///:memory:", embedder="hash") as m:
        out = m.add("Let's plan the Alpha project launch with John for next Monday.", user_id="u")
    texts = [r["memory"] for r in out["results"]]
    assert texts == ["Let's plan the Alpha project launch with John for next Monday"], texts
