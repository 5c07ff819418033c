"""Standing instructions and preferences: what the user asked of the assistant for good.

"Always answer in metric units", "never use semicolons in my code", "from now on call me Sam" are stored at
ingest as memories of kind ``instruction`` (a lasting imperative to the assistant) and "I prefer tabs" as
``preference`` (the rules extractor and the LLM extractor both say which). They apply to every later turn, not
only to turns about the same topic, so ``context`` gives them a small reserved part of the token budget
(``STANDING_SHARE``) whatever the query: every current instruction, most relevant first, then the preferences
that relate to the query. ``search`` lifts them when the query asks what the user prefers or asked for
(``Preset.standing_weight``).
"""

from __future__ import annotations

import re

import numpy as np

from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import Store

STANDING_KINDS = ("instruction", "preference")
STANDING_SHARE = 0.1  # of context()'s token budget, reserved for standing instructions
PREFERENCE_FLOOR = 0.25  # a preference joins the reserved part only when this close to the query
MAX_STANDING = 200  # read per context() call; a scope holds far fewer

_ASKS_STANDING = re.compile(
    r"\b(?:prefer(?:s|red|ence|ences)?|instruct(?:ion|ions|ed)?|rules?|conventions?|style|"
    r"(?:want|wanted|like|ask|asked|tell|told)\s+(?:you|me)\s+to|how\s+(?:should|do)\s+you\s+\w+|"
    r"(?:always|never)\s+(?:use|answer|write|reply|call)|call\s+me|my\s+name)\b",
    re.IGNORECASE,
)


def asks_standing(query: str) -> bool:
    """The query asks what the user prefers or told the assistant to do ("What indentation do I prefer?",
    "How should you format dates for me?")."""
    return bool(_ASKS_STANDING.search(query))


def standing_memories(store: Store, scope: Scope, query_vector: np.ndarray) -> list[tuple[MemoryRecord, float]]:
    """(memory, cosine to the query) of the scope's current standing memories, in the order ``context`` shows
    them: every instruction by relevance, then the preferences close enough to the query."""
    records = store.list_memories(scope, limit=MAX_STANDING, where=[("kind", "in", list(STANDING_KINDS))])
    if not records:
        return []
    vectors = store.vectors(scope, [r.id for r in records])
    q = np.asarray(query_vector, dtype=np.float32)
    scored = [(r, float(vectors[r.id] @ q) if r.id in vectors else 0.0) for r in records]
    instructions = sorted(((r, s) for r, s in scored if r.kind == "instruction"), key=lambda x: -x[1])
    preferences = sorted(((r, s) for r, s in scored if r.kind != "instruction" and s >= PREFERENCE_FLOOR),
                         key=lambda x: -x[1])
    return instructions + preferences
