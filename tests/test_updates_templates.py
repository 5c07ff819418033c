"""Updates found by attribute template: a statement no family settles replaces the user's statement of the
same attribute when it gives another value. Real MiniLM embedder, real text, public API, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memstrata import IngestConfig, Memory
from memstrata.ingest.templates import templates

T1, T2 = "2025-03-01T10:00:00Z", "2025-09-03T18:00:00Z"
BETWEEN = "2025-04-01T00:00:00Z"

# kind: (first statement, later statement, question, old value, new value, said as a change)
BY_TEMPLATE = {
    "bank": ("Our joint account is with Nationwide.", "Our joint account is with Starling, the app is much better.",
             "Which bank is our joint account with?", "Nationwide", "Starling", False),
    "energy": ("Our gas and electricity come from Bulb.", "Switched the gas and electricity to E.ON.",
               "Who supplies our energy?", "Bulb", "E.ON", True),
    "broadband": ("Broadband is through Virgin Media, it drops out every evening.",
                  "Broadband comes from Hyperoptic these days, no more dropouts.",
                  "Who is my broadband provider?", "Virgin", "Hyperoptic", True),
}


@pytest.fixture
def tpl_mem(store_url: str, minilm) -> Iterator[Memory]:  # type: ignore[no-untyped-def]
    """The real embedder with updates by attribute template switched on."""
    m = Memory(store_url, embedder=minilm, ingest=IngestConfig(template_updates=True))
    yield m
    m.close()


def _said(m: Memory, uid: str, old: str, new: str) -> dict:
    m.add(old, user_id=uid, timestamp=T1)
    return m.add(new, user_id=uid, timestamp=T2)


def test_a_template_masks_the_values_and_keeps_the_frame() -> None:
    old, new = templates(["I work at Ocado in the robotics team.", "I work at Monzo now."])
    assert "ocado" in old.values and "monzo" in new.values
    assert "[X]" in old.text and "ocado" not in old.text and "now" not in new.text
    assert old.text.startswith("i work at [X]") and new.text.startswith("i work at [X]")
    (sister,) = templates(["My sister uses 1Password at work."])
    assert sister.someone_else and not old.someone_else


@pytest.mark.parametrize("kind", sorted(BY_TEMPLATE))
def test_a_new_value_in_other_words_replaces_the_old_one(tpl_mem: Memory, uid: str, kind: str) -> None:
    old, new, question, old_value, new_value, marked = BY_TEMPLATE[kind]
    _said(tpl_mem, uid, old, new)
    top = tpl_mem.search(question, user_id=uid, limit=3, now=T2)["results"]
    assert new_value.lower() in top[0]["memory"].lower(), top
    assert not any(old_value.lower() in h["memory"].lower() and new_value.lower() not in h["memory"].lower()
                   for h in top), f"the old value is still presented as current: {top}"
    everything = tpl_mem.get_all(user_id=uid, include_superseded=True)["results"]
    replaced = [x for x in everything if old_value.lower() in x["memory"].lower() and x["superseded_by"]]
    assert replaced and all(x["valid_to"] for x in replaced)
    then = tpl_mem.search(question, user_id=uid, limit=3, as_of=BETWEEN)["results"]
    assert any(old_value.lower() in h["memory"].lower() for h in then), then
    history = [e["event"] for e in tpl_mem.history(replaced[0]["id"], user_id=uid)]
    assert history[0] == "ADD" and "SUPERSEDE" in history, history
    conflicts = tpl_mem.conflicts(user_id=uid, status="all")["results"]
    if marked:  # a change said as such needs no conflict record
        assert conflicts == [], conflicts
    else:  # an unmarked one is recorded, linking the old value to the new one
        (c,) = conflicts
        assert old_value in tpl_mem.get(c["old_memory_id"], user_id=uid)["memory"]
        assert new_value in tpl_mem.get(c["new_memory_id"], user_id=uid)["memory"]


@pytest.mark.parametrize("later", [
    "My sister banks with Starling and loves it.",  # someone else's fact
    "Should I move my savings to Starling?",  # a question
    "I'd love to bank with Starling one day.",  # a wish
    "If I ever went freelance I'd bank with Starling.",  # a supposition
])
def test_others_questions_and_wishes_replace_nothing(tpl_mem: Memory, uid: str, later: str) -> None:
    r = _said(tpl_mem, uid, "My bank is Nationwide, have been with them for years.", later)
    assert not any(x.get("supersedes") for x in r["results"]), r["results"]
    current = [x["memory"] for x in tpl_mem.get_all(user_id=uid)["results"]]
    assert any("Nationwide" in t for t in current), current


def test_a_count_leaves_the_names_and_a_repeat_replaces_nothing(tpl_mem: Memory, uid: str) -> None:
    tpl_mem.add([{"role": "user", "content": "My two cats are called Pim and Bo."},
                  {"role": "user", "content": "My bank is Nationwide."}], user_id=uid, timestamp=T1)
    r = tpl_mem.add([{"role": "user", "content": "Adopted a third cat, so three cats now."},
                      {"role": "user", "content": "Still banking with Nationwide, no complaints."}],
                     user_id=uid, timestamp=T2)
    current = " ".join(x["memory"] for x in tpl_mem.get_all(user_id=uid)["results"])
    assert "Pim" in current and "My bank is Nationwide" in current, r["results"]


def test_by_default_the_old_value_stays(real_mem: Memory, uid: str) -> None:
    old, new, question, old_value, new_value, _ = BY_TEMPLATE["bank"]
    _said(real_mem, uid, old, new)
    current = [x["memory"] for x in real_mem.get_all(user_id=uid)["results"]]
    assert any(old_value in t for t in current) and any(new_value in t for t in current), current
