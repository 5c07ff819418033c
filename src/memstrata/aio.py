"""``AsyncMemory``: every public ``Memory`` method as a coroutine, with the same parameters, defaults, return
types and docstrings.

How the work runs. The default engines (SQLite, the local embedder) have no non-blocking form, and where an
engine does have an async driver (redis.asyncio for short-term turns, psycopg's async pool for PostgreSQL) its
reads sit between blocking steps inside one ``Memory`` call: using it would mean a second copy of the add and
search flows. So no async driver is used: each coroutine runs its ``Memory`` method on a bounded pool of worker
threads that this object owns (``max_workers``, default :data:`DEFAULT_WORKERS`; never asyncio's shared default
executor). The event loop never blocks, at most ``max_workers`` calls run at once, the rest wait their turn,
and the logic exists once.

Cancellation. Cancelling a task that awaits a call returns control at once. A call still waiting for a worker
is dropped and never runs; one already running finishes (a store write stopped half-way would be worse than a
late one). ``aclose`` (or leaving ``async with``) waits for running calls, then closes the store; later calls
raise :class:`~memstrata.errors.MemstrataError`, as on a closed ``Memory``.

The methods between the marker comments are written from ``Memory`` by scripts/gen_facades.py, and
tests/test_facade_parity.py fails when they drift.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from memstrata.backends.inprocess import DEFAULT_TTL_SECONDS
from memstrata.config import CacheLayers, IngestConfig
from memstrata.errors import InvalidInputError, MemstrataError
from memstrata.memory import Memory
from memstrata.providers.embedders import Embedder
from memstrata.tiers.base import ShortTermTier, Store, WorkingState, WorkingTier
from memstrata.tiers.vectors import VectorTier

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_WORKERS = 8


class AsyncMemory:
    """Async face of :class:`Memory`. ``AsyncMemory(...)`` takes ``Memory``'s constructor arguments;
    :meth:`from_memory` wraps an existing ``Memory`` (and then owns it: closing one closes both)."""

    _sync: Memory
    _pool: ThreadPoolExecutor
    _closing: bool

    @classmethod
    def from_memory(cls, memory: Memory, *, max_workers: int = DEFAULT_WORKERS) -> AsyncMemory:
        """An async face over ``memory`` whose calls run on at most ``max_workers`` threads."""
        if not isinstance(memory, Memory):
            raise InvalidInputError("memory", f"must be a memstrata Memory, got {type(memory).__name__}")
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise InvalidInputError("max_workers", "must be a positive integer")
        self = cls.__new__(cls)
        self._setup(memory, max_workers)
        return self

    def _setup(self, memory: Memory, max_workers: int) -> None:
        self._sync = memory
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="memstrata-async")
        self._closing = False

    @property
    def sync(self) -> Memory:
        """The underlying synchronous Memory."""
        return self._sync

    async def _run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closing:
            raise MemstrataError("memory is closed")
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def close(self) -> None:
        """Wait for running calls, then close the store; idempotent."""
        if self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        # Not on self._pool: shutting it down from one of its own workers would wait on itself.
        await loop.run_in_executor(None, functools.partial(self._pool.shutdown, wait=True, cancel_futures=True))
        await loop.run_in_executor(None, self._sync.close)

    async def aclose(self) -> None:
        """The same as :meth:`close` (the name ``contextlib.aclosing`` expects)."""
        await self.close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Async{self._sync!r}"

    # -- generated from Memory by scripts/gen_facades.py; edit the script or Memory, not this block --
    def __init__(
        self, store: str | Store | None = None, *, embedder: str | Embedder | None = None,
        ingest: IngestConfig | None = None, extractor: Any = None, short_term: ShortTermTier | None = None,
        working: WorkingTier | None = None, vectors: str | VectorTier | None = None, cache: str | None = None,
        short_term_ttl: float = DEFAULT_TTL_SECONDS, preset: str = "balanced", actor: str = "library",
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None, org_id: str | None = None,
        archive: str | None = None, cache_layers: CacheLayers | str | None = None, **store_options: Any,
    ) -> None:
        """Open a ``Memory`` with these (its own) arguments; calls run on ``DEFAULT_WORKERS`` threads."""
        memory = Memory(
            store, embedder=embedder, ingest=ingest, extractor=extractor, short_term=short_term, working=working,
            vectors=vectors, cache=cache, short_term_ttl=short_term_ttl, preset=preset, actor=actor, user_id=user_id,
            agent_id=agent_id, run_id=run_id, org_id=org_id, archive=archive, cache_layers=cache_layers,
            **store_options,
        )
        self._setup(memory, DEFAULT_WORKERS)

    async def archived_episodes(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, start: Any = None, end: Any = None, conversation_id: str | None = None,
        query: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope that archival moved out of the database (``start <= occurred_at < end``,
        in time order; ``query``: a phrase the text contains). Reads only the archive files whose time
        ranges overlap and that hold the scope."""
        return await self._run(
            self._sync.archived_episodes, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, start=start,
            end=end, conversation_id=conversation_id, query=query, limit=limit,
        )

    async def forget_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Erase a user from every tier and scope, destroy their data key, compact storage; returns a receipt."""
        return await self._run(self._sync.forget_user, user_id, org_id=org_id)

    async def export_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Everything stored about a user, every tier and scope, as portable JSON."""
        return await self._run(self._sync.export_user, user_id, org_id=org_id)

    async def import_user(
        self, data: dict[str, Any], *, user_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Load an export_user document (optionally as another user or org)."""
        return await self._run(self._sync.import_user, data, user_id=user_id, org_id=org_id)

    async def audit_log(
        self, *, org_id: str | None = None, user_id: str | None = None, after: int = 0, limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries, oldest first."""
        return await self._run(self._sync.audit_log, org_id=org_id, user_id=user_id, after=after, limit=limit)

    async def verify_audit(self) -> dict[str, Any]:
        """Check the audit hash chain; {"ok": True, ...} when intact."""
        return await self._run(self._sync.verify_audit)

    async def ingestion(
        self, ingestion_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """A queued add's status: ``pending``, ``running``, ``failed`` (to be retried), ``done`` (with each
        message's outcome) or ``dead`` (out of attempts; ``requeue`` it)."""
        return await self._run(
            self._sync.ingestion, ingestion_id, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def ingestions(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, status: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """A scope's queued adds, newest first; ``status="dead"`` lists the dead letters."""
        return await self._run(
            self._sync.ingestions, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, status=status,
            limit=limit,
        )

    async def requeue(
        self, ingestion_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Put a dead (or failed) queued add back in the queue with its attempts reset."""
        return await self._run(
            self._sync.requeue, ingestion_id, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def process_queue(
        self, *, batch: int = 32, lease: float = 60.0, max_attempts: int = 5, backoff: float = 2.0,
    ) -> dict[str, int]:
        """Process one batch of queued adds of every scope (what ``memstrata worker`` runs in a loop).
        Returns counts; ``claimed`` 0 means nothing was ready."""
        return await self._run(
            self._sync.process_queue, batch=batch, lease=lease, max_attempts=max_attempts, backoff=backoff,
        )

    async def add(
        self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, conversation_id: str | None = None, timestamp: Any = None,
        metadata: dict[str, Any] | None = None, infer: bool = True, wait: bool = True,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Remember messages. Returns ``{"results": [{"id", "memory", "event", ...}], "episodes": [...]}``.

        ``wait=False`` stores the messages and returns at once with an ``ingestion_id`` (see ``ingestion``);
        ``memstrata worker`` processes them. ``idempotency_key`` (with ``wait=False``): a second call with the
        same key in the same scope stores nothing and returns the first ingestion."""
        return await self._run(
            self._sync.add, messages, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            conversation_id=conversation_id, timestamp=timestamp, metadata=metadata, infer=infer, wait=wait,
            idempotency_key=idempotency_key,
        )

    async def retry_failed(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Run extraction again for episodes whose extraction failed or never finished."""
        return await self._run(
            self._sync.retry_failed, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def update(
        self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None, *,
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        return await self._run(
            self._sync.update, memory_id, text, metadata, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id,
        )

    async def delete(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete one memory; a DELETE event with its last text stays in history."""
        return await self._run(
            self._sync.delete, memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete everything of one scope in every tier (memories, episodes, graph, history, short-term)."""
        return await self._run(self._sync.delete_all, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)

    async def reset(self) -> None:
        """Delete every scope's data. Irreversible."""
        await self._run(self._sync.reset)

    async def resolve_conflict(
        self, conflict_id: str, keep: str = "new", *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Close a conflict: ``keep="new"`` (the newer value holds), ``"old"`` or ``"both"``."""
        return await self._run(
            self._sync.resolve_conflict, conflict_id, keep, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id,
        )

    async def get(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """One memory of the scope by id; NotFoundError (a KeyError) when the scope holds no such id."""
        return await self._run(
            self._sync.get, memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def get_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 100, cursor: str | None = None, filters: dict[str, Any] | None = None,
        include_superseded: bool = False, conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """Memories of a scope in creation order, a page at a time: pass back ``next_cursor``."""
        return await self._run(
            self._sync.get_all, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, limit=limit,
            cursor=cursor, filters=filters, include_superseded=include_superseded, conversation_id=conversation_id,
        )

    async def history(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every event of a memory, oldest first. Kept after `delete`; a retention purge or `forget_user`
        removes it."""
        return await self._run(
            self._sync.history, memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def search(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 10, filters: dict[str, Any] | None = None, now: Any = None,
        as_of: Any = None, conversation_id: str | None = None, preset: str | None = None, explain: bool = False,
        include_superseded: bool = False,
    ) -> dict[str, Any]:
        """Ranked memories for a query: ``{"results": [{"id", "memory", "score", ...}]}``."""
        return await self._run(
            self._sync.search, query, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, limit=limit,
            filters=filters, now=now, as_of=as_of, conversation_id=conversation_id, preset=preset, explain=explain,
            include_superseded=include_superseded,
        )

    async def flush_usage(self) -> None:
        """Write pending last-used times (they feed the recency-of-use boost). Runs by itself now and then."""
        await self._run(self._sync.flush_usage)

    async def context(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, conversation_id: str | None = None, token_budget: int = 2000, now: Any = None,
        preset: str | None = None, limit: int = 50, recent_turns: int = 6,
    ) -> dict[str, Any]:
        """A prompt-ready block: recent turns, then the best memories, within ``token_budget`` tokens."""
        return await self._run(
            self._sync.context, query, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            conversation_id=conversation_id, token_budget=token_budget, now=now, preset=preset, limit=limit,
            recent_turns=recent_turns,
        )

    async def episodes(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, query: str | None = None, conversation_id: str | None = None, start: Any = None,
        end: Any = None, limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope: full-text search with ``query``, else a time range in time order."""
        return await self._run(
            self._sync.episodes, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, query=query,
            conversation_id=conversation_id, start=start, end=end, limit=limit,
        )

    async def conflicts(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, status: str | None = "open",
    ) -> dict[str, Any]:
        """Conflicts raised when a new value met an old one: ``status`` is ``"open"`` (waiting for a person),
        ``"resolved"`` (by a person or by the conflict policy) or ``"all"`` (``None`` also means all)."""
        return await self._run(
            self._sync.conflicts, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, status=status,
        )

    async def entities(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """The scope's entity graph nodes, most mentioned first."""
        return await self._run(
            self._sync.entities, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id, limit=limit,
        )

    async def neighbours(
        self, entity: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, depth: int = 1,
    ) -> dict[str, Any]:
        """An entity (by id, name or alias) and what it is connected to, with the memories about it."""
        return await self._run(
            self._sync.neighbours, entity, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
            depth=depth,
        )

    async def working_state(
        self, conversation_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> WorkingState:
        """What a conversation is about now: goals and tasks with their status, entities in focus (latest
        first), topic and the user's constraints. Rebuilt from the episodic tier when this process has none."""
        return await self._run(
            self._sync.working_state, conversation_id, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id,
        )

    async def update_working_state(
        self, conversation_id: str, edit: dict[str, Any], *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None, timestamp: Any = None,
    ) -> WorkingState:
        """Change a conversation's working state explicitly; the edit is kept with its episodes, so a rebuild
        replays it. ``edit`` is one of ``{"op": "add_item", "kind": "goal"|"task", "text", "pinned"}``,
        ``{"op": "update_item", "item_id", "status": "open"|"done"|"dropped", "text", "pinned"}``,
        ``{"op": "set_topic", "topic"}`` (None unpins), ``{"op": "add_constraint", "text"}`` or
        ``{"op": "remove_constraint", "constraint_id"}``. Pinned items change only through this call."""
        return await self._run(
            self._sync.update_working_state, conversation_id, edit, user_id=user_id, agent_id=agent_id, run_id=run_id,
            org_id=org_id, timestamp=timestamp,
        )

    async def scopes(
        self, *, org_id: str | None = None, user_ids: list[str] | None = None, agent_ids: list[str] | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The scopes this store holds, most recently active first: their ids, episode and memory counts and
        last write (``last_active_at``); optionally only one org's, or only some users' or agents'."""
        return await self._run(self._sync.scopes, org_id=org_id, user_ids=user_ids, agent_ids=agent_ids, limit=limit)

    async def stats(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Row counts for one scope, or for the whole store when no scope is given."""
        return await self._run(self._sync.stats, user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)
    # -- end of generated block --


# The coroutines that mirror Memory's public methods, one each (close included).
ASYNC_METHODS = tuple(
    name for name, fn in vars(AsyncMemory).items()
    if not name.startswith("_") and name != "aclose" and inspect.iscoroutinefunction(fn)
)

__all__ = ["ASYNC_METHODS", "DEFAULT_WORKERS", "AsyncMemory"]
