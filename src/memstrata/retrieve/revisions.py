"""The newer answer first: a read-time view of what changed.

Ingestion replaces an old fact when it can tell that a statement sets the same attribute again ("I work at
Monzo now" after "I work at Ocado"). Much of what people say changes without words that tell it: "salary 48k"
in March and "Got a raise to 55k" in December are far apart as vectors and share no attribute family, yet a
query such as "What's my salary?" finds both. The query is what ingestion lacked: it names the attribute.

So, after ranking, :func:`newer_first` looks at the head of the results for pairs of the user's own statements
that answer this query with different values at different times. The later statement is placed just above the
earlier one, which names the later one in its result (``revised_by``) and reads as earlier in ``context()``.
Nothing is written and nothing is dropped: both stay in the results, so a question about the past or one that
needs both ("how many engineers did I lead then, and now?") still finds them.

What counts as the user's own statement (not a question, a wish, a one-off happening or someone else's) is
linguistic knowledge that lives with ingestion; the facade hands it in as a :class:`StatementReader`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

import numpy as np

from memstrata.core.text import query_terms

if TYPE_CHECKING:
    from memstrata.retrieve.pipeline import Hit

T = TypeVar("T")
DAY = 86400.0
# Two statements closer than this are about different things even when one query finds both.
MIN_PAIR_COSINE = 0.3
# The later statement must itself answer the query: its cosine to the query at least this share of the
# earlier one's. (Fused scores are min-max normalised per stage, so they say little about two hits apart.)
MIN_RELEVANCE_RATIO = 0.7
# Down to this share when it also names what the query asks about, or says it changed and names something of
# the earlier statement: "salary's 54k from January" for "what's my salary?" after "salary is 48k" (0.64);
# not "I moved to Lisbon" for "when are my Portuguese lessons?" (0.66), which answers another question.
LOOSE_RELEVANCE_RATIO = 0.5
# ... and the earlier one must be near the query at all: a broad query ("what should I know about this user?")
# is close to nothing in particular, and two statements it happens to find are no two answers to it.
MIN_QUERY_COSINE = 0.25
# For a question about now, the current statements that come before any outdated one.
CURRENT_FIRST = 3

# A query about the past, or about several things, wants the history in its own order. A rate ("each week")
# or a count of how things are now ("how many hens do I have?") is a question about now.
_PAST_OR_MANY = re.compile(
    r"\b(?:used to|before|previous(?:ly)?|formerly|former|originally|initially|at first|first|earlier|"
    r"last time|back when|when (?:i|we)|in the past|ago|(?:was|did|had) (?:i|we)|were|how much (?:have|had|did)|"
    r"total|all|list|both|history|change[ds]?|ever|so far|altogether)\b|"
    r"\b(?:each|every)\b(?!\s+(?:day|week|month|year|morning|evening|night|weekend|weekday)s?\b)|"
    r"\bhow many\b(?!.*\b(?:do|does|am|is|are)\b)",
    re.IGNORECASE,
)


_HOW_MANY = re.compile(r"\bhow many\b", re.IGNORECASE)
# A count is revised by another count ("six hens" -> "down to four hens"); "I got a fern" after "I bought a
# cactus" adds to it.
_COUNT = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|dozen|"
                    r"single|pair|couple|no|none|zero)\b", re.IGNORECASE)


# What was, not how much there is: a question in these words may be answered by a fact replaced since.
_PAST = re.compile(
    r"\b(?:used to|before|previous(?:ly)?|formerly|former|originally|initially|at first|earlier|"
    r"last time|back when|when (?:i|we) (?:was|were|lived|worked|had|used)|in the past|ago|"
    r"(?:was|did|had) (?:i|we))\b",
    re.IGNORECASE,
)


def asks_past(query: str) -> bool:
    """Does the query ask how things were ("what did I work on at Ocado?", "where did I live before?")?"""
    return bool(_PAST.search(query))


class StatementReader(Protocol):
    """What ranking needs to know about the words of two stored statements."""

    def states_own(self, text: str, slot_subject: str | None) -> bool:
        """Is this the user saying how things are for them (not a question, wish or supposition, nor a statement
        about someone else)?"""

    def one_off(self, text: str) -> bool:
        """A past happening that stays true ("I bought 16 kg kettlebells"): nothing later outdates it."""

    def tentative(self, text: str) -> bool:
        """A question, wish or supposition ("If I moved to Cardiff, would my rent be cheaper?"): it says
        nothing of how things are."""

    def marks_change(self, text: str) -> bool:
        """Does the statement say that something changed ("switched", "now", "instead")?"""

    def whose(self, text: str) -> str:
        """Whom the statement is about: "user" for the user's own, else the name or relation word of the one
        it is about ("My sister Ines lives here" -> "sister")."""

    def speaks_of_self(self, text: str) -> bool:
        """Does the user speak of themselves here ("I walk to work"; not "my mate Callum earns 60k")?"""

    def only_ended(self, text: str) -> bool:
        """Does the statement say only that something of the user's ended ("Dropped the evening course",
        "My accountant retired"), without what took its place?"""

    def echoes(self, text: str) -> bool:
        """Is this the user's short reply to something the assistant said, not asked ("thanks mate (in reply
        to: If you take a lot of photos, Google One is worth it …)"): words that mostly echo the assistant's?"""

    def values_left(self, text: str) -> list[str]:
        """What the statement says the speaker has no longer, by name: the old value of a change it names
        ("switched from Virgin Media to Zen" -> "Virgin Media") or what it says ended ("sold the Corsa" -> "Corsa")."""

    def named_values(self, text: str) -> list[str]:
        """The names and figures the statement says, as said ("I train at Anytime Fitness" -> "Anytime
        Fitness")."""

    def attribute(self, vec: np.ndarray) -> str | None:
        """The attribute a statement or query sits clearly in, by its vector ("job", "commute", ...), or None."""

    def attributes(self, vecs: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The attributes the reader knows, and how near each row of ``vecs`` is to each (rows by attributes;
        no attributes when it knows none)."""

    def sentences(self, text: str) -> list[str]:
        """The sentences of a long message that were given vectors of their own at ingest, in their order
        (empty for a short message): the i-th stored sentence vector is the vector of the i-th of these."""


class _Words(dict[str, frozenset[str]]):
    """The content words of each statement one pairing reads, read once per statement (the pairing compares
    every statement of the head with every other; it lives as long as the pairing does)."""

    def __missing__(self, text: str) -> frozenset[str]:
        words = frozenset(query_terms(text, 64))
        self[text] = words
        return words


def _says_other(new_text: str, old_text: str, asked: set[str], words: _Words) -> bool:
    """Beyond the words of the query, does each statement say something the other does not? A repeat, or a
    later statement that only adds to the earlier one, is no other answer."""
    new_words, old_words = words[new_text] - asked, words[old_text] - asked
    return bool(new_words - old_words) and bool(old_words - new_words)


def own_statement(h: Hit, said: str, reader: StatementReader) -> bool:
    """Is this hit the user saying how things are for them (``said``: what it says in answer to the query),
    not a question, a wish, someone else's news or a reply that echoes the assistant?"""
    return h.record.source_role == "user" and reader.states_own(said, None) and not reader.tentative(said) \
        and not reader.echoes(said)


def wants_current(query: str) -> bool:
    """Does the query ask how things are now (not how they were, nor for a count or list over time)?"""
    return not _PAST_OR_MANY.search(query)


def answering_parts(hits: Sequence[Hit], vectors: dict[str, np.ndarray], sentences: dict[str, np.ndarray] | None,
                    qvec: np.ndarray, reader: StatementReader) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """What each hit says in answer to the query: a long message by its sentence nearest the query ("I weigh
    240 pounds" inside a message about a back brace), anything else by all it says. Returns the texts and
    vectors to compare, by memory id; a message whose stored sentence vectors no longer match its sentences
    (written by another version of the splitter) is read whole."""
    texts = {h.record.id: h.record.text for h in hits}
    vecs = dict(vectors)
    if not sentences:
        return texts, vecs
    q = np.asarray(qvec, dtype=np.float32)
    for h in hits:
        mat = sentences.get(h.record.id)
        if mat is None or not len(mat) or h.record.id not in vecs:
            continue
        parts = reader.sentences(h.record.text)
        if len(parts) != len(mat):
            continue
        best = int(np.argmax(mat @ q))
        texts[h.record.id], vecs[h.record.id] = parts[best], np.asarray(mat[best], dtype=np.float32)
    return texts, vecs


def newer_first(hits: list[Hit], vectors: dict[str, np.ndarray], reader: StatementReader, query: str,
                window: int, about: set[str] | None = None, texts: dict[str, str] | None = None) -> list[Hit]:
    """Callers pass queries about the user ("what's my salary?"), or with ``about`` the names or relation
    words of someone the user talks about ("which school does Leo go to?": ``{"leo"}``), never a speaker of a
    conversation between people (each speaks as "I", and a question about one of them is no question about
    the latest speaker). With ``about``, the statements compared are the user's that name that person.

    ``hits`` (ranked) with, inside the first ``window``, each earlier statement of the user's followed by
    the latest statement that answers the same query with another value (moved up to just above it). The
    earlier one gets the later one's id as ``revised_by`` and stage ``outdated``, the later one stage
    ``revises``; outdated statements then come after the first :data:`CURRENT_FIRST` current ones.
    ``texts``: what each hit says in answer to the query (:func:`answering_parts`), by id; else its text."""
    if len(hits) < 2 or not wants_current(query):
        return hits
    head = hits[:window]
    said = {h.record.id: (texts or {}).get(h.record.id, h.record.text) for h in head}
    if about:
        # "my brother" is also the "Ivo" of "my brother Ivo drives a Golf"
        about = about | {m.group(1).lower() for h in head for a in about
                         for m in re.finditer(rf"\b{re.escape(a)}\s+([A-Z][a-z]+)\b", h.record.text, re.IGNORECASE)
                         if m.group(1)[:1].isupper()}
        named = re.compile(r"\b(?:" + "|".join(re.escape(a) for a in sorted(about)) + r")\b", re.IGNORECASE)
        own = [h for h in head if h.record.source_role == "user" and h.record.id in vectors
               and named.search(said[h.record.id]) and not reader.tentative(said[h.record.id])]
    else:
        own = [h for h in head if h.record.id in vectors and own_statement(h, said[h.record.id], reader)]
    if len(own) < 2:
        return hits
    if _HOW_MANY.search(query):
        own = [h for h in own if _COUNT.search(said[h.record.id])]
    order = [h.record.id for h in head]
    asked = set(query_terms(query))
    moved: set[str] = set()
    words = _Words()
    near = _Near(own, vectors)
    for old in sorted(own, key=lambda h: order.index(h.record.id)):
        if old.record.id in moved or reader.one_off(said[old.record.id]):
            continue
        newer = _latest_revision(old, own, vectors, asked, reader, said, words, near)
        if newer is None:
            continue
        old.stages["outdated"] = 1.0
        old.revised_by = newer.record.id
        newer.stages["revises"] = 1.0
        i_old, i_new = order.index(old.record.id), order.index(newer.record.id)
        if i_new > i_old:
            order.insert(i_old, order.pop(i_new))
            newer.score = max(newer.score, old.score)
        moved.add(newer.record.id)
    _same_message(own, order, vectors, asked, moved, said, words)
    _value_before_the_word_of_change(own, order, vectors, reader, said)
    _replies_to_what_changed(head, own, reader, said)
    by_id = {h.record.id: h for h in head}
    return current_first([by_id[i] for i in order]) + hits[window:]


def _is_outdated(h: Hit) -> bool:
    return "outdated" in h.stages


def current_first(head: list[T], outdated: Callable[[T], bool] | None = None) -> list[T]:
    """A question about now is answered by the current statements first: each outdated one comes after the
    first :data:`CURRENT_FIRST` that are not (in their order), so what the user said before reads as history
    below the answer, not as a second answer beside it. Nothing leaves the results. ``outdated``: how to
    tell (a hit's stage, by default)."""
    if outdated is None:
        outdated = cast(Callable[[T], bool], _is_outdated)
    out: list[T] = []
    waiting: list[T] = []
    current = 0
    for h in head:
        if outdated(h) and current < CURRENT_FIRST:
            waiting.append(h)
            continue
        out.append(h)
        current += not outdated(h)
    seen = 0
    for i, h in enumerate(out):  # the waiting ones go right after the CURRENT_FIRST-th current one
        seen += not outdated(h)
        if seen == CURRENT_FIRST:
            return out[: i + 1] + waiting + out[i + 1 :]
    return out + waiting


REPLY_WITHIN = 6 * 3600.0  # an assistant reply to a statement comes in the same sitting


def _replies_to_what_changed(head: Sequence[Hit], own: Sequence[Hit], reader: StatementReader,
                             said: dict[str, str]) -> None:
    """The assistant's reply to a statement since revised, in the same sitting, naming a value that statement
    named and none the later one names ("Anytime Fitness is open all night, so …" after "I train at Anytime
    Fitness", once "I lift at Gold's Gym" revised it), speaks of how things were: it is revised with the
    statement."""
    by_id = {h.record.id: h for h in own}
    replies = [h for h in head if h.record.source_role == "assistant" and not h.revised_by]
    reply_words: dict[str, frozenset[str]] = {}  # read once per reply, however many statements were revised
    for old in own:
        reviser = by_id.get(old.revised_by or "")
        if reviser is None or not replies:
            continue
        later = _terms(said[reviser.record.id])
        came = [w for v in reader.named_values(said[reviser.record.id]) if (w := _terms(v))]
        gone = [w for v in reader.named_values(said[old.record.id]) if (w := _terms(v)) and not w <= later]
        if not gone:
            continue
        for reply in replies:
            r = reply.record
            if reply.revised_by or r.conversation_id != old.record.conversation_id \
                    or not 0 <= r.created_at - old.record.created_at <= REPLY_WITHIN:
                continue
            if r.id not in reply_words:
                reply_words[r.id] = _terms(r.text)
            words = reply_words[r.id]
            if any(w <= words for w in gone) and not any(w <= words for w in came):
                reply.stages["outdated"] = 1.0
                reply.revised_by = reviser.record.id


def _terms(text: str) -> frozenset[str]:
    """The words of a text, as a part of it is looked for in it (:func:`_within`, and a value in a reply:
    "Gold's Gym" says the "Gold Gym" of a reading that dropped the possessive; "Anytime Fitness" is not in
    "fitness tips")."""
    return frozenset(query_terms(text, 256))


def _value_before_the_word_of_change(own: Sequence[Hit], order: list[str], vectors: dict[str, np.ndarray],
                                     reader: StatementReader, said: dict[str, str]) -> None:
    """"I've changed GP practices." says that something changed; "I'm now with Dr Pemberton", said in the same
    message and itself a revision or a change, says what to: it goes just above, and the ending reads as
    history beside it ("I gave up on the violin" once "now it's the cello" is there)."""
    for ended in own:
        if not reader.only_ended(said[ended.record.id]) or ended.revised_by:
            continue
        episodes = set(ended.record.episode_ids)
        value = next((h for h in own if h is not ended
                      and ("revises" in h.stages or reader.marks_change(said[h.record.id]))
                      and episodes & set(h.record.episode_ids) and not reader.only_ended(said[h.record.id])
                      and "outdated" not in h.stages
                      and float(np.dot(vectors[h.record.id], vectors[ended.record.id])) >= MIN_PAIR_COSINE), None)
        if value is None:
            continue
        if order.index(value.record.id) > order.index(ended.record.id):
            order.insert(order.index(ended.record.id), order.pop(order.index(value.record.id)))
            value.score = max(value.score, ended.score)
        ended.stages["outdated"] = 1.0
        ended.revised_by = value.record.id


def _same_message(own: Sequence[Hit], order: list[str], vectors: dict[str, np.ndarray], asked: set[str],
                  moved: set[str], said: dict[str, str], words: _Words) -> None:
    """What a revised message said is revised with it: "I teach chemistry at Roundhay School", drawn from
    the message a later "I'm at Allerton Grange now" revised, is placed below that too (when the two say
    different things and are about the same thing at all, or it says what the revised one said in its own
    words), however far it ranked above."""
    by_id = {h.record.id: h for h in own}
    for old in own:
        reviser = by_id.get(old.revised_by or "")
        if reviser is None:
            continue
        episodes = set(old.record.episode_ids)
        for sib in own:
            if sib is old or sib is reviser or sib.revised_by or sib.record.id in moved \
                    or not episodes & set(sib.record.episode_ids) \
                    or reviser.record.created_at < sib.record.created_at + DAY \
                    or float(np.dot(vectors[sib.record.id], vectors[reviser.record.id])) < MIN_PAIR_COSINE \
                    and not _within(said[sib.record.id], said[old.record.id]) \
                    or not _says_other(said[reviser.record.id], said[sib.record.id], asked, words):
                continue
            sib.stages["outdated"] = 1.0
            sib.revised_by = reviser.record.id
            i_sib, i_new = order.index(sib.record.id), order.index(reviser.record.id)
            if i_new > i_sib:
                order.insert(i_sib, order.pop(i_new))
                reviser.score = max(reviser.score, sib.score)


def _within(part: str, whole: str) -> bool:
    """Does ``whole`` say every word of ``part`` (a statement drawn from it: "Our energy is with Octopus" of
    "Our energy's with Octopus and the bill's just gone up again")?"""
    words = frozenset(query_terms(part, 64))
    return bool(words) and words <= _terms(whole)


def _shares(words: set[str], other: set[str]) -> bool:
    """A word in common, counting "lesson" and "lessons", "volunteer" and "volunteering" as one."""
    return bool(words & other) or bool({a[:5] for a in words if len(a) >= 5} & {b[:5] for b in other if len(b) >= 5})


def _on_topic(new: str, old: str, asked: set[str], reader: StatementReader, words: _Words) -> bool:
    """Does the later statement name what the query asks about, or say that something changed and name
    something the earlier one said?"""
    said = set(words[new])
    if _shares(said, asked):
        return True
    return reader.marks_change(new) and _shares(said - asked, set(words[old]))


class _Near:
    """What every pair of the user's statements in the head needs first, read for all pairs at once: when each
    was said, how near the query each is, how near each is to each other. It only narrows down the pairs;
    :func:`_latest_revision` checks each one it lets through as before."""

    def __init__(self, own: Sequence[Hit], vectors: dict[str, np.ndarray]) -> None:
        self.index = {h.record.id: n for n, h in enumerate(own)}
        self.said_at = np.array([h.record.created_at for h in own], dtype=np.float64)
        self.relevance = np.array([relevance_of(h) for h in own], dtype=np.float64)
        rows = [np.asarray(vectors[h.record.id], dtype=np.float32) for h in own]
        mat = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        self.cosines = mat @ mat.T

    def later_and_near(self, old: Hit, relevance: float) -> np.ndarray:
        """Positions in ``own`` said a day or more after ``old``, near enough the query and ``old`` to pass
        the checks of :func:`_latest_revision` (with a margin for rounding: those checks decide)."""
        row = self.cosines[self.index[old.record.id]]
        return np.flatnonzero((self.said_at >= old.record.created_at + DAY)
                              & (self.relevance >= relevance * LOOSE_RELEVANCE_RATIO - 1e-6)
                              & (row >= MIN_PAIR_COSINE - 1e-4))


def _latest_revision(old: Hit, own: Sequence[Hit], vectors: dict[str, np.ndarray],
                     asked: set[str], reader: StatementReader, said: dict[str, str], words: _Words,
                     near: _Near) -> Hit | None:
    """The latest of ``own`` that says something later than ``old`` about the same thing with another value.
    (The checks are all needed; the cheap ones go first.)"""
    best: Hit | None = None
    best_key: tuple[float, bool, float, float] | None = None
    ov = vectors[old.record.id]
    relevance = relevance_of(old)
    if relevance < MIN_QUERY_COSINE:
        if "keyword" not in old.stages:
            return None
        # found by the query's words, not its meaning ("I work as a data analyst at Asda … strength work"
        # for "where do I work?"): a later statement near the query in meaning may still revise it
        relevance = MIN_QUERY_COSINE
    for h in [own[n] for n in near.later_and_near(old, relevance)]:
        # Said later, on another day: when each was said (``created_at``) orders them, not the time a
        # statement is about ("salary's 54k from January" is the newer word even when January is ahead).
        if h is old or h.record.created_at < old.record.created_at + DAY:
            continue
        ratio = relevance_of(h) / relevance
        if ratio < LOOSE_RELEVANCE_RATIO or float(np.dot(ov, vectors[h.record.id])) < MIN_PAIR_COSINE:
            continue
        if ratio < MIN_RELEVANCE_RATIO and not _on_topic(said[h.record.id], said[old.record.id], asked, reader,
                                                         words):
            continue
        if not _says_other(said[h.record.id], said[old.record.id], asked, words):
            continue
        key = _later(h, ov, vectors, reader, said)
        if best_key is None or key > best_key:
            best, best_key = h, key
    return best


def relevance_of(h: Hit) -> float:
    """How near the query a hit is: its vector's cosine, or its best sentence's for a long message."""
    return max(h.stages.get("dense", 0.0), h.stages.get("sentence", 0.0))


def _later(h: Hit, old: np.ndarray, vectors: dict[str, np.ndarray], reader: StatementReader,
           said: dict[str, str]) -> tuple[float, bool, float, float]:
    """Later day first; on one day, what took the old value's place before what only says it ended ("my
    accountant retired" beside "so I'm with Ledgerly now"), then what both answers the query and is near the
    old statement (the day's word on it, not a greeting that shares a word with the query), then the later
    said."""
    near = relevance_of(h) * float(np.dot(old, vectors[h.record.id]))
    return h.record.created_at // DAY, not reader.only_ended(said[h.record.id]), round(near, 3), h.record.created_at
