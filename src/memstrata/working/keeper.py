"""The working tier's I/O: fold new messages in as they arrive, rebuild from the episodic tier when this
process holds no state (a restart, an evicted key) or messages arrive out of time order, and record edits
made through the API as episodes so that a rebuild replays them too.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from memstrata.errors import BackendError, InvalidInputError
from memstrata.models import EpisodeRecord, Scope
from memstrata.tiers.base import ShortTermTier, Store, Turn, WorkingState, WorkingTier
from memstrata.working import tracker, view

EDIT_KEY = "working_edit"  # episode metadata key of a recorded API edit
REFILL_TURNS = 20
MAX_REPLAY = 100_000
log = logging.getLogger("memstrata.memory")


class Tiers(Protocol):
    store: Store
    short_term: ShortTermTier
    working: WorkingTier


def said(e: EpisodeRecord) -> tracker.Said:
    edit = e.metadata.get(EDIT_KEY) if isinstance(e.metadata, dict) else None
    return tracker.Said(e.role, e.content, e.occurred_at, e.id, e.position, edit if isinstance(edit, dict) else None)


def observe(tiers: Tiers, scope: Scope, conversation_id: str, episodes: Sequence[EpisodeRecord]) -> WorkingState:
    """Fold freshly written episodes into the conversation's state (rebuilding when they are out of order).

    A compare-and-set (``WorkingTier.update``): when another writer stored the state between our read
    and our write, the episodes are folded again into what it stored, so no writer's turns are lost."""
    new = [said(e) for e in episodes]
    docs: list[Any] = []  # the parses of ``new``, made once however often the fold runs
    rebuilt = False

    def change(state: WorkingState | None) -> WorkingState:
        nonlocal rebuilt
        rebuilt = state is None or not tracker.in_order(state, new)
        if rebuilt:
            return _replay(tiers.store, scope, conversation_id)[0]
        if not docs:
            from memstrata.ingest.nlp import parse_many

            docs.extend(parse_many(tracker.focus_texts(tracker.order(new))))
        return tracker.fold(state, new, docs)

    state = tiers.working.update(scope, conversation_id, change)
    if rebuilt:
        _refill(tiers, scope, conversation_id)
    return state


def current(tiers: Tiers, scope: Scope, conversation_id: str) -> WorkingState:
    """The state this process (or Redis) holds, else the one rebuilt from the episodic tier. While the
    working tier's engine is down the state is replayed from the stored episodes, so reads still answer."""
    try:
        state = tiers.working.get(scope, conversation_id)
    except BackendError as exc:
        log.warning("working memory is unavailable, replaying the conversation from the store: %s", exc)
        return _replay(tiers.store, scope, conversation_id)[0]
    return state if state is not None else rebuild(tiers, scope, conversation_id)


def _replay(store: Store, scope: Scope, conversation_id: str) -> tuple[WorkingState, list[EpisodeRecord],
                                                                       list[tracker.Said]]:
    eps = store.list_episodes(scope, conversation_id=conversation_id, limit=MAX_REPLAY)
    history = tracker.order([said(e) for e in eps])
    return tracker.fold(None, history), eps, history


def rebuild(tiers: Tiers, scope: Scope, conversation_id: str) -> WorkingState:
    """Replay every episode of the conversation in time order; refill an empty short-term tier."""
    state = tiers.working.update(scope, conversation_id, lambda _: _replay(tiers.store, scope, conversation_id)[0])
    _refill(tiers, scope, conversation_id)
    return state


def _refill(tiers: Tiers, scope: Scope, conversation_id: str) -> None:
    """After a rebuild: an empty short-term tier gets the conversation's latest turns back."""
    if tiers.short_term.recent(scope, conversation_id, 1):
        return
    eps = tiers.store.list_episodes(scope, conversation_id=conversation_id, limit=MAX_REPLAY)
    if eps:
        by_id = {e.id: e for e in eps}
        history = tracker.order([said(e) for e in eps])
        turns = [by_id[s.episode_id] for s in history if s.edit is None][-REFILL_TURNS:]
        tiers.short_term.push(scope, conversation_id, [Turn(e.role, e.content, e.occurred_at, e.id) for e in turns])


def edit(tiers: Tiers, scope: Scope, conversation_id: str, change: Any, at: float | None = None) -> WorkingState:
    """Apply an agent's edit (pin a goal, close a task, set the topic, add or remove a constraint) and
    record it as an episode of the conversation, in the conversation's time."""
    checked = tracker.check_edit(change)
    state = current(tiers, scope, conversation_id)
    last, pos = (state.cursor[0], int(state.cursor[1])) if state.cursor else (None, -1)
    if at is None:
        at = last if last is not None else time.time()
    elif last is not None and at < last:
        raise InvalidInputError("timestamp", "is before the conversation's latest message; edits append")
    position = pos + 1 if last is not None and at == last else 0
    record = EpisodeRecord(
        id=str(uuid.uuid4()), scope=scope, conversation_id=conversation_id, role="system",
        content=view.edit_summary(checked, state), occurred_at=at, created_at=time.time(), name="memstrata",
        metadata={EDIT_KEY: checked}, position=position, extraction_status="skipped",
    )
    tracker.apply_edit(copy.deepcopy(state), checked, at, record.id)  # NotFoundError before anything is written
    tiers.store.add_episodes([record])
    recorded = [said(record)]
    return tiers.working.update(  # folded into whatever state is stored by then; replayed when it is not in order
        scope, conversation_id,
        lambda now: tracker.fold(now, recorded) if now is not None and tracker.in_order(now, recorded)
        else _replay(tiers.store, scope, conversation_id)[0])
