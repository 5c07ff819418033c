"""``Memory``: the public facade. It checks a call's scope, hands the work to the layer that does it and
shapes the result; it decides nothing itself.

- backends come from ``backends.registry`` by URL (a third-party scheme registers there);
- ``add`` and ``retry_failed`` are ``ingest.flow``; ``update``, ``delete`` and ``resolve_conflict`` are
  ``ingest.edits``; every write goes through one ``ingest.writer.Writer`` (the store, then a vector tier);
- ``search`` and ``context`` are ``retrieve`` (the five-stage ``Retriever`` and ``retrieve.context``);
- the scope of a call is ``core.scope.ScopeResolver``; the tiers are one ``tiers.stack.Tiers`` value;
- the methods on queued adds (``queued.QueuedMethods``) and on a data subject's rights and the audit log
  (``rights.PrivacyMethods``) are written in modules of their own and inherited.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from memstrata.backends.inprocess import DEFAULT_TTL_SECONDS, InProcessShortTerm, InProcessWorking
from memstrata.backends.registry import open_cache, open_store, open_vector_tier
from memstrata.backends.sql.queue import queue_of
from memstrata.cache_guard import recent_turns as _recent_turns  # context() has an argument of that name
from memstrata.config import CacheLayers, IngestConfig, default_store_url
from memstrata.core.paging import MAX_LIMIT, check_limit
from memstrata.core.scope import ScopeResolver
from memstrata.core.validate import parse_time
from memstrata.errors import InvalidInputError, MemstrataError
from memstrata.ingest import edits
from memstrata.ingest import queue as ingest_queue
from memstrata.ingest.flow import IngestFlow
from memstrata.ingest.statement_words import StatementWords
from memstrata.ingest.writer import Writer
from memstrata.models import Scope, check_id
from memstrata.providers.embedders import Embedder, resolve_embedder
from memstrata.queued import QueuedMethods
from memstrata.retrieve import listing
from memstrata.retrieve.batching import QueryBatcher
from memstrata.retrieve.context import assemble_context, check_context_args, search_request, search_results
from memstrata.retrieve.layers import open_read_cache
from memstrata.retrieve.pipeline import Hit, Retriever
from memstrata.retrieve.presets import get_preset
from memstrata.retrieve.standing import standing_memories
from memstrata.retrieve.usage import UsageLog
from memstrata.rights import PrivacyMethods
from memstrata.tiers.base import ShortTermTier, Store, WorkingState, WorkingTier
from memstrata.tiers.stack import Tiers
from memstrata.tiers.vectors import VectorTier
from memstrata.working import keeper as working_keeper
from memstrata.working.view import context_section


class Memory(QueuedMethods, PrivacyMethods):
    """Long-term memory for an agent, on the embedded SQLite default or a configured backend.

    >>> m = Memory(store="sqlite:///tmp/memory.db")
    >>> m.add("I moved to Lisbon last month.", user_id="alice")
    >>> m.search("where do I live?", user_id="alice")

    Every call names its scope (``user_id``, ``agent_id``, ``run_id``, optional ``org_id``); pass them to
    the constructor to bind a default scope for calls that omit them. ``cache_layers`` (a Redis URL or a
    ``CacheLayers``) shares query vectors and hot scopes' search pieces with every process on that Redis.
    """

    def __init__(
        self, store: str | Store | None = None, *, embedder: str | Embedder | None = None,
        ingest: IngestConfig | None = None, extractor: Any = None, short_term: ShortTermTier | None = None,
        working: WorkingTier | None = None, vectors: str | VectorTier | None = None, cache: str | None = None,
        short_term_ttl: float = DEFAULT_TTL_SECONDS, preset: str = "balanced", actor: str = "library",
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, archive: str | None = None, cache_layers: CacheLayers | str | None = None,
        **store_options: Any,
    ) -> None:
        self.embedder = resolve_embedder(embedder)
        self.cache_layers = open_read_cache(cache_layers, self.embedder.name)  # in process → Redis → database
        durable = store if isinstance(store, Store) else open_store(store or default_store_url(),
                                                                     self.embedder.dim, **store_options)
        index = vectors if vectors is None or isinstance(vectors, VectorTier) else open_vector_tier(
            vectors, self.embedder.dim)
        if cache is not None and (short_term is None or working is None):
            cached_short, cached_working = open_cache(cache, short_term_ttl)
            short_term, working = short_term or cached_short, working or cached_working
        self.tiers = Tiers(durable, short_term or InProcessShortTerm(short_term_ttl), working or InProcessWorking(),
                           index)
        self.ingest_config = ingest or IngestConfig()
        self.preset = get_preset(preset)
        self.actor = actor
        self.writer = Writer(durable, index, self.cache_layers)
        self.retriever = Retriever(durable, self.embedder, knn=index, cache=self.cache_layers.scopes,
                                   reader=StatementWords(self.embedder.embed))
        self._ingest = IngestFlow(self.tiers, self.writer, self.embedder, config=self.ingest_config,
                                  extractor=extractor, actor=actor, observe=partial(working_keeper.observe, self.tiers))
        scopes = ScopeResolver(durable.scope_of_memory, user_id=user_id, agent_id=agent_id, run_id=run_id,
                               org_id=org_id)
        self._default_scope, self._scope, self._id_scope = scopes.defaults, scopes.resolve, scopes.for_id
        # in process → Redis → concurrent queries batched → the embedder
        self._qcache = self.cache_layers.query_vectors(QueryBatcher(self.embedder.embed, self.embedder.count_tokens))
        self._usage = UsageLog(durable.touch)
        self.archive: Any = None  # old episodes in Parquet files (memstrata.privacy.archive), when given
        if archive is not None:
            from memstrata.privacy.archive import open_archive

            self.archive = open_archive(archive)
        self._queued = ingest_queue.QueuedAdds(self._ingest, queue_of(durable))
        self._closed = False

    @property
    def store(self) -> Store:
        """The durable tiers: episodic, long-term (the truth for every vector too) and graph."""
        return self.tiers.store

    @property
    def vectors(self) -> VectorTier | None:
        """The external vector index that serves kNN, when one was given."""
        return self.tiers.vectors

    @property
    def short_term(self) -> ShortTermTier:  # reset() replaces the in-process cache tiers
        return self.tiers.short_term

    @property
    def working(self) -> WorkingTier:
        return self.tiers.working

    def _check_open(self) -> None:
        if self._closed:
            raise MemstrataError("memory is closed")

    def _open(self, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None) -> Scope:
        """The scope of a call on an open memory."""
        self._check_open()
        return self._scope(user_id, agent_id, run_id, org_id)

    # -- writes ------------------------------------------------------------------------------------

    def add(
        self, messages: Any, *,
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, conversation_id: str | None = None, timestamp: Any = None,
        metadata: dict[str, Any] | None = None, infer: bool = True, wait: bool = True,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Remember messages. Returns ``{"results": [{"id", "memory", "event", ...}], "episodes": [...]}``.

        ``wait=False`` stores the messages and returns at once with an ``ingestion_id`` (see ``ingestion``);
        ``memstrata worker`` processes them. ``idempotency_key`` (with ``wait=False``): a second call with the
        same key in the same scope stores nothing and returns the first ingestion."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        if not isinstance(wait, bool):
            raise InvalidInputError("wait", "must be True or False")
        if not wait:
            return self._queued.add(scope, messages, conversation_id=conversation_id, timestamp=timestamp,
                                    metadata=metadata, infer=infer, idempotency_key=idempotency_key)
        if idempotency_key is not None:
            raise InvalidInputError("idempotency_key", "is kept for queued adds only: pass wait=False")
        return self._ingest.add(scope, messages, conversation_id=conversation_id, timestamp=timestamp,
                                metadata=metadata, infer=infer)

    def retry_failed(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Run extraction again for episodes whose extraction failed or never finished."""
        return self._ingest.retry_failed(self._scope(user_id, agent_id, run_id, org_id))

    def update(
        self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None, *,
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        self._check_open()
        scope = self._id_scope(memory_id, user_id, agent_id, run_id, org_id)
        return edits.update_memory(self.writer, scope, memory_id, text, metadata, self.embedder.embed, self.actor)

    def delete(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete one memory; a DELETE event with its last text stays in history."""
        self._check_open()
        scope = self._id_scope(memory_id, user_id, agent_id, run_id, org_id)
        return edits.delete_memory(self.writer, scope, memory_id, self.actor)

    def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete everything of one scope in every tier (memories, episodes, graph, history, short-term)."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        counts = self.writer.delete_scope(scope)
        if self.archive is not None:
            from memstrata.privacy import archive

            counts["archived_episodes"] = archive.delete_scope(self.archive, scope)
        counts["short_term_conversations"] = self.short_term.clear(scope)
        counts["working_conversations"] = self.working.clear(scope)
        return {"message": "deleted", "deleted": counts}

    def reset(self) -> None:
        """Delete every scope's data. Irreversible."""
        self._check_open()
        self.writer.reset()
        if self.archive is not None:
            from memstrata.privacy import archive

            archive.reset(self.archive)
        self.tiers.short_term = InProcessShortTerm(getattr(self.short_term, "ttl", DEFAULT_TTL_SECONDS))
        self.tiers.working = InProcessWorking()
        self._qcache.clear()

    def resolve_conflict(
        self, conflict_id: str, keep: str = "new", *,
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Close a conflict: ``keep="new"`` (the newer value holds), ``"old"`` or ``"both"``."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        return edits.resolve_conflict(self.writer, scope, conflict_id, keep, self.actor)

    # -- reads -------------------------------------------------------------------------------------

    def get(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> dict[str, Any]:
        """One memory of the scope by id; NotFoundError (a KeyError) when the scope holds no such id."""
        self._check_open()
        scope = self._id_scope(memory_id, user_id, agent_id, run_id, org_id)
        return edits.get_record(self.store, scope, memory_id).to_dict()

    def get_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 100, cursor: str | None = None,
        filters: dict[str, Any] | None = None, include_superseded: bool = False,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """Memories of a scope in creation order, a page at a time: pass back ``next_cursor``."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        return listing.memories_page(self.store, scope, limit=limit, cursor=cursor, filters=filters,
                                     include_superseded=include_superseded, conversation_id=conversation_id)

    def history(
        self, memory_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every event of a memory, oldest first. Kept after `delete`; a retention purge or `forget_user`
        removes it."""
        self._check_open()
        return listing.history(self.store, self._id_scope(memory_id, user_id, agent_id, run_id, org_id), memory_id)

    def search(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 10, filters: dict[str, Any] | None = None, now: Any = None,
        as_of: Any = None, conversation_id: str | None = None, preset: str | None = None, explain: bool = False,
        include_superseded: bool = False,
    ) -> dict[str, Any]:
        """Ranked memories for a query: ``{"results": [{"id", "memory", "score", ...}]}``."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        hits = self._search(scope, query, limit, filters, now, as_of, conversation_id, preset, include_superseded)
        return search_results(hits, explain)

    def _search(self, scope: Scope, query: Any, limit: int, filters: Any, now: Any, as_of: Any,
                conversation_id: str | None, preset: str | None, include_superseded: bool) -> list[Hit]:
        req = search_request(
            scope, query, limit=limit, filters=filters, now=now, as_of=as_of, conversation_id=conversation_id,
            preset=preset, default_preset=self.preset, include_superseded=include_superseded,
            recent=lambda: _recent_turns(self.short_term, self.store, scope, conversation_id, 6),
            query_vector=self._qcache.get,
        )
        hits = self.retriever.search(req)
        self._usage.note(scope, [h.record.id for h in hits], req.now.timestamp())
        return hits

    def flush_usage(self) -> None:
        """Write pending last-used times (they feed the recency-of-use boost). Runs by itself now and then."""
        self._usage.flush()

    def context(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, conversation_id: str | None = None, token_budget: int = 2000, now: Any = None,
        preset: str | None = None, limit: int = 50, recent_turns: int = 6,
    ) -> dict[str, Any]:
        """A prompt-ready block: recent turns, then the best memories, within ``token_budget`` tokens."""
        self._check_open()
        check_context_args(token_budget, recent_turns)
        scope = self._scope(user_id, agent_id, run_id, org_id)
        hits = self._search(scope, query, limit, None, now, None, conversation_id, preset, False)
        count = self.embedder.count_tokens
        recent = _recent_turns(self.short_term, self.store, scope, conversation_id, recent_turns)
        state = working_keeper.current(self.tiers, scope, conversation_id) if conversation_id else None
        section = context_section(state, token_budget // 4, count) if state else ("", 0)
        standing = standing_memories(self.store, scope, self._qcache.get(query))
        return assemble_context(hits, recent, state, section, token_budget, count, standing, query)

    def episodes(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, query: str | None = None, conversation_id: str | None = None,
        start: Any = None, end: Any = None, limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope: full-text search with ``query``, else a time range in time order."""
        return listing.episodes_page(self.store, self._open(user_id, agent_id, run_id, org_id), query=query,
                                     conversation_id=conversation_id, start=start, end=end, limit=limit)

    def conflicts(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, status: str | None = "open",
    ) -> dict[str, Any]:
        """Conflicts raised when a new value met an old one: ``status`` is ``"open"`` (waiting for a person),
        ``"resolved"`` (by a person or by the conflict policy) or ``"all"`` (``None`` also means all)."""
        self._check_open()
        return listing.conflicts(self.store, lambda: self._scope(user_id, agent_id, run_id, org_id), status)

    def entities(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """The scope's entity graph nodes, most mentioned first."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        return {"results": [e.to_dict() for e in self.store.entities(scope, check_limit(limit))]}

    def neighbours(
        self, entity: str, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, depth: int = 1,
    ) -> dict[str, Any]:
        """An entity (by id, name or alias) and what it is connected to, with the memories about it."""
        return listing.neighbourhood(self.store, self._open(user_id, agent_id, run_id, org_id), entity, depth)

    def working_state(
        self, conversation_id: str, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, org_id: str | None = None,
    ) -> WorkingState:
        """What a conversation is about now: goals and tasks with their status, entities in focus (latest
        first), topic and the user's constraints. Rebuilt from the episodic tier when this process has none."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        check_id("conversation_id", conversation_id, required=True)
        return working_keeper.current(self.tiers, scope, conversation_id)

    def update_working_state(
        self, conversation_id: str, edit: dict[str, Any], *, user_id: str | None = None,
        agent_id: str | None = None, run_id: str | None = None, org_id: str | None = None, timestamp: Any = None,
    ) -> WorkingState:
        """Change a conversation's working state explicitly; the edit is kept with its episodes, so a rebuild
        replays it. ``edit`` is one of ``{"op": "add_item", "kind": "goal"|"task", "text", "pinned"}``,
        ``{"op": "update_item", "item_id", "status": "open"|"done"|"dropped", "text", "pinned"}``,
        ``{"op": "set_topic", "topic"}`` (None unpins), ``{"op": "add_constraint", "text"}`` or
        ``{"op": "remove_constraint", "constraint_id"}``. Pinned items change only through this call."""
        scope = self._open(user_id, agent_id, run_id, org_id)
        check_id("conversation_id", conversation_id, required=True)
        at = parse_time("timestamp", timestamp).timestamp() if timestamp is not None else None
        return working_keeper.edit(self.tiers, scope, conversation_id, edit, at)

    def scopes(
        self, *, org_id: str | None = None, user_ids: list[str] | None = None, agent_ids: list[str] | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The scopes this store holds, most recently active first: their ids, episode and memory counts and
        last write (``last_active_at``); optionally only one org's, or only some users' or agents'."""
        self._check_open()
        check_id("org_id", org_id)
        for field_name, values in (("user_ids", user_ids), ("agent_ids", agent_ids)):
            for value in values or ():
                check_id(field_name, value)
        return {"results": self.store.scopes(org_id, user_ids, agent_ids, check_limit(limit))}

    def stats(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Row counts for one scope, or for the whole store when no scope is given."""
        self._check_open()
        scope = None if user_id is None and agent_id is None and run_id is None else self._scope(
            user_id, agent_id, run_id, org_id)
        return {**self.tiers.stats(scope), "embedder": self.embedder.name}

    def close(self) -> None:
        if not self._closed:
            self.flush_usage()
            self._closed = True
            self.tiers.close()
            self.cache_layers.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Memory(store={type(self.store).__name__}, embedder={self.embedder.name!r})"


__all__ = ["MAX_LIMIT", "Memory", "open_cache", "open_store", "open_vector_tier"]
