"""The speaker names of stored messages, read alone (what the speaker stage of a search needs)."""

from __future__ import annotations

import os

from memstrata import Memory
from memstrata.providers.embedders import HashEmbedder
from memstrata.secure import secure_memory


def _said(m: Memory, user: str) -> list[str]:
    out = m.add([{"role": "user", "name": "Caroline", "content": "I researched adoption agencies last week."},
                 {"role": "user", "name": " Melanie ", "content": "I painted a lake at sunrise."},
                 {"role": "assistant", "content": "Both sound lovely."}],
                user_id=user, conversation_id="c1", infer=False)
    return list(out["episodes"])


def test_names_of_stored_messages_by_id(mem: Memory, uid: str) -> None:
    ids = _said(mem, uid)
    scope = mem._open(uid, None, None, None)
    names = mem.store.episode_names(scope, [*ids, "no-such-episode"])
    assert names == {ids[0]: "Caroline", ids[1]: " Melanie "}  # kept as said; the search strips and folds case
    assert mem.store.episode_names(scope, []) == {}
    other = mem._open(uid + "-other", None, None, None)
    assert mem.store.episode_names(other, ids) == {}  # another scope reads none of them


def test_names_are_opened_when_the_store_is_encrypted(store_url: str, uid: str) -> None:
    m = secure_memory(store_url, master_key=os.urandom(32), embedder=HashEmbedder())
    try:
        ids = _said(m, uid)
        scope = m._open(uid, None, None, None)
        assert m.store.episode_names(scope, ids) == {ids[0]: "Caroline", ids[1]: " Melanie "}
        found = m.search("What did Caroline research?", user_id=uid)["results"]
        assert found and "adoption" in found[0]["memory"]
    finally:
        m.close()
