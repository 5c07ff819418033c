"""A long memory shown by the part of it that bears on the query.

``context()`` fills a token budget with whole memories in ranked order. One long message (an assistant's
700-token recipe, a pasted log) can take a third of the budget and push out the short statements the query
is really about. When not every memory fits, a memory longer than ``LONG_SHARE`` of the budget is shown as
an excerpt instead: its opening sentence (what the message is about) and the sentences that share the most
words with the query, in their original order, with " … " where text was left out. The memory itself is
unchanged; ``get(id)`` returns all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from memstrata.core.text import query_terms, split_sentences

LONG_SHARE = 0.125  # a memory over this share of the budget is cut when not every memory fits
MIN_EXCERPT_TOKENS = 48  # however small the budget, an excerpt has room for a sentence or two
GAP = " … "
MIN_SENTENCE_TOKENS = 6  # with less room than this left, no further sentence is looked at
STEM = 5  # words agree on their first letters: "malfunction" ~ "malfunctioned", "purchase" ~ "purchased"

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def excerpt_cap(token_budget: int) -> int:
    """Tokens a long memory may take in a context of ``token_budget`` tokens when not everything fits."""
    return max(MIN_EXCERPT_TOKENS, int(token_budget * LONG_SHARE))


def _stems(text: str) -> set[str]:
    return {w[:STEM] for w in _WORD.findall(text.lower())}


def excerpt(text: str, query: str, cap: int, count: Callable[[str], int], size: int | None = None) -> str | None:
    """``text`` cut to at most ``cap`` tokens around the sentences that share words with ``query``;
    None when it already fits or no whole sentence does (nothing is cut mid-sentence). ``size``: the text's
    tokens, when the caller has counted them."""
    if (count(text) if size is None else size) <= cap:
        return None
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return None
    terms = {t[:STEM] for t in query_terms(query)}
    overlap = [len(terms & _stems(s)) for s in sentences]
    # the opening says what the message is about; then the best-matching sentences, earlier ones first on ties
    order = [0, *sorted(range(1, len(sentences)), key=lambda i: (-overlap[i], i))]
    chosen: list[int] = []
    used = 0
    for i in order:
        if i > 0 and overlap[i] == 0 and any(overlap[j] for j in chosen):
            break  # sentences with nothing of the query only pad an excerpt that already has its point
        if used >= cap - MIN_SENTENCE_TOKENS:
            break  # no room left for another sentence
        n = count(sentences[i]) + 2
        if used + n > cap:
            continue
        chosen.append(i)
        used += n
    if not chosen:
        return None
    chosen.sort()
    out = sentences[chosen[0]]
    for prev, i in zip(chosen, chosen[1:], strict=False):
        out += (" " if i == prev + 1 else GAP) + sentences[i]
    if chosen[-1] != len(sentences) - 1:
        out += GAP.rstrip()
    return out
