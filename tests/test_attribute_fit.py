"""A result that clearly sets another attribute than the one a query asks about ("These days I take the tram
to the office" for "Where do I work?") weighs less; one that sets the asked attribute weighs more.

End to end with the real MiniLM embedder on real text through the public API; the stage itself with the real
statement reader and real vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import Memory
from memstrata.ingest.prototypes import PROTOTYPES, family_scores, family_table
from memstrata.ingest.statement_words import StatementWords
from memstrata.models import MemoryRecord, Scope
from memstrata.retrieve.attribute_fit import OTHER_ATTRIBUTE, SAME_ATTRIBUTE, fit_attribute
from memstrata.retrieve.pipeline import Hit

T1, NOW = "2025-03-04T08:30:00Z", "2025-06-01T09:00:00Z"
JOB = "I got a job at Aviva in the claims team."
WALK = "These days I take the tram to the office."
OTHER = ["My sister Orla is getting married in Galway in June.", "I've been trying to cut down on coffee lately."]


def _said(mem: Memory, uid: str) -> None:
    mem.add([{"role": "user", "content": t} for t in (JOB, WALK, *OTHER)], user_id=uid, conversation_id="s1",
            timestamp=T1)


def test_the_employer_comes_before_the_way_to_work(real_mem: Memory, uid: str) -> None:
    _said(real_mem, uid)
    hits = real_mem.search("Where do I work?", user_id=uid, limit=5, now=NOW, explain=True)["results"]
    assert "Aviva" in hits[0]["memory"], [h["memory"] for h in hits]
    walk = next(h for h in hits if "tram" in h["memory"])
    assert walk["stages"]["attribute"] == OTHER_ATTRIBUTE


def test_the_way_to_work_comes_first_when_asked_for(real_mem: Memory, uid: str) -> None:
    _said(real_mem, uid)
    hits = real_mem.search("How do I get to work?", user_id=uid, limit=5, now=NOW)["results"]
    assert "tram" in hits[0]["memory"], [h["memory"] for h in hits]


# The stage itself: hits made by hand, the real reader and the vectors the real embedder gives their texts.
SCOPE = Scope(user_id="u")


@pytest.fixture(scope="module")
def reader(minilm) -> StatementWords:  # type: ignore[no-untyped-def]
    return StatementWords(minilm.embed)


def _run(minilm, reader: StatementWords, query: str, texts: list[str]) -> list[Hit]:  # type: ignore[no-untyped-def]
    hits = [Hit(MemoryRecord(id=f"m{n}", scope=SCOPE, text=t, created_at=100.0 + n, updated_at=100.0 + n,
                             valid_from=100.0 + n, source_role="user"), 1.0 - 0.01 * n)
            for n, t in enumerate(texts)]
    vecs = {h.record.id: np.asarray(v, dtype=np.float32) for h, v in zip(hits, minilm.embed(texts), strict=True)}
    qvec = np.asarray(minilm.embed([query])[0], dtype=np.float32)
    return fit_attribute(hits, vecs, qvec, reader, 10)


def test_each_result_is_weighed_by_the_attribute_it_sets(minilm, reader: StatementWords) -> None:  # type: ignore[no-untyped-def]
    out = _run(minilm, reader, "What phone do I have?",
               ["These days I take the tram to the office", "My phone is a Pixel 8", "Thanks, that helps!"])
    by_text = {h.record.text: h for h in out}
    assert out[0].record.text == "My phone is a Pixel 8"
    assert by_text["My phone is a Pixel 8"].stages["attribute"] == SAME_ATTRIBUTE
    assert by_text["These days I take the tram to the office"].stages["attribute"] == OTHER_ATTRIBUTE
    assert "attribute" not in by_text["Thanks, that helps!"].stages  # no attribute: its score stays
    assert by_text["Thanks, that helps!"].score == pytest.approx(0.98)


def test_a_query_in_no_known_attribute_leaves_the_order_alone(minilm, reader: StatementWords) -> None:  # type: ignore[no-untyped-def]
    texts = ["These days I take the tram to the office", "My phone is a Pixel 8"]
    out = _run(minilm, reader, "What did we talk about last time?", texts)
    assert [h.record.text for h in out] == texts
    assert not any("attribute" in h.stages for h in out)


def test_a_reader_without_a_model_names_no_attribute(minilm) -> None:  # type: ignore[no-untyped-def]
    vec = np.asarray(minilm.embed(["Where do I work?"])[0], dtype=np.float32)
    assert StatementWords().attribute(vec) is None and StatementWords().attributes(vec[None, :])[0] == []
    assert StatementWords(minilm.embed).attribute(vec) == "job"


def test_the_table_of_attributes_holds_each_attributes_nearest_example(minilm) -> None:  # type: ignore[no-untyped-def]
    texts = ["I take the tram to the office", "My phone is a Pixel 8", "Thanks, that helps!"]
    vecs = np.asarray(minilm.embed(texts), dtype=np.float32)
    names, table = family_table(vecs, minilm.embed)
    assert table.shape == (3, len(PROTOTYPES)) and names == list(PROTOTYPES)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for family in ("commute", "phone_model", "diet"):
        ex = np.asarray(minilm.embed(list(PROTOTYPES[family])), dtype=np.float32)
        ex /= np.linalg.norm(ex, axis=1, keepdims=True)
        assert table[:, names.index(family)] == pytest.approx((unit @ ex.T).max(axis=1), abs=1e-4)
    assert names[int(np.argmax(table[0]))] == "commute" and names[int(np.argmax(table[1]))] == "phone_model"
    assert family_scores(vecs[0], minilm.embed)[0] == ("commute", pytest.approx(float(table[0].max())))

