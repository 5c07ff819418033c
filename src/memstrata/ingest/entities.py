"""Entity names: canonical forms, comparison keys and first-name/full-name alias resolution."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from memstrata.tiers.base import EntityUpsert, WriteBatch, entity_key

DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those"})
POSSESSIVES = frozenset({"my", "our", "your", "his", "her", "their", "its"})
# chat fillers NER sometimes glues onto a name: "Btw Joanna"
DISCOURSE = frozenset({"btw", "fyi", "ps", "oh", "hey", "hi", "ok", "okay", "so", "also", "well", "yeah", "yes",
                       "no", "and", "but", "anyway", "lol", "omg", "ugh"})
TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "madam", "dame",
                    "lord", "lady", "uncle", "aunt", "auntie"})

# Nouns naming a person by their relation to the speaker; "my sister Anna" makes Anna the user's sister.
RELATION_NOUNS = frozenset({
    "mother", "mom", "mum", "mama", "father", "dad", "papa", "parent", "parents", "sister", "brother",
    "sibling", "wife", "husband", "spouse", "partner", "fiance", "fiancé", "fiancee", "fiancée",
    "boyfriend", "girlfriend", "son", "daughter", "child", "kid", "baby", "grandmother", "grandma",
    "granny", "grandfather", "grandpa", "grandson", "granddaughter", "aunt", "uncle", "cousin", "niece",
    "nephew", "stepmother", "stepfather", "stepson", "stepdaughter", "friend", "bestie", "roommate",
    "flatmate", "housemate", "neighbor", "neighbour", "boss", "manager", "colleague", "coworker",
    "co-worker", "teammate", "mentor", "mentee", "assistant", "client", "landlord", "landlady",
    "tenant", "doctor", "dentist", "therapist", "lawyer", "accountant", "teacher", "tutor", "coach",
    "trainer", "vet", "nanny", "babysitter", "ex", "classmate", "supervisor", "lead", "ceo", "cto",
    "founder", "cofounder", "co-founder", "in-law", "dog", "cat", "puppy", "kitten", "pet", "horse",
    "parrot", "hamster", "rabbit", "physio", "physiotherapist", "pediatrician", "paediatrician", "gp",
    "optometrist", "hairdresser", "barber", "psychiatrist", "counselor", "counsellor", "mechanic", "godmother",
    "godfather", "stepbrother", "stepsister", "half-brother", "half-sister", "twin", "buddy", "pal",
})
PET_NOUNS = frozenset({"dog", "cat", "puppy", "kitten", "pet", "horse", "parrot", "hamster", "rabbit"})

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_POSSESSIVE_S = re.compile(r"['’]s$|(?<=s)['’]$", re.IGNORECASE)
_PROJECT = "project"


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    return [w for w in _SPACE.split(text.strip()) if w]


def canonical_name(text: str) -> str:
    """Display form of a name: determiners, possessives, titles and a leading relation noun removed.

    ``"my sister Anna"`` -> ``"Anna"``, ``"Dr. Okafor"`` -> ``"Okafor"``, ``"the Alpha project"`` ->
    ``"Alpha project"``, ``"Anna's"`` -> ``"Anna"``. A bare relation noun stays: ``"my boss"`` -> ``"boss"``.
    """
    words = _words(text)
    if words:
        words[-1] = _POSSESSIVE_S.sub("", words[-1])
    out: list[str] = []
    for i, word in enumerate(words):
        bare = _EDGE_PUNCT.sub("", word).lower()
        rest = words[i + 1:]
        if not out and (bare in DETERMINERS or bare in POSSESSIVES or bare in DISCOURSE):
            continue
        if not out and bare in TITLES and rest:
            continue
        # "sister Anna": the relation noun is a description, the name follows it
        if not out and bare in RELATION_NOUNS and rest and rest[0][:1].isupper():
            continue
        out.append(word)
    name = " ".join(out).strip(" ,;:!?\"'“”‘’()")
    return name.rstrip(".") if name.count(".") == 1 else name


def canonical_key(name: str) -> str:
    """Comparison key for a name: canonical form, NFKC, case-folded, punctuation and spacing normalised.

    "Project Phoenix" and "the Phoenix project" share a key.
    """
    words = [_EDGE_PUNCT.sub("", w).casefold() for w in _words(canonical_name(name))]
    words = [w for w in words if w]
    if _PROJECT in words and len(words) > 1:
        words = [_PROJECT] + [w for w in words if w != _PROJECT]
    return " ".join(words)


def _core(key: str) -> list[str]:
    return [w for w in key.split() if w != _PROJECT]


def _partial_match(short: list[str], full: list[str]) -> bool:
    """A single name matches a longer name's first or last word ("Anna" ~ "Anna Silva", "Patel" ~ "Raj Patel")."""
    return len(short) == 1 and len(full) >= 2 and short[0] in (full[0], full[-1])


