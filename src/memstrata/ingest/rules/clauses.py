"""Splitting a sentence into clauses: coordinated and comma-spliced predicates, each with its own text.

"I hate cilantro, it tastes like soap" gives two clauses; "... and work at X" borrows the shared subject.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from memstrata.ingest.syntax import has_subject, stranded_subject, subject_of
from memstrata.ingest.updates import _NEW_VALUE, ENDING_CUE

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token


def _comma_between(clause: Token, root: Token) -> bool:
    if clause.i < root.i:
        lo, hi = clause.right_edge.i, root.i
    else:
        lo, hi = root.i, clause.left_edge.i
    return any(t.text in (",", ";", "—", "-", "–") for t in clause.doc[lo + 1: hi])


def _clause_roots(root: Token) -> list[Token]:
    """The root plus coordinated clauses and comma-spliced ones ("I hate X, it tastes like soap")."""
    out = [root]
    for c in root.children:
        if c.pos_ not in ("VERB", "AUX"):
            continue
        if c.dep_ == "conj" or (c.dep_ in ("ccomp", "parataxis") and has_subject(c)
                                and _comma_between(c, root)):
            out.extend(_clause_roots(c))
    return out


def _let_us(pred: Token) -> set[int]:
    """ "Let's plan X": the parser makes "'s" the subject of "plan" under "Let", so the predicate's subtree
    alone reads "'s plan X". Keep the "Let" that the contraction belongs to."""
    head = pred.head
    if head is not pred and head.lower_ == "let" and any(
        c.dep_ == "nsubj" and c.lower_ in ("'s", "’s", "us") and c.i == head.i + 1 for c in pred.children
    ):
        return {head.i}
    return set()


def split_clauses(sent: Span, root: Token) -> list[tuple[Token, str, set[int]]]:
    """(predicate, text, token ids) for each clause of a sentence."""
    roots = _clause_roots(root)
    if len(roots) == 1:  # the predicate's subtree: past a cue, "remember that X" keeps X only
        ids = {t.i for t in root.subtree if not (t.dep_ == "mark" and t.head == root)} | _let_us(root)
        return [(root, _clean(_tokens_text(sent, ids)), ids)]
    out: list[tuple[Token, str, set[int]]] = []
    # "... in February and Ruth is my manager now": Ruth and its "and" belong to the clause of "is"
    stranded = {i for p in roots if (s := stranded_subject(p)) is not None
                for i in [*(t.i for t in s.subtree), *(c.i for c in s.head.children if c.dep_ == "cc")]}
    for pred in roots:
        ids = {t.i for t in pred.subtree if not (t.dep_ == "mark" and t.head == pred)}
        for other in roots:
            if other != pred and pred.is_ancestor(other):
                ids -= {t.i for t in other.subtree}
        ids -= stranded
        ids -= {c.i for c in pred.children if c.dep_ == "cc"}
        text = _tokens_text(sent, ids)
        subj = subject_of(pred)
        if subj is not None and subj.i not in ids:  # "... and work at X" borrows the shared subject
            text = "".join(t.text_with_ws for t in subj.subtree).strip() + " " + text
            ids |= {t.i for t in subj.subtree}
        text = _clean(text)
        if text:
            out.append((pred, text, ids))
    return _with_what_replaced_it(sent, out)


# What took the place of something that ended: "... and signed up with X", "now I'm with Y", "moved him to Z".
_TOOK_ITS_PLACE = re.compile(r"\b(?:moved|switched|swapped|put|enrolled|signed up|bought|got|joined|started|took up|"
                             r"picked up|went for|chose)\b", re.IGNORECASE)
# "We pulled Noah out of Little Sprouts", "took him out of the club": an ending said around its object.
_TAKEN_OUT = re.compile(r"\b(?:pulled|took|taken)\s+(?:\w+\s+){1,2}out of\b", re.IGNORECASE)
# "I finished the beginners' pottery course and signed up for the wheel class", "moved out of halls, we got a
# flat in Leith": done with one, on to the next.
_COMPLETED = re.compile(r"\b(?:finished|completed|graduated from|moved out of)\b", re.IGNORECASE)


def _with_what_replaced_it(sent: Span, clauses: list[tuple[Token, str, set[int]]]
                           ) -> list[tuple[Token, str, set[int]]]:
    """A clause that says only that something ended, followed by one that says what took its place ("I
    stopped volunteering at the food bank and signed up with St John Ambulance instead", "Martina and me
    separated in June, I am now together with Sabine", "I finished the beginners' course and signed up for
    the next one"), keeps the rest of the change: alone it would read
    as all there is to say. The clause of the new value stays a clause of its own."""
    by_place = sorted(range(len(clauses)), key=lambda n: min(clauses[n][2]))
    out = list(clauses)
    for a, b in zip(by_place, by_place[1:], strict=False):
        pred, text, ids = out[a]
        later = clauses[b][1]
        ended = ENDING_CUE.search(text) or _TAKEN_OUT.search(text) or _COMPLETED.search(text)
        if ended and not _NEW_VALUE.search(text) and (_NEW_VALUE.search(later) or _TOOK_ITS_PLACE.search(later)):
            span = set(range(min(ids), max(clauses[b][2]) + 1))  # with the "and" or comma between
            out[a] = (pred, _clean(_tokens_text(sent, span)), span)
    return out


def clause_text(sent: Span, ids: set[int]) -> str:
    """The text of the tokens ``ids`` of ``sent``, trimmed of edge punctuation and a leading conjunction."""
    return _clean(_tokens_text(sent, ids))


def _tokens_text(sent: Span, ids: set[int]) -> str:
    return "".join(t.text_with_ws for t in sent if t.i in ids)


def _clean(text: str) -> str:
    text = text.strip().strip(",;:-–— ")
    text = re.sub(r"^(?:and|but|so|also|then|plus|or)\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[\s,;:–—-]+(?:and|but|so|then|or)$", "", text, flags=re.IGNORECASE)  # "I'm vegan now, so"
    text = re.sub(r"\s+([.,;:!?])(?=\s|$)", r"\1", text)  # "... in February ." once "and Ruth" went to its clause
    if not text:
        return ""
    return text[0].upper() + text[1:]


# A clause that goes on about the one before it through a pronoun ("the rota is different, now it's three
# 12-hour shifts", "we got an estate, a Skoda Superb, so there's a loan payment now"): alone it says nothing
# of what it is about, and the clause before it may not say the value.
_REFERS_BACK = frozenset({"it", "that", "this", "there", "they"})
_LEAD_WORDS = frozenset({"now", "so", "and", "but", "also", "then", "plus", "anyway", "though", "which"})
MAX_GAP = 3  # tokens between the two clauses: a comma, a conjunction, a full stop
_TRIMMED = frozenset({"and", "but", "so", "then", "or"})  # what :func:`_clean` takes off a clause's end
MAX_JOINED_WORDS = 45


def goes_on_about(doc: Doc, before: set[int], after: set[int]) -> bool:
    """Does the clause of tokens ``after`` follow the one of ``before`` closely and open on a pronoun subject
    that can only mean something the earlier one said?"""
    if not before or not after or min(after) <= max(before) or min(after) - max(before) - 1 > MAX_GAP:
        return False
    if any(not (t.is_punct or t.lower_ in _LEAD_WORDS) for t in doc[max(before) + 1: min(after)]):
        return False
    for i in sorted(after):
        tok = doc[i]
        if tok.is_punct or tok.lower_ in _LEAD_WORDS:
            continue
        return tok.lower_ in _REFERS_BACK and tok.dep_ in ("nsubj", "nsubjpass", "expl")
    return False


def joined_text(doc: Doc, said_before: str, before: set[int], after: set[int]) -> str | None:
    """The earlier clause's text (``said_before``) going on with the later one, as said; None when too long
    to be one memory."""
    gap = [t.text for t in doc[max(before) + 1: min(after)] if not t.is_punct]
    k = max(before)  # "…, so there's …": a linking word the parser hung on the earlier clause, trimmed from its text
    while k in before and (doc[k].is_punct or doc[k].lower_ in _TRIMMED):
        gap = [doc[k].text, *gap] if not doc[k].is_punct else gap
        k -= 1
    first = next(t for t in doc[min(after): max(after) + 1] if not t.is_punct)  # "so" may be no token of it
    tail = doc[first.i: max(after) + 1].text.strip()
    if first.pos_ != "PROPN" and first.text != "I":
        tail = tail[:1].lower() + tail[1:]
    text = said_before.rstrip(" .!;,") + ", " + " ".join([*gap, tail])
    return text if len(text.split()) <= MAX_JOINED_WORDS else None
