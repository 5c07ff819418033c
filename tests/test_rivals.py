"""What else the user said in answer to the same question, earlier or later (``memstrata.retrieve.rivals``):
the readings the head model weighs when two statements answer one question at different times.

On hits made by hand with the real statement reader; end to end (real MiniLM, public API) in
``tests/test_head_order.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from memstrata.ingest.statement_words import StatementWords
from memstrata.models import MemoryRecord, Scope
from memstrata.retrieve.head_order import FEATURES, WEIGHTS
from memstrata.retrieve.pipeline import Hit
from memstrata.retrieve.rivals import DAY, STAGES, mark_rivals

SCOPE = Scope(org_id="o", user_id="u")


def _hit(mid: str, text: str, day: float, dense: float, role: str = "user") -> Hit:
    at = 1_700_000_000.0 + day * DAY
    return Hit(MemoryRecord(id=mid, scope=SCOPE, text=text, created_at=at, updated_at=at, valid_from=at,
                            source_role=role), dense, {"dense": dense})


def _unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_each_own_statement_reads_the_ones_said_on_other_days() -> None:
    old = _hit("old", "I take the 6:52 train from Didcot to work.", 0, 0.6)
    new = _hit("new", "I cycle in along the canal, about 25 minutes each way.", 90, 0.3)
    reply = _hit("reply", "Cycling is a great way to start the day.", 90, 0.5, role="assistant")
    asked = _hit("asked", "Should I cycle to work in winter?", 95, 0.5)  # a question says nothing of how things are
    same_day = _hit("same", "The 6:52 is usually late on Mondays, I get the 7:20.", 0.2, 0.5)
    head = [old, reply, new, asked, same_day]
    vectors = {"old": _unit(1, 0, 0), "new": _unit(1, 1, 0), "reply": _unit(0, 1, 0), "asked": _unit(0, 1, 1),
               "same": _unit(1, 0, 1)}
    mark_rivals(head, vectors, {}, StatementWords(), span=8)
    cos = float(vectors["old"] @ vectors["new"])
    # the later answer is half as near the query as the old one: its share is 0.5, times their cosine
    assert old.stages["later_answer"] == pytest.approx(0.5, abs=1e-3)
    assert old.stages["later_near"] == pytest.approx(0.5 * cos, abs=1e-3)
    assert "earlier_answer" not in old.stages  # "same" was said on the same day: neither earlier nor later
    # seen from the new statement the old one is nearer the query than it: the share stops at 1
    assert new.stages["earlier_answer"] == 1.0 and new.stages["earlier_near"] == pytest.approx(cos, abs=1e-3)
    assert "later_answer" not in new.stages
    assert not any(s in reply.stages for s in STAGES)  # the assistant's words are no statement of the user's
    assert not any(s in asked.stages for s in STAGES)
    assert same_day.stages["later_answer"] == pytest.approx(0.6, abs=1e-3)  # "new", 90 days on: 0.3 / 0.5


def test_only_the_span_is_read_and_one_statement_reads_nothing() -> None:
    a = _hit("a", "I work at Ocado as a data analyst.", 0, 0.5)
    b = _hit("b", "I work at Monzo on the payments team.", 60, 0.5)
    vectors = {"a": _unit(1, 0), "b": _unit(1, 1)}
    mark_rivals([a, b], vectors, {}, StatementWords(), span=1)
    assert not any(s in a.stages for s in STAGES)
    mark_rivals([a, b], vectors, {}, StatementWords(), span=2)
    assert a.stages["later_answer"] == 1.0 and b.stages["earlier_answer"] == 1.0


def test_the_model_reads_them_and_weighs_a_near_later_answer_down() -> None:
    assert set(STAGES) <= set(FEATURES)
    # what the fit found: an earlier statement with a later one near it that answers the same question is
    # less likely the answer now
    assert WEIGHTS[FEATURES.index("later_near")] < 0
