"""The shared harness data model and the two in-process baselines: flat embedding cosine and BM25 Okapi.

A *system* indexes one conversation history (an instance's haystack) session by session, then answers a
question with a ranking of turn ids. The baselines index turns directly; memstrata's adapter lives beside the
runners and maps its memories back to turns through provenance.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

CONTEXT_BUDGET = 2000


@dataclass
class Turn:
    """One message of a session, under the benchmark's own id (``<session_id>_<k>``, or LoCoMo's ``D1:3``)."""

    turn_id: str
    role: str
    content: str
    has_answer: bool = False
    name: str | None = None


@dataclass
class Session:
    """A dated session: its turns in order."""

    session_id: str
    date: datetime | None
    turns: list[Turn] = field(default_factory=list)


@dataclass
class Outcome:
    """What a system answered for one question.

    ``ranked`` holds distinct turn ids, best first (any role; the runner keeps the keys it scores).
    ``context_turns`` are the turns cited by a ``CONTEXT_BUDGET``-token context block; ``context_tokens`` its size.
    ``search_ms`` is steady-state search latency; ``cold_search_ms`` the first search after ingestion, where a
    system loads lazily built structures (None when not measured apart).
    """

    ranked: list[str]
    search_ms: float
    top10_tokens: int
    context_tokens: int
    context_turns: set[str]
    cold_search_ms: float | None = None


class System(Protocol):
    """A retrieval system under test; ``begin`` starts a fresh, isolated index for one history."""

    key: str
    label: str

    def begin(self, scope: str) -> None: ...

    def add_session(self, session: Session) -> tuple[float, int]:
        """Index one session; return (seconds spent, messages ingested)."""
        ...

    def query(self, question: str, now: datetime | None) -> Outcome: ...

    def end(self) -> None: ...

    def close(self) -> None: ...


def pack_context(
    texts: Sequence[str], count: Callable[[str], int], budget: int = CONTEXT_BUDGET
) -> tuple[list[int], int]:
    """Greedy budget packing in rank order, skipping any text that would overflow (what ``Memory.context`` does)."""
    used = 0
    keep: list[int] = []
    for i, text in enumerate(texts):
        n = count(f"- {text}\n")
        if used + n <= budget:
            keep.append(i)
            used += n
    return keep, used


# A short English stopword list: enough to keep "the"/"my"/"did" from dominating BM25 on chat questions.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves""".split()
)

