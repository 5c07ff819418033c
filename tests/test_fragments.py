"""No memory is a bare topic or a parser's misreading: "Also my phone." names a thing and says nothing of it, and
"im on giffgaff" (no apostrophe) is "I'm on giffgaff", not a pronoun and a verb "m".

The public API with the deterministic embedder (what is kept does not depend on the vectors), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import pytest

from memstrata import Memory

T1 = "2025-02-03T18:00:00Z"


def _kept(mem: Memory, uid: str, text: str) -> list[tuple[str, str]]:
    mem.add([{"role": "user", "content": text}], user_id=uid, conversation_id="s1", timestamp=T1)
    return [(m["kind"], m["memory"]) for m in mem.get_all(user_id=uid, limit=100)["results"]]


@pytest.mark.parametrize("said, topic", [
    ("also my phone. im on a prepaid plan with Lebara, 20 pounds a month, and it runs out fast.", "my phone"),
    ("My car. It's a Golf and the clutch is going.", "my car"),
    ("Oh and our rent. It went up again in March.", "our rent"),
])
def test_a_thing_named_alone_is_no_memory(mem: Memory, uid: str, said: str, topic: str) -> None:
    kept = _kept(mem, uid, said)
    assert not any(text.lower().rstrip(".").endswith(topic) and len(text.split()) <= 3 for _, text in kept), kept
    assert ("message", said) in kept  # the message itself stays findable as said


def test_a_thing_named_with_its_value_is_kept(mem: Memory, uid: str) -> None:
    kept = _kept(mem, uid, "My new car is a Golf.")
    assert any(kind != "message" and "Golf" in text for kind, text in kept), kept


@pytest.mark.parametrize("said, fact", [
    ("im on a prepaid plan with Lebara but it runs out fast", "I'm on a prepaid plan with Lebara"),
    ("ive got a new job at Lidl in Bootle", "I've got a new job at Lidl in Bootle"),
])
def test_i_am_without_its_apostrophe_reads_as_i_am(mem: Memory, uid: str, said: str, fact: str) -> None:
    kept = _kept(mem, uid, said)
    assert any(kind != "message" and text.startswith(fact) for kind, text in kept), kept
    assert not any(text.startswith(("I m", "I ve", "i m")) for _, text in kept), kept
