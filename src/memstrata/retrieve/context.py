"""What a caller gets from retrieval: a checked ``SearchRequest`` in, then either the ranked memories
(``search``) or a prompt-ready block within a token budget (``context``).

The block leads with the conversation's working state (at most a quarter of the budget: what the
conversation is about now), then the user's standing instructions (at most a tenth: they apply whatever the
query, see ``memstrata.retrieve.standing``), then the recent turns (at most another quarter; memories are what
the call is for), then as many of the best memories as still fit.

A broad query ("What should I know about this user?") is close to no memory in particular: its ranking is
noise, so the memories go in by the importance stored at ingest instead (facts before the messages they came
from); ``BROAD_QUERY_COSINE`` says when. Pleasantries (``memstrata.core.salience``) are left out unless the
query asks what the assistant said.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memstrata.core.paging import check_limit
from memstrata.core.validate import check_utf8, parse_time
from memstrata.errors import InvalidInputError
from memstrata.models import MemoryRecord, Scope, check_id, iso, utcnow
from memstrata.retrieve.excerpt import excerpt, excerpt_cap
from memstrata.retrieve.filters import parse_filters
from memstrata.retrieve.fusion import fit_budget
from memstrata.retrieve.pipeline import Hit, SearchRequest
from memstrata.retrieve.presets import Preset, get_preset
from memstrata.retrieve.standing import STANDING_SHARE
from memstrata.tiers.base import Turn, WorkingState

MAX_QUERY_CHARS = 10_000
HEADER_MEMORIES = "## Relevant memories\n"
HEADER_RECENT = "## Recent conversation\n"
HEADER_STANDING = "## Standing instructions and preferences\n"
BROAD_QUERY_COSINE = 0.3  # no memory this close to the query (and no keyword match): the query is broad
EARLIER = " (said earlier; a later memory says otherwise)"
REPLACED = " (no longer current: replaced by a later memory)"


def search_request(scope: Scope, query: Any, *, limit: int, filters: Any, now: Any, as_of: Any,
                   conversation_id: str | None, preset: str | None, default_preset: Preset,
                   include_superseded: bool, recent: Callable[[], list[Turn]],
                   query_vector: Callable[[str], np.ndarray]) -> SearchRequest:
    """Check a search's arguments and build its request; ``recent`` runs only once the arguments are known to
    be good, ``query_vector`` when the search needs the vector (a store may read meanwhile)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query", "must be a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError("query", f"is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}")
    check_utf8("query", query)
    check_id("conversation_id", conversation_id)
    turns = recent()
    return SearchRequest(
        scope=scope,
        query=query,
        limit=check_limit(limit),
        now=utcnow() if now is None else parse_time("now", now),
        preset=get_preset(preset) if preset else default_preset,
        filters=parse_filters(filters),
        as_of=parse_time("as_of", as_of) if as_of is not None else None,
        conversation_id=conversation_id,
        recent_turns=turns,
        include_superseded=bool(include_superseded),
        embed=query_vector,
    )


def search_results(hits: Sequence[Hit], explain: bool) -> dict[str, Any]:
    out = []
    for h in hits:
        item = h.record.to_dict()
        item["score"] = round(h.score, 6)
        if h.revised_by is not None:
            item["revised_by"] = h.revised_by
        if explain:
            item["stages"] = h.stages
        out.append(item)
    return {"results": out}


def check_context_args(token_budget: Any, recent_turns: Any) -> None:
    if not isinstance(token_budget, int) or isinstance(token_budget, bool) or token_budget < 1:
        raise InvalidInputError("token_budget", "must be a positive integer")
    if not isinstance(recent_turns, int) or isinstance(recent_turns, bool) or not 0 <= recent_turns <= 1000:
        raise InvalidInputError("recent_turns", f"must be an integer from 0 to 1000, got {recent_turns!r}")


def is_broad(hits: Sequence[Hit]) -> bool:
    """No hit is near the query by meaning or matched one of its words: ranking cannot tell them apart."""
    return bool(hits) and all(h.stages.get("dense", 0.0) < BROAD_QUERY_COSINE and not h.stages.get("keyword")
                              for h in hits)


