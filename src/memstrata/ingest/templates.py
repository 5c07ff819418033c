"""Attribute templates: a statement with its values masked, so statements that set one attribute meet.

"I bank with Nationwide" and "Our joint account is with Starling" share little by their values, but with the
values put aside ("i bank with [X]", "our joint account is with [X]") what they say about the user is what
remains. A statement's template is its parse with named entities, numbers, proper nouns and capitalised
names, adjectives filling a complement and the modifiers of the noun filling an object masked as ``[X]`` (the
head noun stays: "soya milk" -> "[X] milk", it names the attribute), and the words that only mark time or
change ("now", "lately", "these days") left out. Templates are embedded with the store's embedder; a bounded
process-wide cache keeps each distinct template's vector (by model), so a statement's template is embedded
once per process, the first time it is compared.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from memstrata.ingest import syntax
from memstrata.ingest.nlp import parse_many
from memstrata.ingest.updates import ACTS_ON_USER

MASK = "[X]"
# Dependencies whose noun phrase fills the statement's value: objects, complements, appositions.
_VALUE_DEPS = frozenset({"dobj", "pobj", "attr", "oprd", "dative", "appos", "acomp", "npadvmod", "conj"})
_MODIFIERS = frozenset({"amod", "compound", "nummod", "nmod", "poss"})
_ENTITY_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "NORP", "WORK_OF_ART", "EVENT",
                            "LANGUAGE", "DATE", "TIME", "MONEY", "QUANTITY", "CARDINAL", "PERCENT", "ORDINAL"})
_DROP_POS = frozenset({"PUNCT", "INTJ", "ADV", "SPACE", "SYM", "X"})
_KEEP_WORDS = frozenset({"not", "n't", "never", "no"})  # negation is part of what is said
_DROP_WORDS = frozenset({"these", "days", "lol", "btw", "haha", "ok", "okay", "yeah", "honestly", "so", "and",
                         "but", "well", "oh", "anyway", "also"})
_PRONOUNS = frozenset({"PRON"})
_VALUE_POS = frozenset({"NOUN", "PROPN", "ADJ", "NUM"})


@dataclass(frozen=True)
class Template:
    text: str  # the statement with its values masked
    values: frozenset[str]  # the masked words, lower-case
    masked: int  # how many value spans were masked
    kept: int  # content words left unmasked (the frame)
    someone_else: bool  # its main clause is about another person ("My sister uses 1Password")


def templates(texts: Sequence[str]) -> list[Template]:
    """The template of each text (one batched parse)."""
    return [_template(doc) for doc in parse_many(list(texts))]


def _template(doc) -> Template:  # type: ignore[no-untyped-def]
    value = [False] * len(doc)
    for ent in doc.ents:
        if ent.label_ in _ENTITY_LABELS:
            for t in ent:
                value[t.i] = True
    for t in doc:
        named = t.i > 0 and t.is_title and t.lower_ != "i" and not doc[t.i - 1].is_sent_end \
            and doc[t.i - 1].text not in ".!?:;"  # "All my savings sit with Starling"
        proper = named or t.pos_ == "PROPN" and t.lower_ != "i" and (t.i > 0 or t.ent_type_ in _ENTITY_LABELS)
        if t.like_num or any(ch.isdigit() for ch in t.text) or proper:
            value[t.i] = True
        if t.dep_ in _VALUE_DEPS and t.pos_ in _VALUE_POS and t.lower_ not in _KEEP_WORDS:
            value[t.i] = t.pos_ != "NOUN"  # a common noun names the attribute ("rent", "bank"), not its value
            for c in t.children:
                if c.dep_ in _MODIFIERS and c.pos_ not in _PRONOUNS:
                    value[c.i] = True
    words: list[str] = []
    values: list[str] = []
    span: list[str] = []
    masked = kept = 0
    for t in doc:
        if value[t.i]:
            span.append(t.lower_)
            continue
        if span:
            values.append(" ".join(span))
            span = []
            if not words or words[-1] != MASK:
                words.append(MASK)
                masked += 1
        if (t.pos_ in _DROP_POS and t.lower_ not in _KEEP_WORDS) or t.lower_ in _DROP_WORDS:
            continue
        words.append(t.lower_)
        if t.pos_ in ("NOUN", "VERB", "ADJ") and not t.is_stop:
            kept += 1
    if span:
        values.append(" ".join(span))
        if not words or words[-1] != MASK:
            words.append(MASK)
            masked += 1
    return Template(" ".join(words), frozenset(values), masked, kept, _about_someone_else(doc))


def _about_someone_else(doc) -> bool:  # type: ignore[no-untyped-def]
    """Is the first clause's subject a person (not a role acting on the user's things, "Landlord bumped it"),
    with no clause of the statement about the speaker?"""
    kinds = []
    for t in doc:
        if t.dep_ in ("ROOT", "conj", "advcl", "ccomp") and t.pos_ in ("VERB", "AUX"):
            subj = syntax.subject_of(t)
            kind = syntax.classify_subject(subj)
            if subj is not None and any(c.dep_ == "prep" and c.lower_ == "of" and any(
                    g.dep_ == "pobj" and syntax.possessor(g) is not None for g in c.children) for c in subj.children):
                kind = "person"  # "One of my students won ...", "Some of our neighbours ..."
            unnamed = subj is not None and subj.i == 0 and subj.pos_ == "PROPN" and subj.ent_type_ != "PERSON"
            if kind == "person" and subj is not None and (subj.lower_ in ACTS_ON_USER or unnamed):
                kind = "thing"  # "Landlord bumped it", "Broadband is through Virgin Media" (capitalised, no name)
            kinds.append(kind)
    return bool(kinds) and kinds[0] == "person" and "first_person" not in kinds


class TemplateVectors:
    """Vectors of templates, by embedder and template text, kept for the process (bounded, thread-safe)."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, embed: Callable[[list[str]], np.ndarray], texts: Sequence[str]) -> list[np.ndarray]:
        owner = getattr(embed, "__self__", embed)
        model = (str(getattr(owner, "name", type(owner).__name__)), int(getattr(owner, "dim", 0) or 0))
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if (*model, t) not in self._seen))
        if missing:
            fresh = embed(missing)
            with self._lock:
                for text, vec in zip(missing, fresh, strict=True):
                    self._seen[(*model, text)] = vec
                while len(self._seen) > self._size:
                    self._seen.popitem(last=False)
        with self._lock:
            out = []
            for t in texts:
                vec = self._seen.get((*model, t))
                if vec is None:  # pushed out by another thread meanwhile
                    vec = embed([t])[0]
                out.append(vec)
            return out


TEMPLATE_VECTORS = TemplateVectors()
