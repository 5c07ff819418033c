"""The names and figures a statement says: "I train at Anytime Fitness near the station" names "Anytime
Fitness"; "My rent in Phibsborough is €1,650 a month" names "Phibsborough" and "€1,650".

Read by :mod:`memstrata.retrieve.revisions` to tell which of the assistant's replies spoke of what a revised
statement said: a reply that names "Anytime Fitness", in the sitting where the user said they train there,
speaks of how things were once a later statement says they lift at Gold's Gym.

A value here is what the writing marks as a name or a figure: capitalised words inside a sentence, a
sentence's first word when it is no common opener, and anything with a digit ("€1,800", "5:30", "iPhone 15").
Lower-case names ("giffgaff" typed in lower case) are not found.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Sentence openers and other capitalised words that name nothing ("Also", "Thanks", "Honestly").
_OPENERS = frozenset("""
i i'm i've i'd i'll im ive my our the a an we so also and but just ok okay thanks thank hi hello hey hiya any
can how what which who where when why is are do does did it it's its this that there yes no not well oh ah
haha lol sorry please quick good great morning evening night today yesterday tomorrow last next now then
after before since if as at in on for with from to by of he she they you your his her their me us them some
all still finally anyway btw right sure honestly actually been got went had have has was were will would
should could need want love like life update big new old one two three four five six seven eight nine ten
first second third another other most more less much many few every each both either neither here let let's
that's there's we're we've they're you're he's she's don't doesn't didn't can't won't isn't aren't wasn't
sounds perfect nice cool awesome amazing ugh hmm wow yeah yep nope fine true quite really very pretty
random anyone anybody someone everyone nobody something anything everything nothing dear mr mrs ms dr
""".split())
_WORD = r"[A-Za-z][\w'’.&+-]*"
_TOKEN = re.compile(rf"[£€$¥₹]?\d[\d,.:]*(?:[a-zA-Z%]+\b)?|{_WORD}")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n(\"“])\s*")  # where a match ends, a sentence or quote begins
MAX_VALUE_WORDS = 4


@lru_cache(maxsize=4096)
def named_values(text: str) -> tuple[str, ...]:
    """The names and figures of ``text`` in their order, each once, as said ("Ford F-150", "Silverado",
    "€1,800 a month" gives "€1,800")."""
    out: list[str] = []
    run: list[str] = []

    def close() -> None:
        if run:
            out.append(" ".join(run[:MAX_VALUE_WORDS]))
            run.clear()

    starts = {m.end() for m in _SENTENCE_START.finditer(text)}
    last_end = 0
    for m in _TOKEN.finditer(text):
        token = m.group(0).rstrip(".'’").removesuffix("'s").removesuffix("’s")
        gap = text[last_end:m.start()]
        if run and gap.strip():  # a comma or other mark between two names ends the first
            close()
        last_end = m.end()
        if not token:
            close()
            continue
        first = m.start() in starts
        if any(ch.isdigit() for ch in token):
            run.append(token)
        elif token[:1].isupper() and token.lower() not in _OPENERS and not (first and not run and _common(token)):
            run.append(token)
        else:
            close()
    close()
    return tuple(dict.fromkeys(v for v in out if v))


def _common(word: str) -> bool:
    """A sentence's first word that is only capitalised because it comes first: an opener, or a word written
    the same in lower case as an ordinary word would be ("Drove", "Started", "Signed")."""
    lower = word.lower()
    return lower in _OPENERS or lower.endswith(("ed", "ing", "ly"))
