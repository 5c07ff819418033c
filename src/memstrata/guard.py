"""``Guard``: ``Memory``'s public methods, each handed to one hook before it runs.

``Guard`` wraps a ``Memory`` (or another guard) and offers exactly its public methods, with the same
parameters, defaults, return types and docstrings, so type checkers and IDEs see the real signatures. Each
method passes its arguments, by name, to :meth:`Guard._call`, which by default calls the wrapped method with
them. Subclasses override ``_call``: :class:`~memstrata.secure.AuditedMemory` writes an audit entry per call and
:class:`~memstrata.secure.SecuredMemory` checks an API key's rights first. Their rules live in
``memstrata.privacy`` (audit summaries, access rules), which never imports this facade layer.

The methods between the marker comments are written from ``Memory`` by scripts/gen_facades.py, and
tests/test_facade_parity.py fails when they drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from memstrata.memory import Memory
from memstrata.tiers.base import WorkingState

T = TypeVar("T")


class Guard:
    """A ``Memory`` whose public calls each go through :meth:`_call` first."""

    def __init__(self, memory: Memory | Guard) -> None:
        self.memory = memory

    @property
    def base(self) -> Memory:
        """The ``Memory`` under every guard."""
        inner = self.memory
        return inner.base if isinstance(inner, Guard) else inner

    def _call(self, name: str, method: Callable[..., T], /, **arguments: Any) -> T:
        """Run ``method`` (the wrapped object's method ``name``) with ``arguments``; the hook subclasses override."""
        return method(**arguments)

    # -- generated from Memory by scripts/gen_facades.py; edit the script or Memory, not this block --
    def archived_episodes(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, start: Any = None, end: Any = None, conversation_id: str | None = None,
        query: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope that archival moved out of the database (``start <= occurred_at < end``,
        in time order; ``query``: a phrase the text contains). Reads only the archive files whose time
        ranges overlap and that hold the scope."""
        return self._call(
            "archived_episodes", self.memory.archived_episodes, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id, start=start, end=end, conversation_id=conversation_id, query=query, limit=limit,
        )

    def forget_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Erase a user from every tier and scope, destroy their data key, compact storage; returns a receipt."""
        return self._call("forget_user", self.memory.forget_user, user_id=user_id, org_id=org_id)

    def export_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Everything stored about a user, every tier and scope, as portable JSON."""
        return self._call("export_user", self.memory.export_user, user_id=user_id, org_id=org_id)

    def import_user(
        self, data: dict[str, Any], *, user_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Load an export_user document (optionally as another user or org)."""
        return self._call("import_user", self.memory.import_user, data=data, user_id=user_id, org_id=org_id)

    def audit_log(
        self, *, org_id: str | None = None, user_id: str | None = None, after: int = 0, limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries, oldest first."""
        return self._call("audit_log", self.memory.audit_log, org_id=org_id, user_id=user_id, after=after, limit=limit)

    def verify_audit(self) -> dict[str, Any]:
        """Check the audit hash chain; {"ok": True, ...} when intact."""
        return self._call("verify_audit", self.memory.verify_audit)

    def ingestion(
        self, ingestion_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """A queued add's status: ``pending``, ``running``, ``failed`` (to be retried), ``done`` (with each
        message's outcome) or ``dead`` (out of attempts; ``requeue`` it)."""
        return self._call(
            "ingestion", self.memory.ingestion, ingestion_id=ingestion_id, user_id=user_id, agent_id=agent_id,
            run_id=run_id, org_id=org_id,
        )

    def ingestions(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, status: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """A scope's queued adds, newest first; ``status="dead"`` lists the dead letters."""
        return self._call(
            "ingestions", self.memory.ingestions, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            status=status, limit=limit,
        )

    def requeue(
        self, ingestion_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Put a dead (or failed) queued add back in the queue with its attempts reset."""
        return self._call(
            "requeue", self.memory.requeue, ingestion_id=ingestion_id, user_id=user_id, agent_id=agent_id,
            run_id=run_id, org_id=org_id,
        )

    def process_queue(
        self, *, batch: int = 32, lease: float = 60.0, max_attempts: int = 5, backoff: float = 2.0,
    ) -> dict[str, int]:
        """Process one batch of queued adds of every scope (what ``memstrata worker`` runs in a loop).
        Returns counts; ``claimed`` 0 means nothing was ready."""
        return self._call(
            "process_queue", self.memory.process_queue, batch=batch, lease=lease, max_attempts=max_attempts,
            backoff=backoff,
        )

    def add(
        self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, conversation_id: str | None = None, timestamp: Any = None,
        metadata: dict[str, Any] | None = None, infer: bool = True, wait: bool = True,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Remember messages. Returns ``{"results": [{"id", "memory", "event", ...}], "episodes": [...]}``.

        ``wait=False`` stores the messages and returns at once with an ``ingestion_id`` (see ``ingestion``);
        ``memstrata worker`` processes them. ``idempotency_key`` (with ``wait=False``): a second call with the
        same key in the same scope stores nothing and returns the first ingestion."""
        return self._call(
            "add", self.memory.add, messages=messages, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            conversation_id=conversation_id, timestamp=timestamp, metadata=metadata, infer=infer, wait=wait,
            idempotency_key=idempotency_key,
        )

    def retry_failed(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Run extraction again for episodes whose extraction failed or never finished."""
        return self._call(
            "retry_failed", self.memory.retry_failed, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    def update(
        self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None, *,
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        return self._call(
            "update", self.memory.update, memory_id=memory_id, text=text, metadata=metadata, user_id=user_id,
            agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    def delete(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete one memory; a DELETE event with its last text stays in history."""
        return self._call(
            "delete", self.memory.delete, memory_id=memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id,
        )

    def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete everything of one scope in every tier (memories, episodes, graph, history, short-term)."""
        return self._call(
            "delete_all", self.memory.delete_all, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    def reset(self) -> None:
        """Delete every scope's data. Irreversible."""
        self._call("reset", self.memory.reset)

    def resolve_conflict(
        self, conflict_id: str, keep: str = "new", *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Close a conflict: ``keep="new"`` (the newer value holds), ``"old"`` or ``"both"``."""
        return self._call(
            "resolve_conflict", self.memory.resolve_conflict, conflict_id=conflict_id, keep=keep, user_id=user_id,
            agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    def get(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """One memory of the scope by id; NotFoundError (a KeyError) when the scope holds no such id."""
        return self._call(
            "get", self.memory.get, memory_id=memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id,
        )

    def get_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 100, cursor: str | None = None, filters: dict[str, Any] | None = None,
        include_superseded: bool = False, conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """Memories of a scope in creation order, a page at a time: pass back ``next_cursor``."""
        return self._call(
            "get_all", self.memory.get_all, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            limit=limit, cursor=cursor, filters=filters, include_superseded=include_superseded,
            conversation_id=conversation_id,
        )

    def history(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every event of a memory, oldest first. Kept after `delete`; a retention purge or `forget_user`
        removes it."""
        return self._call(
            "history", self.memory.history, memory_id=memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id,
        )

    def search(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 10, filters: dict[str, Any] | None = None, now: Any = None,
        as_of: Any = None, conversation_id: str | None = None, preset: str | None = None, explain: bool = False,
        include_superseded: bool = False,
    ) -> dict[str, Any]:
        """Ranked memories for a query: ``{"results": [{"id", "memory", "score", ...}]}``."""
        return self._call(
            "search", self.memory.search, query=query, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            limit=limit, filters=filters, now=now, as_of=as_of, conversation_id=conversation_id, preset=preset,
            explain=explain, include_superseded=include_superseded,
        )

    def flush_usage(self) -> None:
        """Write pending last-used times (they feed the recency-of-use boost). Runs by itself now and then."""
        self._call("flush_usage", self.memory.flush_usage)

    def context(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, conversation_id: str | None = None, token_budget: int = 2000, now: Any = None,
        preset: str | None = None, limit: int = 50, recent_turns: int = 6,
    ) -> dict[str, Any]:
        """A prompt-ready block: recent turns, then the best memories, within ``token_budget`` tokens."""
        return self._call(
            "context", self.memory.context, query=query, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id, conversation_id=conversation_id, token_budget=token_budget, now=now, preset=preset,
            limit=limit, recent_turns=recent_turns,
        )

    def episodes(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, query: str | None = None, conversation_id: str | None = None, start: Any = None,
        end: Any = None, limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope: full-text search with ``query``, else a time range in time order."""
        return self._call(
            "episodes", self.memory.episodes, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            query=query, conversation_id=conversation_id, start=start, end=end, limit=limit,
        )

    def conflicts(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, status: str | None = "open",
    ) -> dict[str, Any]:
        """Conflicts raised when a new value met an old one: ``status`` is ``"open"`` (waiting for a person),
        ``"resolved"`` (by a person or by the conflict policy) or ``"all"`` (``None`` also means all)."""
        return self._call(
            "conflicts", self.memory.conflicts, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            status=status,
        )

    def entities(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """The scope's entity graph nodes, most mentioned first."""
        return self._call(
            "entities", self.memory.entities, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            limit=limit,
        )

    def neighbours(
        self, entity: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, depth: int = 1,
    ) -> dict[str, Any]:
        """An entity (by id, name or alias) and what it is connected to, with the memories about it."""
        return self._call(
            "neighbours", self.memory.neighbours, entity=entity, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id, depth=depth,
        )

    def working_state(
        self, conversation_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> WorkingState:
        """What a conversation is about now: goals and tasks with their status, entities in focus (latest
        first), topic and the user's constraints. Rebuilt from the episodic tier when this process has none."""
        return self._call(
            "working_state", self.memory.working_state, conversation_id=conversation_id, user_id=user_id,
            agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    def update_working_state(
        self, conversation_id: str, edit: dict[str, Any], *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None, timestamp: Any = None,
    ) -> WorkingState:
        """Change a conversation's working state explicitly; the edit is kept with its episodes, so a rebuild
        replays it. ``edit`` is one of ``{"op": "add_item", "kind": "goal"|"task", "text", "pinned"}``,
        ``{"op": "update_item", "item_id", "status": "open"|"done"|"dropped", "text", "pinned"}``,
        ``{"op": "set_topic", "topic"}`` (None unpins), ``{"op": "add_constraint", "text"}`` or
        ``{"op": "remove_constraint", "constraint_id"}``. Pinned items change only through this call."""
        return self._call(
            "update_working_state", self.memory.update_working_state, conversation_id=conversation_id, edit=edit,
            user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, timestamp=timestamp,
        )

    def scopes(
        self, *, org_id: str | None = None, user_ids: list[str] | None = None, agent_ids: list[str] | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The scopes this store holds, most recently active first: their ids, episode and memory counts and
        last write (``last_active_at``); optionally only one org's, or only some users' or agents'."""
        return self._call(
            "scopes", self.memory.scopes, org_id=org_id, user_ids=user_ids, agent_ids=agent_ids, limit=limit,
        )

    def stats(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Row counts for one scope, or for the whole store when no scope is given."""
        return self._call("stats", self.memory.stats, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)

    def close(self) -> None:
        self._call("close", self.memory.close)
    # -- end of generated block --


__all__ = ["Guard"]
