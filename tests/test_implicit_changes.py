"""Changes nobody announced raise an open conflict record and supersede nothing.

Real MiniLM embedder, real text, public API, on SQLite and PostgreSQL; plus the pair model on its own.
"""

from __future__ import annotations

import numpy as np

from memstrata import IngestConfig, Memory
from memstrata.ingest import implicit_changes as ic

JAN, MAY, JUN = "2025-01-12T09:00:00Z", "2025-05-03T18:00:00Z", "2025-06-10T18:00:00Z"

BEFORE = [
    {"role": "user", "content": "Hi, I need help with my piano practice. I practise for 20 minutes a day and I'm "
                                "working through Grade 3 pieces."},
    {"role": "assistant", "content": "Short daily practice is the right habit. Start with scales, then one piece "
                                     "in small sections, slowly."},
]
LATER = [
    {"role": "user", "content": "I practise for 45 minutes a day and the Grade 4 scales are tricky."},
    {"role": "assistant", "content": "Split the time: ten minutes of scales, then the pieces, hands separately."},
]


def _memory_text(m: Memory, memory_id: str, user: str) -> str:
    return m.get(memory_id, user_id=user)["memory"]


def test_a_new_value_said_plainly_raises_an_open_conflict_and_keeps_both(real_mem: Memory, uid: str) -> None:
    real_mem.add(BEFORE, user_id=uid, conversation_id="s1", timestamp=JAN)
    out = real_mem.add(LATER, user_id=uid, conversation_id="s2", timestamp=MAY)
    records = real_mem.conflicts(user_id=uid)["results"]
    pairs = [(_memory_text(real_mem, c["old_memory_id"], uid), _memory_text(real_mem, c["new_memory_id"], uid))
             for c in records]
    assert any("20 minutes" in old and "45 minutes" in new for old, new in pairs), pairs
    c = next(c for c, (old, new) in zip(records, pairs, strict=True) if "20 minutes" in old and "45 minutes" in new)
    assert c["status"] == "open" and c["subject"] == "user"
    assert "45 minutes" in c["new_value"] and "20 minutes" in c["old_value"]
    # nothing was superseded: the old statement is still current and still found
    old = real_mem.get(c["old_memory_id"], user_id=uid)
    assert old.get("superseded_by") is None and old.get("valid_to") is None
    # add names the record on the message that raised it
    named = [r for r in out["results"] if c["id"] in r.get("conflicts", [])]
    assert named and named[0]["id"] == c["new_memory_id"]


def test_questions_and_other_topics_raise_nothing(real_mem: Memory, uid: str) -> None:
    real_mem.add(BEFORE, user_id=uid, conversation_id="s1", timestamp=JAN)
    real_mem.add([{"role": "user", "content": "Would practising for 45 minutes a day be too much for Grade 4?"},
                  {"role": "assistant", "content": "Not if you take a short break halfway through."},
                  {"role": "user", "content": "My sister visits from Toronto next week, any ideas for a day out?"}],
                 user_id=uid, conversation_id="s2", timestamp=MAY)
    assert real_mem.conflicts(user_id=uid)["results"] == []


def test_the_check_can_be_turned_off(store_url: str, minilm, uid: str) -> None:  # type: ignore[no-untyped-def]
    with Memory(store_url, embedder=minilm, ingest=IngestConfig(implicit_conflicts=False)) as m:
        m.add(BEFORE, user_id=uid, conversation_id="s1", timestamp=JAN)
        m.add(LATER, user_id=uid, conversation_id="s2", timestamp=MAY)
        assert m.conflicts(user_id=uid, status=None)["results"] == []


def test_one_record_per_pair_across_later_restatements(real_mem: Memory, uid: str) -> None:
    real_mem.add(BEFORE, user_id=uid, conversation_id="s1", timestamp=JAN)
    real_mem.add(LATER, user_id=uid, conversation_id="s2", timestamp=MAY)
    real_mem.add(LATER, user_id=uid, conversation_id="s3", timestamp=JUN)  # said again word for word: a merge
    records = real_mem.conflicts(user_id=uid)["results"]
    assert len({(c["old_memory_id"], c["new_memory_id"]) for c in records}) == len(records)


def test_the_pair_model_scores_a_change_above_an_unrelated_pair(minilm) -> None:  # type: ignore[no-untyped-def]
    texts = ["I weigh 82 kg and train on Mondays.", "I weigh 76 kg these days.", "My sister lives in Toronto."]
    vecs = np.asarray(minilm.embed(texts), dtype=np.float32)

    def scored(i: int, j: int) -> float:
        from memstrata.models import MemoryRecord, Scope

        rec = MemoryRecord(id="old", scope=Scope(user_id="u"), text=texts[i], created_at=0.0, updated_at=0.0,
                           valid_from=0.0)
        p = ic.Pair(rec, texts[i], texts[j], float(vecs[i] @ vecs[j]), 0.2, 0, vecs[i])
        x = ic.features(p, vecs[j], minilm.embed)
        assert x.shape == (len(ic.FEATURES),) and np.isfinite(x).all()
        return ic.score(x)

    assert scored(0, 1) >= ic.THRESHOLD > scored(2, 1)
    assert scored(1, 1) != scored(2, 1)  # the score reads the pair, not only the new sentence


def test_settling_the_record_keeps_the_new_value(real_mem: Memory, uid: str) -> None:
    real_mem.add(BEFORE, user_id=uid, conversation_id="s1", timestamp=JAN)
    real_mem.add(LATER, user_id=uid, conversation_id="s2", timestamp=MAY)
    c = real_mem.conflicts(user_id=uid)["results"][0]
    real_mem.resolve_conflict(c["id"], keep="new", user_id=uid)
    old = real_mem.get(c["old_memory_id"], user_id=uid)
    assert old["superseded_by"] == c["new_memory_id"]
    assert real_mem.conflicts(user_id=uid)["results"] == []
    assert real_mem.conflicts(user_id=uid, status="resolved")["results"][0]["id"] == c["id"]


def test_a_message_without_a_timestamp_is_read_as_said_now(real_mem: Memory, uid: str) -> None:
    real_mem.add(BEFORE, user_id=uid, conversation_id="s1", timestamp=JAN)
    real_mem.add(LATER, user_id=uid, conversation_id="s2")  # no timestamp: said at the time of the call
    records = real_mem.conflicts(user_id=uid)["results"]
    assert any("45 minutes" in c["new_value"] and "20 minutes" in c["old_value"] for c in records), records
