"""A named speaker's short fact: who said it counts in its vector, but no more than what was said."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from locomo_support import write_locomo
from memstrata.ingest.candidate import Candidate, Message
from memstrata.ingest.pipeline import EVIDENCE_KIND, embed_with_sentences
from memstrata.providers.embedders import HashEmbedder


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_a_named_fact_is_embedded_with_and_without_its_speaker_and_a_message_with_it() -> None:
    emb = HashEmbedder(64)
    msgs = [Message("user", "Their joy was infectious. We baked for the neighbours.", 0, "Audrey"),
            Message("user", "I run on Sundays.", 1)]
    fact = Candidate("Their joy was infectious.", 0.6, kind="relationship", source_indexes=[0])
    message = Candidate(msgs[0].content, 0.5, kind=EVIDENCE_KIND, source_indexes=[0])
    unnamed = Candidate("I run on Sundays.", 0.6, kind="fact", source_indexes=[1])
    vecs, _ = embed_with_sentences([fact, message, unnamed], msgs, emb.embed, sentences=False)
    both = _unit(emb.embed(["Audrey: Their joy was infectious."])[0] + emb.embed(["Their joy was infectious."])[0])
    assert np.allclose(vecs[0][0], both, atol=1e-6)
    assert np.allclose(vecs[1][0], emb.embed([f"Audrey: {msgs[0].content}"])[0], atol=1e-6)
    assert np.allclose(vecs[2][0], emb.embed(["I run on Sundays."])[0], atol=1e-6)


def test_short_facts_of_a_speaker_do_not_crowd_out_what_she_said(minilm) -> None:  # type: ignore[no-untyped-def]
    """With the name in front, a short fact of Audrey's sat nearer any question about Audrey than her message
    that answers it (five of these six did); with the name counted beside the words, one does."""
    answer = ("Hey! Sounds like you've been busy! I made some goodies recently to thank my neighbors for their "
              "pup-friendly homes. It was a small gesture but they loved it, and the dogs got treats too.")
    facts = ["Their joy was infectious.", "Nature always cheers me up.", "Nature is good for the soul.",
             "Nature has a way of making us feel alive and centered.", "Their happiness is everything to me.",
             "Nature really has awesome surprises."]
    msgs = [Message("user", answer, 0, "Audrey"), *(Message("user", f, i + 1, "Audrey") for i, f in enumerate(facts))]
    cands = [Candidate(answer, 0.5, kind=EVIDENCE_KIND, source_indexes=[0]),
             *(Candidate(f, 0.6, kind="relationship", source_indexes=[i + 1]) for i, f in enumerate(facts))]
    vecs, _ = embed_with_sentences(cands, msgs, minilm.embed, sentences=False)
    q = minilm.embed(["What did Audrey make to thank her neighbors?"])[0]
    near = [float(v[0] @ q) for v in vecs]
    assert sum(c > near[0] for c in near[1:]) <= 1, near


def test_locomo_quotes_every_category_beside_the_overall(tmp_path: Path) -> None:
    from memstrata.evaluation.locomo import render_markdown, run_locomo

    turns = [("Ann", "I adopted two dogs in 2019."), ("Bob", "I work at a bakery downtown.")]
    path = write_locomo(tmp_path / "locomo.json", turns, [
        {"question": "Where does Bob work?", "answer": "bakery", "evidence": ["D1:2"], "category": 4},
        {"question": "Where does Ann work?", "adversarial_answer": "bakery", "evidence": ["D1:2"], "category": 5}])
    result = run_locomo(path, systems=["bm25"], embedder="hash", progress=False, echo=False, out_dir=tmp_path / "o")
    bm25 = result["systems"]["bm25"]
    assert bm25["overall"]["n"] == 1 and bm25["all_categories"]["n"] == 2
    assert "evidence recall@10, all categories" in render_markdown(result, "cmd")


def test_a_short_turn_between_people_is_also_read_with_the_turn_it_answers() -> None:
    emb = HashEmbedder(64)
    msgs = [Message("user", "Is that the guitar you had made in Tokyo?", 0, "Dave"),
            Message("user", "Yes! It's got an octopus on it.", 1, "Calvin"),
            Message("user", "And a koi on the back.", 2, "Calvin"),
            Message("user", "Wow. " * 45, 3, "Dave"),
            Message("user", "Lovely.", 4)]
    cands = [Candidate(m.content, 0.5, kind=EVIDENCE_KIND, source_indexes=[m.index]) for m in msgs]
    fact = Candidate("Calvin's guitar has an octopus on it.", 0.6, kind="fact", source_indexes=[1])
    vecs, _ = embed_with_sentences([*cands, fact], msgs, emb.embed, sentences=False)
    # the reply: its own window first (what the other readings use), then the turn it answers with it
    assert len(vecs[1]) == 2
    assert np.allclose(vecs[1][0], emb.embed(["Calvin: Yes! It's got an octopus on it."])[0], atol=1e-6)
    assert np.allclose(vecs[1][1], emb.embed(["Dave: Is that the guitar you had made in Tokyo?\n"
                                              "Calvin: Yes! It's got an octopus on it."])[0], atol=1e-6)
    # not the first turn, not a speaker going on, not a long turn, not an unnamed one, not a fact
    assert [len(v) for v in vecs] == [1, 2, 1, 1, 1, 1]


def test_what_a_reply_is_about_finds_it_through_the_public_api(real_mem, uid: str) -> None:  # type: ignore[no-untyped-def]
    turns = [("Dave", "Hey Calvin, long time! How was the tour?"),
             ("Calvin", "Exhausting but amazing. Tokyo crowds are something else."),
             ("Dave", "I bet. I spent the weekend rebuilding the carburettor on the Mustang."),
             ("Calvin", "Nice, is it running yet?"),
             ("Dave", "Almost, still waiting for a gasket. Wait, is that the custom guitar your Japanese friend "
                      "painted for you?"),
             ("Calvin", "Yes! An octopus, for my two loves, art and the sea."),
             ("Dave", "So cool. I should get my dad's old Fender restored one day."),
             ("Calvin", "You should, old instruments have the best sound.")]
    real_mem.add([{"role": "user", "content": t, "name": n} for n, t in turns], user_id=uid,
                 conversation_id="d16", timestamp="2023-07-01T18:00:00Z")
    # Read alone, the reply sat fourth, below Dave's question and two of Calvin's turns about nothing painted.
    hits = real_mem.search("What is painted on Calvin's guitar?", user_id=uid, limit=2)["results"]
    assert any("octopus" in h["memory"] for h in hits), [h["memory"] for h in hits]