_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Lowercase alphanumeric words, stopwords removed."""
    return [w for w in _WORD.findall(text.lower()) if w not in stopwords]


class BM25:
    """BM25 Okapi over a fixed list of documents (k1=1.2, b=0.75, Lucene's non-negative idf)."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tfs = [Counter(d) for d in docs]
        self.lengths = np.array([len(d) for d in docs], dtype=np.float64)
        self.avgdl = float(self.lengths.mean()) if len(docs) and self.lengths.sum() else 1.0
        df: Counter[str] = Counter()
        for tf in self.tfs:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log((n - c + 0.5) / (c + 0.5) + 1.0) for t, c in df.items()}
        # Postings make a query cost proportional to the documents that share a term, not to the corpus.
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for i, tf in enumerate(self.tfs):
            for t, c in tf.items():
                self.postings.setdefault(t, []).append((i, c))

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for a tokenised query (repeated query terms count once)."""
        out = np.zeros(len(self.tfs), dtype=np.float64)
        norm = self.k1 * (1.0 - self.b + self.b * self.lengths / self.avgdl)
        for term in dict.fromkeys(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, c in self.postings[term]:
                out[i] += idf * c * (self.k1 + 1.0) / (c + norm[i])
        return out


def rank(scores: np.ndarray) -> list[int]:
    """Indexes by descending score; ties keep index order so runs are deterministic."""
    return [int(i) for i in np.argsort(-scores, kind="stable")]


class _TurnBaseline:
    """Common bookkeeping: which turns are indexed, and how a ranking becomes an Outcome."""

    key = ""
    label = ""

    def __init__(self, embedder, roles: Sequence[str] = ("user",)) -> None:  # type: ignore[no-untyped-def]
        self.embedder = embedder
        self.roles = tuple(roles)
        self.ids: list[str] = []
        self.texts: list[str] = []

    def begin(self, scope: str) -> None:
        self.ids, self.texts = [], []

    def _keep(self, session: Session) -> list[Turn]:
        return [t for t in session.turns if t.role in self.roles and t.content.strip()]

    def _outcome(self, order: list[int], search_ms: float) -> Outcome:
        ranked: list[str] = []
        texts: list[str] = []
        seen: set[str] = set()
        for i in order:
            # A session repeated in a haystack yields the same turn id twice; rank it once.
            if self.ids[i] not in seen:
                seen.add(self.ids[i])
                ranked.append(self.ids[i])
                texts.append(self.texts[i])
        count = self.embedder.count_tokens
        top10 = sum(count(t) for t in texts[:10])
        keep, used = pack_context(texts, count)
        return Outcome(ranked, search_ms, top10, used, {ranked[i] for i in keep})

    def end(self) -> None:
        self.ids, self.texts = [], []

    def close(self) -> None:
        self.end()


class FlatBaseline(_TurnBaseline):
    """Exhaustive cosine similarity between the query and every indexed turn's embedding."""

    key = "flat"

    def __init__(self, embedder, roles: Sequence[str] = ("user",)) -> None:  # type: ignore[no-untyped-def]
        super().__init__(embedder, roles)
        self.label = f"flat {'MiniLM' if 'minilm' in getattr(embedder, 'name', '') else embedder.name}"
        self._chunks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None

    def begin(self, scope: str) -> None:
        super().begin(scope)
        self._chunks, self._matrix = [], None

    def add_session(self, session: Session) -> tuple[float, int]:
        turns = self._keep(session)
        start = time.perf_counter()
        if turns:
            self._chunks.append(self.embedder.embed([t.content for t in turns]))
        elapsed = time.perf_counter() - start
        self.ids.extend(t.turn_id for t in turns)
        self.texts.extend(t.content for t in turns)
        self._matrix = None
        return elapsed, len(turns)

    def query(self, question: str, now: datetime | None) -> Outcome:
        if self._matrix is None:
            dim = getattr(self.embedder, "dim", 0)
            self._matrix = np.vstack(self._chunks) if self._chunks else np.zeros((0, dim), dtype=np.float32)
        start = time.perf_counter()
        q = self.embedder.embed([question])[0]
        order = rank(self._matrix @ q)
        ms = (time.perf_counter() - start) * 1000.0
        return self._outcome(order, ms)

    def end(self) -> None:
        super().end()
        self._chunks, self._matrix = [], None


class BM25Baseline(_TurnBaseline):
    """BM25 Okapi over the indexed turns' words."""

    key = "bm25"
    label = "BM25"

    def __init__(self, embedder, roles: Sequence[str] = ("user",), stopwords: bool = True) -> None:  # type: ignore[no-untyped-def]
        super().__init__(embedder, roles)
        self.stopwords = STOPWORDS if stopwords else frozenset()
        self._tokens: list[list[str]] = []
        self._index: BM25 | None = None

    def begin(self, scope: str) -> None:
        super().begin(scope)
        self._tokens, self._index = [], None

    def add_session(self, session: Session) -> tuple[float, int]:
        turns = self._keep(session)
        start = time.perf_counter()
        self._tokens.extend(tokenize(t.content, self.stopwords) for t in turns)
        elapsed = time.perf_counter() - start
        self.ids.extend(t.turn_id for t in turns)
        self.texts.extend(t.content for t in turns)
        self._index = None
        return elapsed, len(turns)

    def query(self, question: str, now: datetime | None) -> Outcome:
        if self._index is None:
            self._index = BM25(self._tokens)
        start = time.perf_counter()
        order = rank(self._index.scores(tokenize(question, self.stopwords)))
        ms = (time.perf_counter() - start) * 1000.0
        return self._outcome(order, ms)

    def end(self) -> None:
        super().end()
        self._tokens, self._index = [], None
