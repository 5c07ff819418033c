"""The cache tiers (short-term, working) are a speed-up, never the record: when their engine (Redis) fails,
a write that already reached the store must still be acknowledged, and reads fall back to stored episodes.

Failing an ``add`` after its episodes are durable would invite the caller to retry, storing the message twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from memstrata.errors import BackendError
from memstrata.models import Scope
from memstrata.tiers.base import ShortTermTier, Store, Turn

log = logging.getLogger("memstrata.memory")


def cache_write(what: str, write: Callable[[], object], warnings: list[str]) -> None:
    """Run a cache update; on a backend failure log it, note it in ``warnings`` and carry on."""
    try:
        write()
    except BackendError as exc:
        log.warning("%s was not updated (the write itself is stored): %s", what, exc)
        warnings.append(f"{what} was not updated: {exc}")


def recent_turns(short_term: ShortTermTier, store: Store, scope: Scope, conversation_id: str | None,
                 n: int) -> list[Turn]:
    """The last ``n`` turns of a conversation: from the short-term tier, else from the stored episodes."""
    if not conversation_id or n <= 0:
        return []
    try:
        return short_term.recent(scope, conversation_id, n)
    except BackendError as exc:
        log.warning("short-term memory is unavailable, reading recent turns from the store: %s", exc)
    episodes = store.list_episodes(scope, conversation_id=conversation_id, limit=10_000)[-n:]
    return [Turn(e.role, e.content, e.occurred_at, e.id) for e in episodes]
