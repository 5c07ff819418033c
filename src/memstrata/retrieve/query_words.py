"""What a query says about whom it asks after: names, people, the user's relatives, the user themselves."""

from __future__ import annotations

import re

from memstrata.core.text import STOPWORDS

_WORDS = re.compile(r"[\w'-]+", re.UNICODE)
_POSSESSIVE = re.compile(r"['’](?:s|m|re|ve|ll|d|t)?$|n['’]t$")  # "Caroline's" names Caroline; "I'm" is "I"
SINGULAR_Q = re.compile(r"\b(?:i|me|my|mine|i'm|i've)\b", re.IGNORECASE)
_FIRST_PERSON_Q = re.compile(r"\b(?:i|me|my|mine|i'm|i've|we|us|our|ours|we're|we've)\b", re.IGNORECASE)
_RELATIVE_Q = re.compile(
    r"\b(?:my|our)\s+(?:\w+\s+)?(sister|brother|mom|mum|mother|dad|father|wife|husband|son|daughter|friend|"
    r"cousin|aunt|uncle|neighbou?r|colleague|coworker|roommate|partner|girlfriend|boyfriend|kids?|parents)\b",
    re.IGNORECASE,
)


def names_in(query: str) -> set[str]:
    """Capitalised words that are not function words ("What", "I'm"): the only ones that could be a name, so
    most queries that name nobody cost nothing where names are looked up."""
    return {n for w in _WORDS.findall(query) if w[:1].isupper()
            for n in [_POSSESSIVE.sub("", w).lower()] if len(n) > 1 and n not in STOPWORDS}


def persons_in(query: str, named: set[str]) -> set[str]:
    """The names the query asks about as a person ("which school does Leo go to?", "is Mum on it?", "Ava's
    swimming"), not a place or thing it happens to capitalise ("the Lisbon conference", "the API key")."""
    return {n for n in named if re.search(rf"\b(?:does|did|is|was|has|will|can)\s+{re.escape(n)}\b|"
                                         rf"\b{re.escape(n)}['’]s\b", query, re.IGNORECASE)
            and not re.search(rf"\b{re.escape(n.upper())}\b", query)}


def relatives_in(query: str) -> set[str]:
    """The relation word of "my sister", "our son": who a question about someone of the user's is about."""
    return {m.group(1).lower() for m in _RELATIVE_Q.finditer(query)}


def asks_about_user(query: str) -> bool | None:
    """True when the query asks about the speaker ("where do I live?"), False when about someone of theirs
    ("where does my sister live?"), None when it says neither."""
    if _RELATIVE_Q.search(query):
        return False
    return True if _FIRST_PERSON_Q.search(query) else None


# The words for the one the user is with: a statement about "my girlfriend" is what "am I seeing anyone?" asks.
_PARTNER = frozenset("partner girlfriend boyfriend gf bf wife husband spouse fiance fiancé fiancee fiancée".split())
_PARTNER_Q = re.compile(r"\b(?:partner|girlfriend|boyfriend|wife|husband|spouse|fianc[ée]e?|dating|seeing|married|"
                        r"single|relationship|engaged|together)\b", re.IGNORECASE)


def asks_after(who: str, query: str) -> bool:
    """Does the query ask after the one a statement is about (``who``: a name or relation word)?"""
    low = who.lower()
    return low in query.lower() or low in _PARTNER and bool(_PARTNER_Q.search(query))


# Past forms the keyword stemmer does not reach from the base form: "Where did I grow up?" is answered by "…
# where I grew up", "What did I buy?" by "I bought".
_PAST = {
    "become": "became", "begin": "began begun", "bring": "brought", "build": "built", "buy": "bought",
    "catch": "caught", "choose": "chose chosen", "come": "came", "draw": "drew drawn", "drink": "drank drunk",
    "drive": "drove driven", "eat": "ate eaten", "fall": "fell", "feel": "felt", "find": "found",
    "fly": "flew flown", "forget": "forgot forgotten", "give": "gave given", "go": "went gone",
    "grow": "grew grown", "hear": "heard", "hold": "held", "keep": "kept", "lead": "led", "leave": "left",
    "lend": "lent", "lose": "lost", "make": "made", "meet": "met", "pay": "paid", "ride": "rode ridden",
    "rise": "rose risen", "run": "ran", "see": "saw seen", "sell": "sold", "send": "sent", "sing": "sang sung",
    "sit": "sat", "sleep": "slept", "speak": "spoke spoken", "spend": "spent", "stand": "stood",
    "steal": "stole stolen", "swim": "swam swum", "take": "took taken", "teach": "taught",
    "throw": "threw thrown", "wake": "woke woken", "wear": "wore worn", "win": "won", "write": "wrote written",
}  # "do", "get", "say" and the like are stopwords: the keyword stage never reads them


def with_past_forms(query: str) -> str:
    """The query with the irregular past forms of its base-form verbs added for the keyword stage."""
    extra = [_PAST[w] for w in dict.fromkeys(m.lower() for m in _WORDS.findall(query)) if w in _PAST]
    return f"{query} {' '.join(extra)}" if extra else query