def same_entity(a: str, b: str, known: Iterable[str] | None = None) -> bool:
    """Whether two names can denote one entity.

    Equal keys always match. A one-word name matches a longer name that starts or ends with it, unless
    ``known`` (the names already known in the same scope) holds another such longer name, which would make
    the short name ambiguous ("Anna" with both "Anna Silva" and "Anna Costa" known).
    """
    ka, kb = canonical_key(a), canonical_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    ca, cb = _core(ka), _core(kb)
    if ca == cb and ca:
        return True  # "Phoenix" and "Project Phoenix"
    if len(ca) > len(cb):
        ca, cb = cb, ca
        ka, kb = kb, ka
    if not _partial_match(ca, cb):
        return False
    if known is None:
        return True
    rivals = {k for k in (canonical_key(n) for n in known) if k != kb and _partial_match(ca, _core(k))}
    return not rivals


class EntityIndex:
    """The known entity names of one scope, indexed for constant-time alias resolution.

    Resolution follows :func:`same_entity`: an exact key, else the unique longer name whose first or last
    word is the one-word name given ("Anna" -> "Anna Silva"), or the same name without the word "project".
    """

    def __init__(self, names: Iterable[object] = (), parent: EntityIndex | None = None) -> None:
        self._parent = parent  # read-only fallback: an overlay never changes the index it extends
        self._by_key: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._by_core: dict[str, str] = {}
        self._by_word: dict[str, set[str]] = {}
        for name in names:  # plain names, or mentions with .canonical and .label
            canonical = getattr(name, "canonical", name)
            if isinstance(canonical, str):
                self.add(canonical, getattr(name, "label", None))

    def __len__(self) -> int:
        return len(self._by_key) + (len(self._parent) if self._parent is not None else 0)

    def overlay(self) -> EntityIndex:
        """An empty index that reads through to this one; what is added to it stays in it."""
        return EntityIndex(parent=self)

    def __contains__(self, name: object) -> bool:
        """Known as is, as an alias, or as the full name of a known one-word name ("Anna Silva" if "Anna")."""
        if not isinstance(name, str):
            return False
        if self.lookup(name) is not None:
            return True
        core = _core(canonical_key(name))
        index: EntityIndex | None = self
        while index is not None:
            if len(core) >= 2 and (core[0] in index._by_key or core[-1] in index._by_key):
                return True
            index = index._parent
        return False

    def names(self) -> list[str]:
        """Known names, in insertion order (a parent's first)."""
        return (self._parent.names() if self._parent is not None else []) + list(self._by_key.values())

    def add(self, name: str, label: str | None = None) -> None:
        """Remember ``name`` (ignored when its key is empty or already known) and, if given, its label."""
        key = canonical_key(name)
        if not key:
            return
        if label and key not in self._labels:
            self._labels[key] = label
        if key in self._by_key:
            return
        self._by_key[key] = name
        core = _core(key)
        self._by_core.setdefault(" ".join(core), key)
        if len(core) >= 2:
            for word in {core[0], core[-1]}:
                self._by_word.setdefault(word, set()).add(key)

    def lookup(self, name: str) -> str | None:
        """The known name ``name`` denotes, or None when it is new or ambiguous."""
        key = canonical_key(name)
        if not key:
            return None
        if key in self._by_key:
            return self._by_key[key]
        core = _core(key)
        joined = " ".join(core)
        if joined in self._by_core:
            return self._by_key[self._by_core[joined]]
        if len(core) == 1:
            matches = self._by_word.get(core[0], set())
            if len(matches) == 1:
                return self._by_key[next(iter(matches))]
        return self._parent.lookup(name) if self._parent is not None else None

    def label(self, name: str) -> str | None:
        """The label recorded for the known name ``name`` denotes, if any."""
        known = self.lookup(name)
        if not known:
            return None
        label = self._labels.get(canonical_key(known))
        return label if label or self._parent is None else self._parent.label(known)

    def resolve(self, name: str) -> str:
        """The known name ``name`` denotes, else ``canonical_name(name)``."""
        return self.lookup(name) or canonical_name(name)


def resolve_alias(name: str, known: Iterable[str]) -> str:
    """The known name that ``name`` refers to, else ``canonical_name(name)``.

    An exact key match wins; otherwise a unique longer known name that ``name`` abbreviates
    ("Anna" -> "Anna Silva"). A full name never resolves to a shorter known alias: it is the better label.
    For many lookups against one scope, build an :class:`EntityIndex` once instead.
    """
    return EntityIndex(known).resolve(name)


def resolve_entities(batch: WriteBatch) -> WriteBatch:
    """Decide the entity upserts of ``batch`` from its links and edges (``batch.entities``), so the store
    only writes what it is told. Names were already matched to the scope's known entities when the facts
    were extracted (:class:`EntityIndex`); two names are one entity here when their ``entity_key`` is equal.

    The first mention of an entity in the batch decides what the batch says about it: a link counts one
    mention and brings its alias and label, an edge alone counts none and keeps the stored label. Calling
    it again adds nothing."""
    seen = {up.key for up in batch.entities}
    for _memory_id, name, label, alias in batch.entity_links:
        key = entity_key(name)
        if key in seen:
            continue
        seen.add(key)
        extra = tuple(a for a in (alias.strip(),) if a and a != name.strip())
        batch.entities.append(
            EntityUpsert(name.strip(), None if label == "OTHER" else label, extra, mentions=1)
        )
    for subject, _relation, obj, _edge_memory, _episode in batch.edges:
        for end in (subject, obj):
            if entity_key(end) not in seen:
                seen.add(entity_key(end))
                batch.entities.append(EntityUpsert(end.strip(), None))
    return batch
