"""Does an assistant message say anything of its own? Pleasantries are kept, but weigh little.

"Exciting! Where are you moving to?", "Congratulations on the move, and good luck with the project.",
"Great, consistency helps a lot.", "You're welcome!": a question back to the user, an acknowledgement, praise,
congratulations or a greeting. Such a message is still stored as evidence (it stays findable when asked
for: "what did you say about my move?"), but with ``PHATIC_IMPORTANCE`` instead of the usual evidence
importance, and ranking weighs memories that low down unless the query asks what the assistant said
(``memstrata.core.salience``).

Only short messages qualify (``MAX_WORDS``), and only when every sentence is one of these: a bare
interjection, a formula (thanks, congratulations, good luck, greetings, sympathy, offers of more help), a
short question back with no name or number in it, or a short remark led by praise ("Great, that helps.").
"""

from __future__ import annotations

import re

from memstrata.core.salience import PHATIC_IMPORTANCE

__all__ = ["PHATIC_IMPORTANCE", "is_phatic"]

MAX_WORDS = 30  # a longer assistant message is taken to carry content
MAX_QUESTION_WORDS = 12
MAX_FORMULA_WORDS = 15
MAX_REMARK_WORDS = 6  # what may follow a leading word of praise ("Great, consistency helps a lot.")

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_DIGIT = re.compile(r"\d")
_CODE = re.compile(r"```|`[^`]+`|https?://|\w\.\w+\(|[{}<>=]")

_PRAISE = (r"(?:exciting|great|wonderful|awesome|amazing|fantastic|excellent|brilliant|lovely|nice|cool|perfect|"
           r"congrats|congratulations|wow|oh|ah|aw+|yay|hooray|splendid|superb|sweet|neat|fair enough|got it|"
           r"understood|noted|okay|ok|sure|absolutely|of course|indeed|right|alright|all right|good|"
           r"no worries|no problem|welcome back|hi|hello|hey|thanks|thank you|well done|good for you|"
           r"how exciting|how wonderful|how lovely|what a \w+(?: \w+)?)")
_LEAD_PRAISE = re.compile(rf"^{_PRAISE}(?:\s+\w+)?\s*[,!.—–-]+\s*", re.IGNORECASE)  # "Great, ...", "Oh wow! ..."
_BARE = re.compile(rf"^(?:{_PRAISE}[\s,!.]*)+$", re.IGNORECASE)

_FORMULA = re.compile(
    r"^(?:(?:oh|well|and|also|so|again)\W+)*(?:"
    r"congrat(?:s|ulations)|good\s+luck|best\s+of\s+luck|best\s+wishes|fingers\s+crossed|"
    r"(?:many\s+)?thanks?(?:\s+you)?|you'?re\s+(?:very\s+|most\s+)?welcome|(?:no|not\s+a)\s+problem|no\s+worries|"
    r"(?:it'?s\s+|it\s+is\s+)?(?:my|a)\s+pleasure|any\s*time|glad\s+(?:to|i|it|that|you)|happy\s+(?:to|for|that|you)|"
    r"(?:i'?m|i\s+am)\s+(?:so\s+|really\s+|very\s+)?(?:glad|happy|sorry|thrilled|delighted|excited|pleased)|"
    r"sorry\s+to\s+hear|(?:that'?s|that\s+is|this\s+is|what)\s+(?:a\s+|an\s+|so\s+|really\s+|very\s+|such\s+a\s+)?"
    r"(?:great|wonderful|awesome|amazing|fantastic|exciting|excellent|lovely|nice|cool|good|big|huge|"
    r"brilliant|impressive|tough|hard|sad|fun|interesting)(?:\s+(?:news|step|move|idea|choice|plan|goal|"
    r"milestone|question|decision|start|progress|achievement|change))?|"
    r"(?:that\s+)?sounds\s+(?:like\s+)?(?:a\s+)?(?:great|good|wonderful|exciting|lovely|fun|nice|fantastic|"
    r"amazing|perfect|like\s+a\s+plan)|"
    r"well\s+done|great\s+(?:job|work|choice|idea|question|plan)|nice\s+(?:job|work|one|choice)|"
    r"good\s+(?:job|work|choice|idea|question|morning|afternoon|evening|night)|keep\s+(?:it\s+up|going)|"
    r"you'?ve\s+got\s+this|you\s+got\s+this|enjoy|have\s+(?:fun|a\s+(?:great|good|nice|lovely|wonderful|safe|fun))|"
    r"take\s+care|see\s+you|bye|goodbye|"
    r"hi|hello|hey|welcome|cheers|"
    r"(?:i\s+)?hope\s+(?:it|that|this|you|the|your|everything|all)|"
    r"(?:feel\s+free|let\s+me\s+know|don'?t\s+hesitate)|(?:is\s+there\s+)?anything\s+else|"
    r"(?:i'?m|i\s+am)\s+here\s+(?:to|if|whenever|for)"
    r")\b",
    re.IGNORECASE,
)
# Words that make a sentence advice or a correction rather than a pleasantry ("Good idea, but pin the version").
_ADVICE = re.compile(r"\b(?:but|however|instead|should|must|need\s+to|try|use|recommend|suggest|make\s+sure|"
                     r"remember|forget|consider|because|avoid|don'?t)\b", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _names(text: str, said: frozenset[str]) -> bool:
    """A capitalised word after the first one, other than "I" and the names in ``said``: a name or a place the
    assistant brings in, i.e. content."""
    words = _words(text)
    return any(w[:1].isupper() and w not in ("I", "I'm", "I've", "I'd", "I'll") and w.lower() not in said
               for w in words[1:])


def _phatic_sentence(sentence: str, said: frozenset[str]) -> bool:
    s = sentence.strip().strip("\"'“”")
    if not s or _BARE.match(s):
        return True
    if _DIGIT.search(s) or _CODE.search(s) or _ADVICE.search(s) or len(_words(s)) > MAX_FORMULA_WORDS:
        return False
    if _FORMULA.match(s):
        return True
    if s.endswith("?"):
        rest = _LEAD_PRAISE.sub("", s)
        return len(_words(rest)) <= MAX_QUESTION_WORDS and not _names(rest, said)
    lead = _LEAD_PRAISE.match(s)
    if lead:
        rest = s[lead.end():]
        return _phatic_sentence(rest, said) or (len(_words(rest)) <= MAX_REMARK_WORDS and not _names(rest, said))
    return False


def is_phatic(text: str, said: str = "") -> bool:
    """The assistant message carries nothing of its own: only pleasantries and questions back (see the module).
    ``said``: the turn it answers; a name from there is the user's, not new ("Where will you live in Lisbon?")."""
    words = _words(text)
    if not words or len(words) > MAX_WORDS:
        return False
    known = frozenset(w.lower() for w in _words(said))
    parts = [p for p in _SENTENCE.split(text.strip()) if p and p.strip()]
    return all(_phatic_sentence(p, known) for p in parts)

