"""Sentence vectors for long messages: a fact said in passing keeps a vector of its own.

A long message is embedded window by window (60 words each; an assistant's only by its first window), so a
one-sentence aside ("btw my sister's wedding is on the 14th") shares its vector with everything around it, and
turns that are wholly about the surrounding topic outrank it. Each sentence of a long user message is therefore
embedded too (``pipeline.SENTENCE_ROLES``), in the same call to the embedder as the message's windows, and
stored beside the message's memory (``WriteBatch.sentence_vectors``). Retrieval blends a memory's best sentence
with its window score (``Preset.sentence_weight``); the sentences are never results of their own.

Fenced code blocks are left out (code is found by keyword; its lines are not sentences), and so are sentences
too short to say anything on their own.
"""

from __future__ import annotations

import re

from memstrata.ingest.evidence import sentences

LONG_MESSAGE_WORDS = 40  # a message shorter than this is one vector already: its sentences add nothing
MIN_SENTENCE_WORDS = 4  # "Thanks, that works." is no evidence of anything
MAX_SENTENCE_WORDS = 60  # a longer sentence is cut: its opening says what it is about
MAX_SENTENCES = 24  # per message: bounds the embedding cost of one very long message

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INDENTED_CODE = re.compile(r"^(?: {4}|\t).*$", re.MULTILINE)
_LETTERS = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


def sentence_units(text: str) -> list[str]:
    """The sentences of ``text`` worth a vector of their own, in order; empty when the message is short or
    has fewer than two of them (its window vector already is its sentence vector)."""
    prose = _INDENTED_CODE.sub(" ", _FENCE.sub("\n", text))
    if len(prose.split()) < LONG_MESSAGE_WORDS:
        return []
    seen: set[str] = set()
    out: list[str] = []
    for sent in sentences(prose):
        words = sent.split()
        if len(words) < MIN_SENTENCE_WORDS or len(_LETTERS.findall(sent)) < MIN_SENTENCE_WORDS - 1:
            continue
        unit = " ".join(words[:MAX_SENTENCE_WORDS])
        key = unit.lower()
        if key in seen:
            continue
        seen.add(key)
        out.append(unit)
        if len(out) >= MAX_SENTENCES:
            break
    return out if len(out) >= 2 else []
