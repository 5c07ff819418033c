"""A long message whose answer to a question about now was replaced since reads as earlier, below the
statement that replaced it, even when that statement is far from the question in meaning.

Real MiniLM embedder, real text, public API, on SQLite and PostgreSQL, and on an encrypted SQLite store.
"""

from __future__ import annotations

import base64

from memstrata import Memory

T1, T2 = "2024-03-07T18:30:00Z", "2024-10-21T08:00:00Z"
NOW = "2024-12-01T09:00:00Z"
LONG = ("Could you help me write an email to my landlord? We live in Stoneybatter, the rent is €1,700 a month "
        "and he wants to put it up again. Is there a cap on increases here? My partner Lena is really worried "
        "about it.")
MOVED = "Big news, we moved to Phibsborough in October! Way more room for the kids."
BANK = "Hi, money question. I've banked with Ulster Bank since I moved here and the fees are getting silly."
REPLY = ("Ulster Bank charges a quarterly maintenance fee unless you keep a minimum balance. If the fees bother "
         "you, compare current accounts: several banks here have no monthly fee, and moving a salary over "
         "takes about a week.")
SWITCHED = "Quick one: I switched from Ulster Bank to Bunq last month, way cheaper."


def _story(m: Memory, uid: str) -> None:
    m.add([{"role": "user", "content": LONG}], user_id=uid, conversation_id="s1", timestamp=T1)
    m.add([{"role": "user", "content": MOVED}], user_id=uid, conversation_id="s2", timestamp=T2)


def test_the_replacing_statement_comes_first_and_the_message_names_it(real_mem: Memory, uid: str) -> None:
    _story(real_mem, uid)
    everything = real_mem.get_all(user_id=uid, include_superseded=True, limit=100)["results"]
    replaced = [m for m in everything if "Stoneybatter" in m["memory"] and m["kind"] != "message"]
    assert replaced and all(m["superseded_by"] for m in replaced), "ingestion replaced the fact it drew"
    message = next(m for m in everything if m["memory"] == LONG)
    assert message["superseded_by"] is None, "the message itself stays current, as said"

    hits = real_mem.search("Which part of Dublin do we live in?", user_id=uid, limit=5, now=NOW)["results"]
    texts = [h["memory"] for h in hits]
    assert "Phibsborough" in texts[0], texts
    said = next(h for h in hits if h["memory"] == LONG)
    assert said["revised_by"] == hits[0]["id"]
    assert texts.index(LONG) > 0


def test_what_else_the_message_said_is_left_as_it_was(real_mem: Memory, uid: str) -> None:
    _story(real_mem, uid)
    hits = real_mem.search("What is my partner's name?", user_id=uid, limit=5, now=NOW)["results"]
    lena = [h for h in hits if "Lena" in h["memory"]]
    assert lena and not any(h.get("revised_by") for h in lena), [(h["memory"], h.get("revised_by")) for h in hits]


def test_questions_about_then_keep_the_message_first(real_mem: Memory, uid: str) -> None:
    _story(real_mem, uid)
    then = real_mem.search("Which part of Dublin do we live in?", user_id=uid, limit=5,
                           as_of="2024-06-01T00:00:00Z")["results"]
    assert then and "Stoneybatter" in then[0]["memory"], [h["memory"] for h in then]
    assert not any("Phibsborough" in h["memory"] for h in then)


def test_a_filter_the_replacing_statement_fails_keeps_it_out(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": LONG}], user_id=uid, conversation_id="s1", timestamp=T1,
                 metadata={"topic": "home"})
    real_mem.add([{"role": "user", "content": MOVED}], user_id=uid, conversation_id="s2", timestamp=T2,
                 metadata={"topic": "news"})
    hits = real_mem.search("Which part of Dublin do we live in?", user_id=uid, limit=5, now=NOW,
                           filters={"topic": "home"})["results"]
    assert hits and not any("Phibsborough" in h["memory"] for h in hits), [h["memory"] for h in hits]



def test_an_assistant_reply_about_what_was_replaced_reads_as_earlier(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": BANK}, {"role": "assistant", "content": REPLY}], user_id=uid,
                 conversation_id="s1", timestamp=T1)
    real_mem.add([{"role": "user", "content": SWITCHED}], user_id=uid, conversation_id="s2", timestamp=T2)
    everything = real_mem.get_all(user_id=uid, include_superseded=True, limit=100)["results"]
    assert any("Ulster Bank" in m["memory"] and m["superseded_by"] for m in everything), \
        [(m["memory"], m["superseded_by"]) for m in everything]
    hits = real_mem.search("Which bank am I with?", user_id=uid, limit=5, now=NOW)["results"]
    texts = [h["memory"] for h in hits]
    assert "Bunq" in texts[0], texts
    reply = [h for h in hits if h["memory"] == REPLY]
    assert reply and reply[0]["revised_by"], texts
    assert texts.index(REPLY) > texts.index(texts[0])


def test_a_short_reply_that_carries_the_assistants_words_reads_as_earlier(real_mem: Memory, uid: str) -> None:
    real_mem.add([{"role": "user", "content": BANK}, {"role": "assistant", "content": REPLY},
                  {"role": "user", "content": "cheers, good to know"}], user_id=uid, conversation_id="s1",
                 timestamp=T1)
    real_mem.add([{"role": "user", "content": SWITCHED}], user_id=uid, conversation_id="s2", timestamp=T2)
    hits = real_mem.search("Which bank am I with?", user_id=uid, limit=5, now=NOW)["results"]
    texts = [h["memory"] for h in hits]
    assert "Bunq" in texts[0], texts
    echoes = [h for h in hits[:3] if "(in reply to:" in h["memory"]]
    assert echoes and all(h["revised_by"] for h in echoes), [(h["memory"][:60], h.get("revised_by")) for h in hits]


def test_an_encrypted_store_reads_the_replaced_part_too(tmp_path, minilm) -> None:  # type: ignore[no-untyped-def]
    from memstrata.secure import secure_memory

    m = secure_memory(f"sqlite:///{tmp_path}/sealed.db", master_key=base64.b64encode(b"k" * 32).decode(),
                      embedder=minilm)
    try:
        _story(m, "sealed-user")
        hits = m.search("Which part of Dublin do we live in?", user_id="sealed-user", limit=5, now=NOW)["results"]
        assert "Phibsborough" in hits[0]["memory"], [h["memory"] for h in hits]
        assert next(h for h in hits if h["memory"] == LONG)["revised_by"] == hits[0]["id"]
    finally:
        m.close()
