"""The attribute a statement sets, judged by meaning: its vector against a few example statements per family.

The word patterns of :mod:`memstrata.ingest.updates` name a family only when a statement uses one of their
words; "I get the 38 bus into the office" or "the scale said 84 this morning" use none. Here each family is
described by a handful of short, plainly worded example statements (prototypes), embedded once per embedder
with the same model as the facts. A statement (or a stored fact, through its stored vector) belongs to the
family whose nearest prototype is close enough and clearly closer than any other family's.

The examples are generic on purpose: they say what the attribute is, not how any one conversation says it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "job": ("I work as an engineer at a company", "my job is teaching at a school",
            "I got hired as a nurse at the hospital", "I'm a sales assistant at a shop",
            "I started a new job at a different employer", "I was promoted to senior analyst"),
    "manager": ("my boss is Sarah", "I report to the head of the team", "my manager is someone new",
                "my team lead changed"),
    "lives_in": ("I live in this city", "my home is in a small town", "we moved house to another city",
                 "my flat is in the centre of town", "we bought a house in the suburbs"),
    "commute": ("I take the bus to the office", "I cycle to work", "I drive to work every day",
                "I get the train into the office", "I walk to the office"),
    "diet": ("I'm vegetarian", "I don't eat meat", "I eat fish but no meat", "I follow a strict diet",
             "I'm vegan"),
    "weight": ("I weigh 80 kilos", "I lost some weight", "the scale shows my weight"),
    "rent": ("my rent is 900 a month", "the landlord raised the rent", "I pay rent for my flat"),
    "salary": ("I earn 40k a year", "my salary went up", "I got a pay rise", "how much I'm paid per year"),
    "gym_schedule": ("I go to the gym on Mondays", "I work out three times a week", "I swim before work",
                     "my training days are Tuesday and Thursday"),
    "phone_model": ("I have an iPhone", "my phone is a Samsung", "I got a new mobile phone"),
    "laptop": ("my laptop is a MacBook", "I use a ThinkPad laptop for work", "my computer is a notebook"),
    "vehicle": ("I drive a Ford", "I bought a new car", "my car is a small hatchback", "I sold my car"),
    "medication": ("I take medication for my blood pressure", "my doctor prescribed tablets",
                   "my dose went up to 20mg"),
    "studies": ("I'm studying for a degree", "I'm doing a course at university", "I'm enrolled in a master's",
                "I'm learning a language with an app"),
    "wake_time": ("I wake up at 6am", "my alarm goes off at seven", "I get up early on weekdays"),
    "drink": ("I drink coffee every morning", "I have tea in the afternoon", "I only drink decaf"),
    "doctor": ("my GP is Dr Smith", "my dentist is new", "I see a therapist called Ann"),
    "partner": ("my girlfriend is lovely", "I'm dating someone new", "we broke up", "I'm married to my husband",
                "my boyfriend and I"),
    "housemate": ("I live with flatmates", "I live alone", "my roommate moved in"),
    "pets": ("I have a dog", "we have two cats", "we adopted a puppy"),
    "age": ("I'm 30 years old", "I just turned 40", "it was my birthday, I'm older now"),
    "hobby": ("I play video games in the evenings", "my hobby is painting", "I go climbing at weekends",
              "I play the guitar"),
    "plan": ("I signed up for a race", "I'm going on holiday abroad", "I joined a club",
             "I volunteer every week", "I have a membership"),
    "preference": ("I love spicy food", "I hate mushrooms", "I prefer tea over coffee", "I really like jazz"),
    "favorite": ("my favourite band is", "my favourite food is", "my favourite film"),
    "schedule": ("the meeting is at 10am", "my appointment is on Tuesday", "lessons are on Wednesday evenings",
                 "the event was moved to another day"),
}

MIN_COSINE = 0.45  # the nearest prototype must be at least this close
MIN_MARGIN = 0.04  # ... and this much closer than the best prototype of any other family
MIN_FIT = 0.17  # a family named by words whose nearest prototype is farther than this is a misreading

_lock = threading.Lock()
_cache: dict[tuple[str, int], tuple[list[str], np.ndarray, np.ndarray]] = {}
_NO_MEANING = frozenset({"hash"})  # embedders that hash words: their vectors say nothing about meaning


def _key(embed: Callable[[list[str]], np.ndarray]) -> tuple[str, int] | None:
    """One prototype matrix per embedding model (its name), shared by every instance of it."""
    owner = getattr(embed, "__self__", embed)
    name = getattr(owner, "name", None)
    if not isinstance(name, str) or name in _NO_MEANING:
        return None
    return name, int(getattr(owner, "dim", 0) or 0)


def _matrix(embed: Callable[[list[str]], np.ndarray], key: tuple[str, int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(families, family index per prototype, prototype vectors), embedded once per model."""
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
    families = list(PROTOTYPES)
    texts = [t for f in families for t in PROTOTYPES[f]]
    index = np.array([n for n, f in enumerate(families) for _ in PROTOTYPES[f]])
    vecs = np.asarray(embed(texts), dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = (vecs / np.where(norms == 0, 1.0, norms)).astype(np.float32)
    with _lock:
        _cache[key] = (families, index, vecs)
    return families, index, vecs


def family_scores(vec: np.ndarray, embed: Callable[[list[str]], np.ndarray]) -> list[tuple[str, float]]:
    """Each family with the cosine of its nearest prototype to ``vec``, best first."""
    families, table = family_table(np.asarray(vec, dtype=np.float32)[None, :], embed)
    if not families:
        return []
    row = table[0]
    return [(families[i], float(row[i])) for i in np.argsort(-row)]


def family_table(vecs: np.ndarray, embed: Callable[[list[str]], np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The families, and for each row of ``vecs`` the cosine of each family's nearest prototype (rows by
    families), in one product: what :func:`family_scores` gives for one vector, for many at once. Empty
    (no families) for an embedder without meaning or vectors of another size."""
    key = _key(embed)
    rows = np.asarray(vecs, dtype=np.float32)
    if key is None or rows.ndim != 2:
        return [], np.zeros((len(rows), 0), dtype=np.float32)
    families, index, protos = _matrix(embed, key)
    if rows.shape[1] != protos.shape[1]:
        return [], np.zeros((len(rows), 0), dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    sims = (rows / np.where(norms == 0, 1.0, norms)) @ protos.T
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])  # each family's prototypes lie together
    return families, np.maximum.reduceat(sims, starts, axis=1)


def family_by_meaning(vec: np.ndarray | None, embed: Callable[[list[str]], np.ndarray] | None) -> str | None:
    """The family a statement's vector sits in, or None when no family is near or two are equally near."""
    if vec is None or embed is None:
        return None
    ranked = family_scores(vec, embed)
    if not ranked:
        return None
    (family, top), second = ranked[0], (ranked[1][1] if len(ranked) > 1 else -1.0)
    if top < MIN_COSINE or top - second < MIN_MARGIN:
        return None
    return family


def fits(vec: np.ndarray | None, embed: Callable[[list[str]], np.ndarray] | None, family: str) -> bool:
    """Is a family named by a statement's words plausible for its meaning? ("I'm a Leinster rugby fan"
    reads as a job to a pattern that takes "-er" words for occupations; nothing about it is near a job.)
    True when there is nothing to judge by: no vector, no model with meaning, a family without prototypes."""
    if vec is None or embed is None or family not in PROTOTYPES:
        return True
    scores = dict(family_scores(vec, embed))
    return not scores or scores.get(family, 1.0) >= MIN_FIT


class RememberingEmbed:
    """An embedding function that embeds each distinct text once per ``add`` (a fact said as a whole message
    is read for its attribute and stored as evidence: one vector serves both). Keeps the model's name."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray]) -> None:
        owner = getattr(embed, "__self__", embed)
        self.name = getattr(owner, "name", None)
        self.dim = getattr(owner, "dim", 0)
        self._embed = embed
        self._seen: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._seen))
        if missing:
            for text, vec in zip(missing, self._embed(missing), strict=True):
                self._seen[text] = vec
        if not texts:
            return self._embed(texts)
        return np.stack([self._seen[t] for t in texts])
