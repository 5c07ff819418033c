"""Score fusion, near-duplicate collapse, MMR and token-budget trimming. Pure functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def rrf(ranked: Sequence[str], k: float, weight: float = 1.0) -> dict[str, float]:
    """Weighted reciprocal rank fusion contribution of one ranked list."""
    return {item: weight / (k + rank) for rank, item in enumerate(ranked, start=1)}


LINEAR_FLOOR = 0.3  # the normalised scale spans at least the top 30% of the best score


def linear(scored: Sequence[tuple[str, float]], weight: float = 1.0) -> dict[str, float]:
    """Min-max normalised scores of one list, times ``weight``: the best gets ``weight``."""
    if not scored:
        return {}
    values = [s for _, s in scored]
    lo, hi = min(values), max(values)
    # With few candidates min-max would call a close second "worthless"; the floor keeps the scale honest.
    lo = min(lo, hi - LINEAR_FLOOR * abs(hi))
    span = hi - lo
    if span <= 1e-6:  # ties within rounding noise must not hand one of them the whole weight
        return {item: weight for item, _ in scored}
    return {item: weight * (s - lo) / span for item, s in scored}


def collapse_duplicates(
    ids: Sequence[str], vectors: dict[str, np.ndarray], threshold: float
) -> tuple[list[str], dict[str, str]]:
    """Keep the first of any group whose vectors are closer than ``threshold``; map dropped → kept."""
    with_vec = [i for i in ids if i in vectors]
    pos = {item: n for n, item in enumerate(with_vec)}
    sims: np.ndarray | None = None
    near_earlier: np.ndarray | None = None
    if with_vec:
        mat = np.stack([vectors[i] for i in with_vec])
        sims = mat @ mat.T
        # An item none of whose earlier items is that close cannot join a kept one: no per-item test for it.
        near_earlier = np.asarray(np.tril(sims >= threshold, -1).any(axis=1), dtype=bool)
    kept: list[str] = []
    anchors = np.zeros(len(with_vec), dtype=bool)  # rows of kept items that have a vector
    dropped: dict[str, str] = {}
    for item in ids:
        n = pos.get(item)
        if n is not None and sims is not None and near_earlier is not None and near_earlier[n]:
            row = np.where(anchors, sims[n], -np.inf)
            j = int(np.argmax(row))
            if row[j] >= threshold:
                dropped[item] = with_vec[j]
                continue
        kept.append(item)
        if n is not None:
            anchors[n] = True
    return kept, dropped


def mmr(
    ids: Sequence[str], relevance: dict[str, float], vectors: dict[str, np.ndarray], lam: float, limit: int
) -> list[str]:
    """Maximal marginal relevance over the candidates, relevance rescaled to [0, 1]."""
    if not ids:
        return []
    rel = np.array([relevance[i] for i in ids])
    span = float(rel.max() - rel.min()) or 1.0
    rel = (rel - rel.min()) / span
    chosen: list[int] = []
    rest = list(range(len(ids)))
    dim = next((v.shape[0] for v in vectors.values()), 1)
    mat = np.stack([vectors.get(i, np.zeros(dim, dtype=np.float32)) for i in ids])
    while rest and len(chosen) < limit:
        if chosen:
            sim = (mat[rest] @ mat[chosen].T).max(axis=1)
        else:
            sim = np.zeros(len(rest))
        scores = lam * rel[rest] - (1 - lam) * sim
        pick = rest[int(np.argmax(scores))]
        chosen.append(pick)
        rest.remove(pick)
    return [ids[i] for i in chosen]


def fit_budget(
    texts: Sequence[str], budget: int, count: Callable[[str], int], overhead: int = 0
) -> tuple[list[int], int]:
    """Indexes of the texts that fit, in order, skipping any that would overflow; and tokens used."""
    used = overhead
    keep: list[int] = []
    for i, text in enumerate(texts):
        n = count(text)
        if used + n <= budget:
            keep.append(i)
            used += n
    return keep, used
