"""A change announced without its new value, kept with the words that give it.

"I changed my major", "I see a new doctor now", "We moved!", "I got a new job!", "I lost weight" say that
something changed and nothing about what it is now; the rest of the sentence, or the next one, usually does ("…,
im doing computer science now", "…, Dr. Reynolds, since mine retired", "I'm a data analyst at Monzo").
Cut from it, the announcement is a fragment that answers "what do I study?" with "I changed my major".
:func:`with_what_follows` gives such a fact the words that come after it in its message.
"""

from __future__ import annotations

import re

from memstrata.core.text import normalize_text

# Verbs that announce a change by themselves, and verbs that do only with "new" ("I have a new manager").
_CHANGE_VERBS = frozenset({"changed", "switched", "swapped", "moved", "replaced", "upgraded"})
_NEW_VERBS = frozenset({"got", "have", "see", "started", "found", "bought", "joined", "landed", "picked", "hired"})
# An amount that changed, said without the amount: "I lost weight", "I got a raise", "I got promoted".
_AMOUNT_CHANGES = {"lost": {"weight"}, "gained": {"weight"}, "put": {"weight"},
                   "got": {"raise", "rise", "promoted", "promotion"}}
_LEAD = frozenset({"so", "and", "also", "but", "well", "oh", "ok", "okay", "yeah", "yes", "update", "news", "big",
                   "guess", "what", "anyway", "btw", "plus", "then"})
_SUBJECTS = frozenset({"i", "we", "ive", "weve"})  # "I've" and "we've" read as subject and "have"
_BETWEEN = frozenset({"have", "ve", "just", "finally", "recently", "also", "actually", "officially"})
# Words that carry no value of their own after the verb ("my new", "last week", "again").
_FILLER = frozenset({"my", "our", "a", "an", "the", "new", "old", "now", "just", "finally", "recently", "again", "last",
                     "this", "week", "month", "year", "today", "yesterday", "up", "over", "too", "also", "lol",
                     "haha", "officially", "actually", "all", "at", "of"})
MAX_WORDS = 10  # an announcement is short; a longer clause says more than that something changed
MAX_FOLLOW_WORDS = 30
# Where a sentence ends: not after a title's or an initial's full stop ("Dr. Reynolds", "J. Smith").
_SENTENCE_END = re.compile(r"(?<!\b(?:Dr|Mr|Ms|St|Jr|Sr))(?<!\bMrs)(?<!\bProf)(?<!\b[A-Z])[.!?]+(?=\s|$)")


def is_bare_announcement(text: str) -> bool:
    """Does ``text`` only say that something of the speaker's changed, not what it is now?"""
    if re.search(r"\d", text) or "?" in text:
        return False
    raw = text.split()
    if not raw or len(raw) > MAX_WORDS:
        return False
    # A capitalised word past the first that is not "I" is likely the new value itself ("moved to Leeds").
    if any(w[:1].isupper() and w.strip(".,!;:") not in ("I", "I'm", "I've") for w in raw[1:]):
        return False
    words = normalize_text(text).split()
    i = 0
    while i < len(words) and words[i] in _LEAD:
        i += 1
    if i >= len(words) or words[i] not in _SUBJECTS:
        return False
    i += 1
    while i < len(words) and words[i] in _BETWEEN:
        i += 1
    if i >= len(words):
        return False
    verb, rest = words[i], words[i + 1:]
    amount = bool(_AMOUNT_CHANGES.get(verb, set()) & set(rest))  # "lost weight": no "new" needed
    if not amount and (verb in _NEW_VERBS and "new" not in rest or verb not in _NEW_VERBS | _CHANGE_VERBS):
        return False
    # "moved to Leeds", "switched to oat milk", "changed from nights": the value is in the clause itself
    if any(w in ("to", "into", "from", "with", "for", "in", "on") for w in rest):
        return False
    content = [w for w in rest if w not in _FILLER]
    return len(content) <= 1


def with_what_follows(fact: str, message: str) -> str:
    """The fact with the rest of its sentence in ``message`` after it, or the next sentence where it ends
    its own; the fact unchanged when it cannot be found there or nothing statement-like follows."""
    core = fact.rstrip(" .!;:,")
    if not core:
        return fact
    at = message.lower().find(core.lower())
    if at < 0:
        return fact
    rest = message[at + len(core):]
    end = _SENTENCE_END.search(rest)
    follow = rest[: end.start()] if end else rest
    if end is not None and "?" in end.group(0) and follow.strip(" ,;:-—–"):
        return fact  # "I changed my major, was that dumb?": the rest of the sentence asks
    sep = ","
    if not follow.strip(" ,;:-—–"):
        after = rest[end.end():] if end else ""
        nxt = _SENTENCE_END.search(after)
        follow = after[: nxt.end()] if nxt else after
        if nxt is not None and "?" in nxt.group(0):
            return fact  # a question after it asks; it does not say what the new value is
        sep = fact[len(core):].strip() or "."
    follow = follow.strip(" ,;:-—–\n")
    if not follow or len(follow.split()) > MAX_FOLLOW_WORDS:
        return fact
    joiner = ", " if sep == "," else f"{sep} "
    return f"{core}{joiner}{follow}".rstrip(" ,") + ("" if re.search(r"[.!?]$", follow) else ".")
