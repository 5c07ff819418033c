"""Batch embedding bucketed by token length: same vectors, same order, little padding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memstrata.core.text import chunk_text
from memstrata.providers.embedders import BATCH_TOKENS, buckets

CHATS = Path(__file__).resolve().parents[1] / "bench" / "data" / "project_chats.json"


def _windows(limit: int) -> list[str]:
    """Message windows of the project chats (real conversation text, as a worker embeds it)."""
    out: list[str] = []
    for chat in json.loads(CHATS.read_text())["chats"]:
        for session in chat["sessions"]:
            for turn in session["turns"]:
                out.extend(chunk_text(turn["content"]))
    return out[:limit]


def test_buckets_cover_every_text_once_shortest_first_within_their_limits() -> None:
    rng = np.random.default_rng(5)
    lengths = [int(n) for n in rng.integers(3, 257, 500)]
    groups = buckets(lengths, 64, BATCH_TOKENS)
    assert sorted(i for g in groups for i in g) == list(range(500))
    widths = [lengths[g[-1]] for g in groups]
    assert widths == sorted(widths)
    for g in groups:
        assert len(g) <= 64 and len(g) * lengths[g[-1]] <= BATCH_TOKENS
        assert lengths[g[-1]] <= max(lengths[g[0]] * 1.25, lengths[g[0]] + 6)
    padded = sum(len(g) * lengths[g[-1]] for g in groups)
    assert padded < 1.15 * sum(lengths)  # one padded batch of 64 would be about twice the real tokens
    assert buckets([], 64, BATCH_TOKENS) == []
    assert buckets([7], 64, BATCH_TOKENS) == [[0]]


def test_bucketed_vectors_match_one_text_per_run_in_the_callers_order(minilm) -> None:  # type: ignore[no-untyped-def]
    texts = _windows(120)
    texts = texts[::2] + ["ok", "x" * 3000] + texts[1::2]  # shuffled lengths, a tiny and a truncated one
    assert len({len(t) for t in texts}) > 20
    together = minilm.embed(texts)
    alone = np.vstack([minilm.embed([t]) for t in texts])
    assert together.shape == (len(texts), minilm.dim) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=2e-5)
    again = minilm.embed(texts[::-1])
    np.testing.assert_allclose(again[::-1], together, atol=2e-5)
    assert minilm.embed([]).shape == (0, minilm.dim)
