"""Retrieval metrics with LongMemEval's conventions (pure functions, no I/O).

Relevance is binary. ``recall_all@k`` is 1 when every gold item is in the top k (the paper's "Recall@k"),
``recall_any@k`` when at least one is, and ``ndcg@k`` uses DCG = rel_1 + sum_{i>=2} rel_i / log2(i), so ranks 1
and 2 are both undiscounted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T", bound=Hashable)
S = TypeVar("S", bound=Hashable)


def _top(ranked: Sequence[Hashable], k: int) -> set[Hashable]:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return set(ranked[:k])


def _gold(gold: Iterable[Hashable]) -> set[Hashable]:
    items = set(gold)
    if not items:
        raise ValueError("a question needs at least one gold item to be scored")
    return items


def recall_all_at_k(ranked: Sequence[Hashable], gold: Iterable[Hashable], k: int) -> float:
    """1.0 if every gold item is among the first ``k`` of ``ranked``, else 0.0."""
    items = _gold(gold)
    return 1.0 if items <= _top(ranked, k) else 0.0


def recall_any_at_k(ranked: Sequence[Hashable], gold: Iterable[Hashable], k: int) -> float:
    """1.0 if at least one gold item is among the first ``k`` of ``ranked``, else 0.0."""
    items = _gold(gold)
    return 1.0 if items & _top(ranked, k) else 0.0


def recall_fraction_at_k(ranked: Sequence[Hashable], gold: Iterable[Hashable], k: int) -> float:
    """Share of the gold items found among the first ``k`` (LoCoMo's evidence recall)."""
    items = _gold(gold)
    return len(items & _top(ranked, k)) / len(items)


def _discount(rank: int) -> float:
    return 1.0 if rank <= 2 else math.log2(rank)


def dcg_at_k(relevances: Sequence[float], k: int) -> float:
    """DCG of the first ``k`` relevances (rank 1 first): rel_1 + sum over i >= 2 of rel_i / log2(i)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return sum(rel / _discount(i) for i, rel in enumerate(relevances[:k], start=1))


def ndcg_at_k(ranked: Sequence[Hashable], gold: Iterable[Hashable], k: int) -> float:
    """Binary-relevance nDCG@k; the ideal ranking puts all gold items (at most k) first."""
    items = _gold(gold)
    seen: set[Hashable] = set()
    rels = []
    for item in ranked[:k]:
        # A repeated item earns nothing the second time, so a duplicate can never push nDCG above 1.
        rels.append(1.0 if item in items and item not in seen else 0.0)
        seen.add(item)
    ideal = dcg_at_k([1.0] * min(len(items), k), k)
    return dcg_at_k(rels, k) / ideal


def distinct(items: Iterable[T]) -> list[T]:
    """Items in first-appearance order, each once."""
    return list(dict.fromkeys(items))


def session_cutoff(turns: Sequence[T], session_of: Mapping[T, S], k: int) -> int:
    """Smallest k' such that the first k' turns hold ``k`` distinct sessions (or all turns if they hold fewer)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    seen: set[S] = set()
    for i, turn in enumerate(turns, start=1):
        seen.add(session_of[turn])
        if len(seen) >= k:
            return i
    return len(turns)


def session_ranking(turns: Sequence[T], session_of: Mapping[T, S]) -> list[S]:
    """Sessions in the order their first turn appears in a turn ranking.

    The first k entries are exactly the sessions inside the top ``session_cutoff(turns, session_of, k)`` turns,
    so scoring this list at k is scoring "grow the cutoff until the top k' turns hold k sessions".
    """
    return distinct(session_of[t] for t in turns)


def session_metric(
    metric: Callable[[Sequence[Hashable], Iterable[Hashable], int], float],
    turns: Sequence[T],
    session_of: Mapping[T, S],
    gold_sessions: Iterable[S],
    k: int,
) -> float:
    """Score a turn ranking at session level with any of the metrics above."""
    return metric(session_ranking(turns, session_of), gold_sessions, k)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for an empty sequence so a missing measure never reads as 0."""
    return sum(values) / len(values) if values else math.nan


def aggregate(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], group_by: str = "question_type"
) -> dict[str, dict[str, float]]:
    """Mean of each key overall (under ``"all"``) and per value of ``group_by``; each group also gets ``n``.

    Rows lacking a key (or holding None for it) are left out of that key's mean only.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {"all": list(rows)}
    for row in rows:
        groups.setdefault(str(row[group_by]), []).append(row)
    out: dict[str, dict[str, float]] = {}
    for name, members in groups.items():
        stats: dict[str, float] = {"n": float(len(members))}
        for key in keys:
            stats[key] = mean([float(r[key]) for r in members if r.get(key) is not None])
        out[name] = stats
    return out
