"""Every message stays findable: verbatim evidence beside the facts drawn from it, and facts that read whole.

Facts are extra keys for the evidence they came from (both carry the message's episode id). A message that
yields no fact is still stored as evidence; a short reply is stored with the turn it answers, so "Lisbon,
hopefully by March." is found together with "Where are you moving to?". An assistant message that says nothing
of its own ("Congratulations on the move!") is evidence too, at a low importance (``memstrata.ingest.phatic``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memstrata.core.text import split_sentences
from memstrata.ingest.announcements import is_bare_announcement, with_what_follows
from memstrata.ingest.candidate import Candidate, Message, Slot
from memstrata.ingest.dedup import normalize_text
from memstrata.ingest.lexicon import ADDRESS_ME
from memstrata.ingest.phatic import PHATIC_IMPORTANCE, is_phatic
from memstrata.ingest.updates import _OWN_START, attribute_of, content_words, has_change_cue, is_tentative
from memstrata.models import EVIDENCE_KIND

EVIDENCE_IMPORTANCE = 0.3
SHORT_REPLY_WORDS = 6  # a reply this short is stored with the turn it answers

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:%)\]])")
_SPACES = re.compile(r"[ \t]+")
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|my|we|we're|we've|our|me|us)\b", re.IGNORECASE)
_LEAD = re.compile(r"^(?:(?:also|and|but|so|oh|well|anyway|btw|by the way|plus|ok|okay),?\s+)+", re.IGNORECASE)
_HAS_WORD = re.compile(r"[^\W\d_]", re.UNICODE)
_INTERJECTION = frozenset(
    "wow oh ah ok okay yes yeah yep no nope thanks thank you cool great nice awesome lol haha hmm hey hi hello "
    "sure right sounds good perfect amazing bye congrats wonderful indeed".split()
)
_PRONOUN = re.compile(r"\b(her|him|them|she|he|they)\b(?=\s*[.!?,;]|\s*$|\s+(?:and|too|again|soon|more|often)\b)",
                      re.IGNORECASE)
_PERSON_PHRASE = re.compile(
    r"\b(?i:my|our)\s+(?:(?:older|younger|little|big|best|new|old)\s+)?"
    r"(sister|brother|mom|mum|mother|dad|father|wife|husband|son|daughter|friend|cousin|aunt|uncle|neighbou?r|"
    r"colleague|coworker|boss|manager|partner|girlfriend|boyfriend|roommate|grandma|grandpa|niece|nephew)"
    r"(?:\s+([A-Z][a-z]+))?"
)
_FEMALE = frozenset("sister mom mum mother wife daughter aunt girlfriend grandma niece".split())
_MALE = frozenset("brother dad father husband son uncle boyfriend grandpa nephew".split())


def tidy(text: str) -> str:
    """One line of text as a reader expects it: no space before punctuation, no doubled spaces, no bare
    exclamation ("Wow!" becomes "", which callers treat as nothing to keep)."""
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text)).strip()
    text = _LEAD.sub("", text)
    text = text[:1].upper() + text[1:]
    words = normalize_text(text).split()
    if not words or not _HAS_WORD.search(text) or all(w in _INTERJECTION for w in words):
        return ""
    return text


# "there" as a place ("I grew up there"), not as "there is"; and a place or organisation named after a word of
# going or being somewhere ("heading to Nagpur", "we live in Alfama", "I'm at Deloitte").
_THERE = re.compile(r"(?<=\w )there\b(?!\s*(?:is|are|was|were|isn't|aren't|wasn't|weren't|'s|’s|will|would|has|have|"
                    r"had|might|may|can|could|should|must|seems?|used)\b)", re.IGNORECASE)
_PLACE = re.compile(r"\b(?i:to|in|at|from|near|around|visit|visiting)\s+((?:[A-Z][\w'’-]+)(?:\s+[A-Z][\w'’-]+){0,2})")
_NOT_PLACES = frozenset("january february march april may june july august september october november december "
                        "monday tuesday wednesday thursday friday saturday sunday christmas easter the i".split())


def resolve_pronouns(text: str, context: str) -> str:
    """Name who "her"/"him"/"them" is when the message or the turns before it say: "I'll be closer to her."
    with "My sister Anna lives in Porto" before it reads "I'll be closer to her (my sister Anna)."; and where
    "there" is: "I grew up there" said after "next weekend i'm heading to Nagpur" reads "I grew up there
    (Nagpur)"."""
    text = _resolve_there(text, context)
    m = _PRONOUN.search(text)
    if not m:
        return text
    pron = m.group(1).lower()
    people = list(_PERSON_PHRASE.finditer(context))
    for p in reversed(people):
        noun = p.group(1).lower()
        if pron in ("her", "she") and noun in _MALE or pron in ("him", "he") and noun in _FEMALE:
            continue
        phrase = p.group(0)
        phrase = phrase[0].lower() + phrase[1:]
        return text[: m.end()] + f" ({phrase})" + text[m.end():]
    return text


