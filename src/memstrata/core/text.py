"""Text helpers every layer shares: query words for keyword search, the normalised form and hash that
dedup and the stores agree on, and the sentence windows a long message is embedded in."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PUNCT_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")

CHUNK_WORDS = 60
CHUNK_OVERLAP = 15

# Function words carry no topic; in a full-text OR query they match nearly every row and cost the most.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t don doesn didn
    isn wasn aren weren hasn haven hadn won wouldn shouldn couldn ll re ve d m o y also ever let lets tell said say
    says get got know think like really one""".split()
)


def query_terms(text: str, max_terms: int = 32) -> list[str]:
    """Distinct content words of a query in order; all words if every one is a stopword."""
    words = list(dict.fromkeys(_WORD.findall(text.lower())))
    content = [w for w in words if w not in STOPWORDS]
    return (content or words)[:max_terms]


# A sentence ends at . ! ? (after any closing quote or bracket) or a line break, not after a title ("Dr. Okafor").
_SENTENCE = re.compile(r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bMrs\.)(?<!\bProf\.)(?<!\bvs\.)"
                       r"(?<=[.!?])[\"')\]]*\s+|\n+")


def says_words(text: str, words: str) -> bool:
    """Does ``text`` hold ``words`` as a whole word sequence, in any case ("the Golf", not "golfing")?"""
    return re.search(rf"(?<![\w-]){re.escape(words)}(?![\w-])", text, re.IGNORECASE) is not None


def split_sentences(text: str) -> list[str]:
    """The sentences of a message, stripped, empty ones left out."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def normalize_text(text: str) -> str:
    """NFKC, case-folded, punctuation dropped, whitespace collapsed: the form :func:`normalized_hash` hashes."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("’", "'").replace("'", "")  # "I'm" and "Im" are the same text
    return _PUNCT_OR_SPACE.sub(" ", text).strip()


def normalized_hash(text: str) -> str:
    """SHA-256 hex of :func:`normalize_text`: equal for texts differing only in case, spacing, punctuation."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


def chunk_text(text: str, max_words: int = CHUNK_WORDS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """The text itself when short, else windows of whole sentences of at most ``max_words`` words.

    A fact said in passing in a long message ("By the way, I upgraded to a 20-gallon tank") is found by
    its own window; one vector for the whole message is dominated by its main topic.
    """
    words = text.split()
    if len(words) <= max_words:
        return [text]
    windows: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sw = sentence.split()
        if not sw:
            continue
        while len(sw) > max_words:  # one very long sentence: cut it into overlapping word runs
            if current:
                windows.append(" ".join(current))
                current = []
            windows.append(" ".join(sw[:max_words]))
            sw = sw[max_words - overlap :]
        if current and len(current) + len(sw) > max_words:
            windows.append(" ".join(current))
            current = []
        current.extend(sw)
    if current:
        windows.append(" ".join(current))
    return windows
