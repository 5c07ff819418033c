"""Is a sentence a candidate at all? The drop rules and the features of one parsed sentence.

:func:`analyze` reads one spaCy ``Span`` into :class:`SentenceFeatures`: whether to drop it (questions,
hypotheticals, sarcasm, quoted speech, one-off requests), which predicate carries the content (past a
"remember that" cue or an "I think" hedge), its subject, negation, modality and tense. The score in
:mod:`memstrata.ingest.importance` and the rules extractor both start from these features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memstrata.ingest.lexicon import (
    CUE_VERBS,
    EMPHASIS,
    EXPLICIT_CUE,
    FIRST_PERSON,
    FUTURE_WORDS,
    HEDGE_VERBS,
    HYPOTHETICAL_START,
    KEEP_IN_MIND,
    LAUGHTER,
    PERSISTENCE,
    PHATIC_IMPERATIVES,
    PLAN_VERBS,
    POSITIVE_EMPHASIS,
    QUOTE,
    REPORTING_VERBS,
    SARCASM_ANYWHERE,
    SARCASM_START,
    SECOND_PERSON,
    THIRD_PERSON,
)
from memstrata.ingest.syntax import classify_subject, has_subject, is_negated, lemma, modal_of, subject_of

if TYPE_CHECKING:
    from spacy.tokens import Span, Token


@dataclass
class SentenceFeatures:
    """What the drop rules and the score read from one sentence (or clause); built by :func:`analyze`."""

    text: str
    role: str = "user"  # whose message: in an assistant's, "you"/"your" is the user
    drop: str | None = None  # question | hypothetical | sarcasm | quoted_speech | request | empty
    root: Token | None = None  # the content predicate (past a "remember that" cue or an "I think" hedge)
    subject: Token | None = None
    subject_kind: str = "none"  # first_person | second_person | person | event | thing | vague | assistant | none
    negated: bool = False
    modal: str | None = None  # would | could | might | may | should | must | can | will
    future: bool = False
    explicit_cue: bool = False
    instruction: bool = False
    banter: bool = False  # "lol", "haha": jokes are rarely facts
    signals: dict[str, float] = field(default_factory=dict)


def strip_emphasis(text: str) -> str:
    """``*love*`` -> ``love``: markdown emphasis confuses the tagger; sarcasm checks see the raw text."""
    return EMPHASIS.sub(lambda m: m.group(1), text)


def quoted_segments(text: str) -> list[str]:
    """Text inside quotation marks; apostrophes in contractions and possessives are not quotes."""
    return [a or b for a, b in QUOTE.findall(text)]


def is_sarcastic(text: str) -> bool:
    """Explicit sarcasm markers: "/s", eye-roll emoji, "yeah right", "oh great", emphasised praise."""
    if SARCASM_START.search(text) or SARCASM_ANYWHERE.search(text):
        return True
    return any(m.group(1).lower() in POSITIVE_EMPHASIS for m in EMPHASIS.finditer(text))


def _main_predicate(span: Span) -> Token:
    root = span.root
    if root.pos_ in ("INTJ", "NOUN", "PROPN", "ADJ", "X") and not has_subject(root):
        # "Reminder: the meeting is on Friday" parses the content as an acl/appos of "Reminder"
        for tok in span:
            if tok.pos_ in ("VERB", "AUX") and tok.head == root and has_subject(tok) and tok.dep_ in (
                    "acl", "appos", "relcl", "ccomp", "dep", "conj", "parataxis"):
                return tok
    return root


def _content_clause(root: Token) -> Token | None:
    """The clause that a cue ("remember that X") or a hedge ("I think X") governs."""
    word = lemma(root)
    subj = subject_of(root)
    if word in CUE_VERBS:
        if word == "forget" and not is_negated(root):
            return None
        if subj is not None and subj.lower_ not in SECOND_PERSON:
            return None  # "I remember that..." is the user recalling, not a cue
    elif word in HEDGE_VERBS:
        if subj is None or subj.lower_ not in FIRST_PERSON or is_negated(root):
            return None
    else:
        return None
    for c in root.children:
        if c.dep_ in ("ccomp", "xcomp") and c.pos_ in ("VERB", "AUX") and (word in CUE_VERBS or has_subject(c)):
            return c
    return None


def _is_question(span: Span) -> bool:
    if span.text.strip().endswith("?"):
        return True
    toks = [t for t in span if not t.is_punct and t.pos_ != "INTJ" and t.lower_ not in ("so", "and", "but",
                                                                                        "hey", "ok", "okay")]
    if not toks:
        return False
    first = toks[0]
    if first.tag_ in ("WP", "WRB", "WDT", "WP$") and first.lower_ != "when" and first.dep_ != "mark":
        return True
    if first.pos_ == "AUX" and len(toks) > 1 and toks[1].dep_ in ("nsubj", "nsubjpass", "expl"):
        return True  # "do I", "can you", "is it" without a question mark
    return False


def _is_hypothetical(span: Span, pred: Token, modal: str | None) -> bool:
    if HYPOTHETICAL_START.search(span.text) and not _relevance_conditional(span):
        return True
    for tok in span:
        if tok.lower_ in ("if", "unless") and tok.dep_ == "mark" and tok.head.dep_ == "advcl":
            if not _relevance_conditional(span, tok.head):
                return True
    word = lemma(pred)
    if word in ("wish", "imagine", "pretend", "suppose", "dream", "fantasize", "fantasise"):
        return True
    if modal in ("would", "could", "should", "might") and any(
            c.dep_ == "aux" and c.lower_ == "have" for c in pred.children):
        return True  # "I would have gone"
    if modal == "would":
        # "I'd never live in the suburbs", "I'd rather have tea" are preferences, not hypotheticals
        return not (is_negated(pred) or word == "prefer" or any(c.lower_ == "rather" for c in pred.children))
    return False


def _relevance_conditional(span: Span, clause: Token | None = None) -> bool:
    """ "if you need it", "if that helps", "if needed": the condition is on the listener, not the fact."""
    if clause is None:
        clause = next((t.head for t in span if t.lower_ in ("if", "unless") and t.dep_ == "mark"), None)
        if clause is None or clause.dep_ != "advcl":
            return False
    subj = subject_of(clause)
    if subj is None:
        return clause.tag_ in ("VBN", "JJ")  # "if needed", "if necessary"
    return subj.lower_ in ("you", "that", "it", "this")


def _is_quoted_speech(span: Span) -> bool:
    quotes = quoted_segments(span.text)
    if not quotes:
        return False
    reporting = any(lemma(t) in REPORTING_VERBS and t.pos_ == "VERB" for t in span)
    for q in quotes:
        words = q.split()
        pronoun = any(w.lower().strip(",.!?") in FIRST_PERSON | THIRD_PERSON | {"you", "i'm", "i've", "i'll"}
                      for w in words)
        if (reporting and len(words) >= 2) or (pronoun and len(words) >= 3):
            return True
    return False


def clause_instruction(span: Span, pred: Token, ids: set[int]) -> set[int] | None:
    """The tokens of one clause of a compound sentence when it is a lasting imperative ("I'm vegetarian now,
    so please suggest meat-free recipes from here on"), else None. ``ids``: the clause's tokens as the clause
    splitter gives them; a subject it lent the clause from another one ("I moved, and from now on use...") is
    no part of an imperative."""
    own = {t.i for t in pred.subtree} & ids
    return own if _request_kind(span, pred, own) == "instruction" else None


def _request_kind(span: Span, root: Token, ids: set[int] | None = None) -> str | None:
    """ "request" for a one-off imperative to the assistant, "instruction" for a lasting one. With ``ids``,
    only those tokens are the sentence (one clause of it)."""
    text = span.text if ids is None else " ".join(t.text for t in span if t.i in ids)
    if root.tag_ not in ("VB", "VBP") or has_subject(root):  # the tagger sometimes calls an imperative VBP
        return None
    auxes = [c for c in root.children if c.dep_ == "aux"]
    if auxes:
        # "Don't recommend anything with gore" is a standing constraint; "don't worry" is phatic
        if len(auxes) == 1 and lemma(auxes[0]) == "do" and is_negated(root) and auxes[0].i < root.i \
                and lemma(root) not in PHATIC_IMPERATIVES and any(
                    c.dep_ in ("dobj", "prep", "xcomp", "ccomp") for c in root.children):
            return "instruction"
        return None
    # everything before the verb must be an interjection, adverb or fronted phrase: "From now on, always show"
    before = [t for t in span if t.i < root.i and not t.is_punct and (ids is None or t.i in ids)]
    fronted = {t.i for c in root.lefts if c.dep_ in ("prep", "advmod", "npadvmod", "intj", "discourse", "advcl")
               for t in c.subtree}
    if any(t.i not in fronted and t.pos_ not in ("INTJ", "ADV", "CCONJ") and t.lower_ not in ("please", "pls")
           for t in before):
        return None
    return "instruction" if PERSISTENCE.search(text) else "request"


def _polite_request(span: Span, pred: Token) -> str | None:
    """ "I'd like you to...", "I'd love it if you could...": a request, lasting when it says so."""
    if modal_of(pred) != "would" or lemma(pred) not in ("like", "love", "prefer", "appreciate"):
        return None
    subj = subject_of(pred)
    if subj is None or subj.lower_ not in FIRST_PERSON:
        return None
    addressed = any(t.lower_ in SECOND_PERSON and t.i > pred.i for t in pred.subtree)
    if not addressed:
        return None
    return "instruction" if PERSISTENCE.search(span.text) else "request"


def _spliced_clause(root: Token) -> Token | None:
    """ "Scratch that, the meeting moved to Thursday": the clause after a dismissive imperative."""
    for c in root.children:
        if c.dep_ in ("ccomp", "parataxis", "conj") and c.pos_ in ("VERB", "AUX") and has_subject(c) and c.i > root.i:
            return c
    return None


def analyze(span: Span, *, role: str = "user", cue: bool = False, banter: bool = False) -> SentenceFeatures:
    """Drop decision, content predicate, subject and modality of one sentence.

    ``cue`` marks an explicit cue the caller already stripped ("Reminder: ..."); ``banter`` a laughing
    marker it removed.
    """
    feats = SentenceFeatures(text=span.text, role=role, banter=banter or bool(LAUGHTER.search(span.text)))
    if not any(not t.is_punct and not t.is_space for t in span):
        feats.drop = "empty"
        return feats
    root = _main_predicate(span)
    content = _content_clause(root)
    is_cue = content is not None and lemma(root) in CUE_VERBS
    feats.explicit_cue = cue or is_cue or bool(EXPLICIT_CUE.search(span.text) or KEEP_IN_MIND.search(span.text))
    pred = content if content is not None else root
    set_predicate(feats, pred, role)
    if is_sarcastic(span.text):
        feats.drop = "sarcasm"
    elif not is_cue and _is_question(span):
        feats.drop = "question"
    elif _is_hypothetical(span, pred, feats.modal) and _polite_request(span, pred) is None:
        feats.drop = "hypothetical"
    elif _is_quoted_speech(span):
        feats.drop = "quoted_speech"
    elif content is None:
        kind = _request_kind(span, root) or _polite_request(span, pred)
        if kind == "instruction":
            feats.instruction = feats.explicit_cue = True
        elif kind == "request" and not feats.explicit_cue:
            spliced = _spliced_clause(root)
            if spliced is not None:
                set_predicate(feats, spliced, role)
            else:
                feats.drop = "request"
    return feats


def set_predicate(feats: SentenceFeatures, pred: Token, role: str = "user") -> SentenceFeatures:
    """Point ``feats`` at a (clause) predicate and recompute subject, negation, modality and tense."""
    feats.root = pred
    feats.subject = subject_of(pred)
    kind = classify_subject(feats.subject)
    if kind == "none" and pred.tag_ in ("VBG", "VBD", "VBN") and pred.dep_ == "ROOT" and pred.i == pred.sent.start:
        kind = "first_person"  # chat drops the "I": "starting at Verdant on Monday!", "moved to Lisbon"
    if role != "user" and kind in ("first_person", "second_person"):
        # in an assistant message "you" is the user and "I" is the assistant
        kind = "first_person" if kind == "second_person" else "assistant"
    feats.subject_kind = kind
    feats.negated = is_negated(pred)
    feats.modal = modal_of(pred)
    feats.future = _is_future(pred, feats.modal)
    feats.signals = {}
    return feats


def _is_future(pred: Token, modal: str | None) -> bool:
    if modal in ("will", "shall", "might", "may"):
        return True
    word = lemma(pred)
    if word in PLAN_VERBS and pred.tag_ != "VBN":
        return True
    if word == "go" and pred.tag_ == "VBG" and any(c.dep_ == "xcomp" for c in pred.children):
        return True  # "going to ask"
    if pred.dep_ == "xcomp" and lemma(pred.head) in PLAN_VERBS | {"go"} and pred.head.tag_ in ("VBG", "VBP",
                                                                                                "VBZ"):
        return True
    progressive = pred.tag_ == "VBG" and any(c.dep_ == "aux" and lemma(c) == "be" for c in pred.children)
    sub = list(pred.subtree)
    future_time = any(t.lower_ in FUTURE_WORDS for t in sub) or any(t.ent_type_ in ("DATE", "TIME") for t in sub)
    return progressive and future_time