def assemble_context(hits: Sequence[Hit], recent: Sequence[Turn], state: WorkingState | None,
                     working_section: tuple[str, int], token_budget: int,
                     count: Callable[[str], int], standing: Sequence[tuple[MemoryRecord, float]] = (),
                     query: str = "") -> dict[str, Any]:
    """The ``context`` result. ``working_section`` is the working state already rendered within a quarter
    of the budget (text, tokens), as ``working.view.context_section`` does it; ``standing`` the standing
    instructions in the order to show them (``standing_memories``), given at most ``STANDING_SHARE`` of it.
    When not every memory fits, long ones are shown by their part that bears on ``query``
    (``memstrata.retrieve.excerpt``)."""
    working_text, working_used = working_section
    lines_standing = [f"- {r.text}\n" for r, _ in standing]
    standing_keep: list[int] = []
    if lines_standing:
        standing_keep, standing_used = fit_budget(lines_standing, int(token_budget * STANDING_SHARE), count,
                                                  overhead=count(HEADER_STANDING))
        if standing_keep:
            working_text += HEADER_STANDING + "".join(lines_standing[i] for i in standing_keep) + "\n"
            working_used += standing_used
    shown = {standing[i][0].id for i in standing_keep}
    # a pleasantry ranking weighed down (the query did not ask what the assistant said) never helps a prompt
    hits = [h for h in hits if h.record.id not in shown and "pleasantry" not in h.stages]
    if is_broad(hits):
        hits = sorted(hits, key=lambda h: -h.record.importance)  # stable: the ranking breaks ties
    lines_recent = [f"{t.role}: {t.content}\n" for t in recent]
    used = 0
    recent_keep: list[int] = []
    if lines_recent:
        recent_keep, used = fit_budget(
            list(reversed(lines_recent)), token_budget // 4, count, overhead=count(HEADER_RECENT)
        )
        recent_keep = sorted(len(lines_recent) - 1 - i for i in recent_keep)
        if not recent_keep:
            used = 0
    shown_text: list[str | None] = [None] * len(hits)  # an excerpt, where a long memory was cut
    lines = [_line(h, h.record.text) for h in hits]
    overhead = used + working_used + count(HEADER_MEMORIES)
    sizes = {line: count(line) for line in lines}  # counted once: the budget may be fitted twice
    keep, used = fit_budget(lines, token_budget, sizes.__getitem__, overhead=overhead)
    if len(keep) < len(lines):
        cap = excerpt_cap(token_budget)
        for i, h in enumerate(hits):
            if sizes[lines[i]] <= cap:
                continue
            cut = shown_text[i] = excerpt(h.record.text, query, cap, count, size=sizes[lines[i]])
            if cut is not None:
                lines[i] = _line(h, cut)
                sizes[lines[i]] = count(lines[i])
        keep, used = fit_budget(lines, token_budget, sizes.__getitem__, overhead=overhead)
    text = working_text
    if recent_keep:
        text += HEADER_RECENT + "".join(lines_recent[i] for i in recent_keep) + "\n"
    if keep:
        text += HEADER_MEMORIES + "".join(lines[i] for i in keep)
    else:
        used -= count(HEADER_MEMORIES)
    items = [
        {
            "id": hits[i].record.id,
            "memory": hits[i].record.text,
            "score": round(hits[i].score, 6),
            "episode_ids": hits[i].record.episode_ids,
            "valid_from": iso(hits[i].record.valid_from),
            "created_at": iso(hits[i].record.created_at),
            "tokens": sizes[lines[i]],
            **({"excerpt": shown_text[i]} if shown_text[i] is not None else {}),
        }
        for i in keep
    ]
    return {
        "text": text,
        "items": items,
        "tokens": used,
        "token_budget": token_budget,
        "short_term": [
            {"role": recent[i].role, "content": recent[i].content, "episode_id": recent[i].episode_id}
            for i in recent_keep
        ],
        "working": state.to_dict() if state is not None else None,
        "standing": [
            {"id": standing[i][0].id, "memory": standing[i][0].text, "kind": standing[i][0].kind,
             "score": round(standing[i][1], 6), "episode_ids": standing[i][0].episode_ids,
             "tokens": count(lines_standing[i])}
            for i in standing_keep
        ],
    }


def _line(h: Hit, text: str) -> str:
    return f"- [{(iso(h.record.valid_from) or '')[:10]}] {text}{_note(h)}\n"


def _note(h: Hit) -> str:
    if not h.record.current:
        return REPLACED
    return EARLIER if h.revised_by else ""