def _resolve_there(text: str, context: str) -> str:
    m = _THERE.search(text)
    if not m:
        return text
    head = " ".join(text.split()[:4])
    at = context.rfind(head) if head else -1
    said_before = (context[:at] if at > 0 else context) + " " + text[: m.start()]  # and the fact's own words
    places = [p.group(1) for p in _PLACE.finditer(said_before) if p.group(1).split()[0].lower() not in _NOT_PLACES]
    if not places or places[-1].lower() in text.lower():  # the fact names it itself
        return text
    return text[: m.end()] + f" ({places[-1]})" + text[m.end():]


def sentences(text: str) -> list[str]:
    return split_sentences(text)


# "My car." or "Also my phone.": one of the user's things named as the topic of what follows, with nothing said
# of it yet; the words of an attribute ("car") without its value.
_TOPIC_ONLY = re.compile(r"^(?:(?:[Aa]lso|[Aa]nd|[Oo]h|[Ss]o|[Pp]lus|[Tt]hen|[Aa]nyway|[Oo]k(?:ay)?),?\s+)?"
                         r"(?:[Mm]y|[Oo]ur)\s+[a-z][\w'-]*(?:\s+[a-z][\w'-]*)?\s*[.!…]*$")


def cue_candidates(messages: Sequence[Message], facts: Sequence[Candidate]) -> list[Candidate]:
    """The user's sentences that set a one-valued attribute ("I'm 27.") or state a change ("I dropped out of
    the book club") but that the extractor did not keep: they become facts, so a later value can replace
    them and a change can reach the fact it ends."""
    covered: dict[int, list[set[str]]] = {}
    for f in facts:
        for i in f.source_indexes:
            covered.setdefault(i, []).append(content_words(f.text))
    out: list[Candidate] = []
    for m in messages:
        if m.role != "user":
            continue
        for sent in sentences(m.content):
            text = tidy(sent)
            if not text or is_tentative(text) or len(text.split()) < 2 or _TOPIC_ONLY.match(text):
                continue
            attr = attribute_of(text)
            cued = has_change_cue(text)
            mine = bool(_OWN_START.match(text))
            if attr is None and not (cued and mine) or attr is not None and (attr.subject != "user"
                                                                            or not (cued or mine)):
                continue
            words = content_words(text)
            if any(len(words & c) >= max(1, len(c) // 2) for c in covered.get(m.index, [])):
                continue
            if is_bare_announcement(text):
                text = with_what_follows(text, m.content)  # "I got a new job! I'm a data analyst at Monzo."
            kind = "instruction" if ADDRESS_ME.search(text) else "fact"  # "From now on call me Sam."
            out.append(Candidate(text=text, importance=0.6, reasons=["update_cue"], kind=kind,
                                 source_indexes=[m.index],
                                 slot=Slot("user", attr.family, normalize_text(text)) if attr else None,
                                 confidence=0.7, confidence_reason="rules extraction; states a change"))
    return out


def evidence_candidates(messages: Sequence[Message], facts: Sequence[Candidate],
                        earlier: Sequence[tuple[str, str]] = ()) -> list[Candidate]:
    """One verbatim candidate per non-system message, unless a fact of it already says it word for word.

    ``earlier`` are (role, content) turns said before this call in the same conversation: a short reply's
    first message may answer one of them.
    """
    verbatim = {(i, normalize_text(f.text)) for f in facts for i in f.source_indexes}
    out: list[Candidate] = []
    prev: tuple[str, str] | None = earlier[-1] if earlier else None
    for m in messages:
        if m.role == "system":
            continue
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", m.content)).strip()
        key = normalize_text(text)
        if (m.index, key) not in verbatim and key:
            shown = text
            if prev is not None and m.role == "user" and len(key.split()) <= SHORT_REPLY_WORDS \
                    and prev[0] != m.role:
                shown = f"{text} (in reply to: {_clip(prev[1])})"
            # a pleasantry (the assistant's, or the user's bare "Thanks!" that answers no question): kept, but it
            # weighs little in ranking
            answers = prev is not None and prev[0] != m.role and "?" in prev[1]
            phatic = is_phatic(text, prev[1] if prev else "") if m.role != "user" else not tidy(text) and not answers
            out.append(Candidate(text=shown, importance=PHATIC_IMPORTANCE if phatic else EVIDENCE_IMPORTANCE,
                                 reasons=["evidence", "phatic"] if phatic else ["evidence"], kind=EVIDENCE_KIND,
                                 source_indexes=[m.index], confidence=1.0, confidence_reason="stated verbatim"))
        prev = (m.role, text)
    return out


def _clip(text: str, words: int = 30) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def finish_facts(facts: Sequence[Candidate], messages: Sequence[Message],
                 earlier: Sequence[tuple[str, str]] = ()) -> list[Candidate]:
    """Facts that read whole: tidied, pronouns named from the message and the turns before, bare
    exclamations dropped."""
    by_index = {m.index: m for m in messages}
    before = " ".join(c for _, c in earlier[-4:])
    out: list[Candidate] = []
    for f in facts:
        text = tidy(f.text)
        if not text:
            continue
        src = by_index.get(f.source_indexes[0]) if f.source_indexes else None
        if src is not None and is_bare_announcement(text):
            text = with_what_follows(text, src.content)  # "I changed my major, im doing computer science now"
        context = before + " " + " ".join(by_index[i].content for i in sorted(by_index)
                                           if src is None or i <= src.index)
        if f.kind != "instruction" and is_fragment(text):  # an imperative is whole without a subject
            question = _question_before(messages, src, earlier)
            if question is None:
                continue  # the message's evidence keeps it; alone it would not say what it is about
            text = f"{text} (in reply to: {_clip(question)})"
        resolved = resolve_pronouns(text, context)
        if resolved == text and src is not None and _DANGLING.search(text) and not _whole(text, src.content):
            continue  # "Im on drums for them" cut from its message: the message's evidence keeps it whole
        if src is not None and normalize_text(resolved) != normalize_text(src.content) \
                and _as_said(resolved) == _as_said(src.content):
            resolved = tidy(src.content)  # all the message says, read with "it's" as "it is": its own words
        f.text = resolved
        out.append(f)
    return out


_IS_SPELLED_OUT = re.compile(r"\b(\w+) is\b")


def _as_said(text: str) -> str:
    """The normalised words, with "it is" and "it's" read alike (parsing spells the contraction out)."""
    return _IS_SPELLED_OUT.sub(r"\1s", normalize_text(text))


# Someone or something named only by a pronoun: "He lives in Calgary.", "Im on drums for them", "We did it".
_DANGLING = re.compile(r"^(?:he|she|they)\b|\b(?:them|him)\b|\b(?:it|her)\s*(?:[.!?,;]|$)", re.IGNORECASE)


def _whole(fact: str, message: str) -> bool:
    """Is the fact (nearly) all its message says? Then the message itself reads no better."""
    return len(normalize_text(message).split()) <= len(normalize_text(fact).split()) + 2


_SUBJECT = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|we|you|he|she|it|they|this|that|there|my|our|your|his|her|their|"
                      r"is|are|was|were|am|have|has|had|will|can|do|does|did|'s|'re|'m)\b", re.IGNORECASE)


def is_fragment(text: str) -> bool:
    """A phrase with no subject or verb word ("Lisbon, hopefully by March.")."""
    head = text.split(",")[0]
    return len(text.split()) <= SHORT_REPLY_WORDS and not _SUBJECT.search(text) \
        and not re.search(r"\b(?:user|\w+(?:ed|es|s|ing))\b", head, re.IGNORECASE)


def _question_before(messages: Sequence[Message], src: Message | None,
                     earlier: Sequence[tuple[str, str]]) -> str | None:
    if src is None:
        return None
    prior = [(m.role, m.content) for m in messages if m.index < src.index] or list(earlier)
    if prior and prior[-1][0] != src.role and "?" in prior[-1][1]:
        return prior[-1][1]
    return None


def message_report(messages: Sequence[Message], episode_ids: Sequence[str],
                   results: Sequence[dict]) -> list[dict]:
    """Per message: what ``add`` did with it (``kept``, ``merged``, ``superseded``, ``archived``, ``ignored``)
    and a reason code, with the ids of the memories that now hold it."""
    out: list[dict] = []
    for m in messages:
        ep = episode_ids[m.index] if m.index < len(episode_ids) else None
        mine = [r for r in results if ep is not None and ep in r.get("episode_ids", [])]
        facts = [r for r in mine if r.get("kind") != EVIDENCE_KIND]
        ids = list(dict.fromkeys(r["id"] for r in mine))
        if m.role == "system":
            outcome, reason = "ignored", "system_message"
        elif any(r.get("supersedes") for r in facts):
            implicit = any(r.get("supersedes") and r.get("conflicts") for r in facts)
            outcome, reason = "superseded", "implicit_update" if implicit else "explicit_update"
        elif any(r["event"] == "ADD" for r in facts):
            outcome, reason = "kept", "fact"
        elif facts:
            outcome, reason = "merged", "duplicate"
        else:
            outcome = "archived"
            text = m.content.strip()
            if m.role != "user":
                reason = f"{m.role}_turn"
            elif not tidy(text) or len(normalize_text(text).split()) <= 2:
                reason = "small_talk"
            elif is_tentative(text):
                reason = "question_or_hypothetical"
            else:
                reason = "no_fact"
            if mine and all(r["event"] == "MERGE" for r in mine):
                reason += "_repeated"
        out.append({"index": m.index, "episode_id": ep, "outcome": outcome, "reason": reason, "memory_ids": ids})
    return out
