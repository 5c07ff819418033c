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
