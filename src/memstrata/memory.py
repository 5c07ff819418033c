"""``Memory``: the public facade. Thin: it validates, orders the steps and shapes results; the work is below.

``add`` writes episodes first (durable before anything else runs), then extracts, dedups, resolves
conflicts and applies one transaction. ``search`` and ``context`` run the five-stage retriever.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memstrata.backends.inprocess import DEFAULT_TTL_SECONDS, InProcessShortTerm, InProcessWorking
from memstrata.cache_guard import cache_write
from memstrata.cache_guard import recent_turns as _recent_turns  # context() has an argument of that name
from memstrata.config import IngestConfig, default_store_url, parse_store_url
from memstrata.core.text import chunk_text
from memstrata.core.validate import check_metadata, check_utf8, parse_time
from memstrata.errors import (
    ConfigurationError,
    InvalidInputError,
    MemstrataError,
    NotFoundError,
    ProviderError,
)
from memstrata.ingest.candidate import Candidate, Message
from memstrata.ingest.conflicts import BY_POLICY
from memstrata.ingest.evidence import EVIDENCE_KIND, message_report
from memstrata.ingest.messages import normalize_messages
from memstrata.ingest.pipeline import keep_everything, plan_add, verbatim_candidates
from memstrata.ingest.revise import known_neighbours
from memstrata.models import EpisodeRecord, HistoryEvent, Scope, check_id, iso, utcnow
from memstrata.providers.embedders import Embedder, resolve_embedder
from memstrata.retrieve.filters import parse_filters
from memstrata.retrieve.fusion import fit_budget
from memstrata.retrieve.pipeline import Retriever, SearchRequest
from memstrata.retrieve.presets import get_preset
from memstrata.tiers.base import Capability, ShortTermTier, Store, Turn, WorkingState, WorkingTier, WriteBatch
from memstrata.tiers.vectors import SplitVectorStore, VectorTier
from memstrata.working import keeper as working_keeper
from memstrata.working.view import context_section

MAX_LIMIT = 1000
TOUCH_FLUSH_SECONDS = 10.0
TOUCH_FLUSH_COUNT = 512
MAX_QUERY_CHARS = 10_000
_QUERY_CACHE = 1024


def open_store(url: str, dim: int, **options: Any) -> Store:
    """Open the durable store named by ``url`` (see ``parse_store_url``)."""
    parsed = parse_store_url(url)
    store: Store
    if parsed.scheme == "sqlite":
        from memstrata.backends.sqlite import SQLiteStore

        store = SQLiteStore(parsed.path, dim=dim, **options)
    elif parsed.scheme == "postgresql":
        from memstrata.backends.postgres import PostgresStore

        store = PostgresStore(parsed.url, dim=dim, **options)
    else:
        raise ConfigurationError(f"store: the {parsed.scheme} backend is not available in this build")
    codec = options.get("codec")
    if (codec is None or not codec.encrypts) and store.supports(Capability.PRIVACY):
        try:
            encrypted = store.holds_data_keys()
        except BaseException:
            store.close()
            raise
        if encrypted:
            # Without its keys every text would come back as ciphertext; refuse instead.
            store.close()
            raise ConfigurationError(
                "store: it holds encrypted data; open it with its master key (set MEMSTRATA_MASTER_KEY or "
                "MEMSTRATA_MASTER_KEY_FILE, or use memstrata.secure.secure_memory(..., master_key=...))"
            )
    return store


def open_vector_tier(url: str, dim: int) -> VectorTier:
    """An external vector index by URL: ``qdrant:///path`` (embedded), ``qdrant+http://host:6333``,
    ``chroma:///path`` (embedded persistent client) or ``chroma+http://host:8000``."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.startswith("qdrant"):
        from memstrata.backends.qdrant import QdrantVectors

        return QdrantVectors.from_url(url, dim)
    if scheme.startswith("chroma"):
        from memstrata.backends.chroma import ChromaVectors

        return ChromaVectors.from_url(url, dim)
    raise ConfigurationError(f"vectors: unknown scheme in {url!r} (supported: qdrant, chroma)")


def open_cache(url: str, ttl_seconds: float) -> tuple[ShortTermTier, WorkingTier]:
    """Short-term and working tiers by URL: ``redis://host:port/db``."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(f"cache: unknown scheme in {url!r} (supported: redis)")
    from memstrata.backends.redis import short_term_from_url

    return short_term_from_url(url, ttl_seconds=ttl_seconds)


def _encode_cursor(created_at: float, ident: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, ident]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, ident = json.loads(raw)
        return float(created_at), str(ident)
    except (ValueError, TypeError):
        raise InvalidInputError("cursor", "is not a cursor returned by get_all") from None


# Facts about the whole store that a caller asking about one scope has no business seeing.
STORE_WIDE_STATS = ("path", "url", "file_bytes", "database_bytes", "vector_cache_bytes", "scopes")


class Memory:
    """Long-term memory for an agent, on the embedded SQLite default or a configured backend.

    >>> m = Memory(store="sqlite:///tmp/memory.db")
    >>> m.add("I moved to Lisbon last month.", user_id="alice")
    >>> m.search("where do I live?", user_id="alice")

    Every call names its scope (``user_id``, ``agent_id``, ``run_id``, optional ``org_id``); pass them to
    the constructor to bind a default scope for calls that omit them.
    """

    def __init__(
        self,
        store: str | Store | None = None,
        *,
        embedder: str | Embedder | None = None,
        ingest: IngestConfig | None = None,
        extractor: Any = None,
        short_term: ShortTermTier | None = None,
        working: WorkingTier | None = None,
        vectors: str | VectorTier | None = None,
        cache: str | None = None,
        short_term_ttl: float = DEFAULT_TTL_SECONDS,
        preset: str = "balanced",
        actor: str = "library",
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        **store_options: Any,
    ) -> None:
        self.embedder = resolve_embedder(embedder)
        self.store: Store = (
            store
            if isinstance(store, Store)
            else open_store(store or default_store_url(), self.embedder.dim, **store_options)
        )
        if vectors is not None:
            tier = vectors if isinstance(vectors, VectorTier) else open_vector_tier(vectors, self.embedder.dim)
            self.store = SplitVectorStore(self.store, tier)
        if cache is not None and (short_term is None or working is None):
            cached_short, cached_working = open_cache(cache, short_term_ttl)
            short_term, working = short_term or cached_short, working or cached_working
        self.ingest_config = ingest or IngestConfig()
        self._extractor = extractor
        self.short_term = short_term or InProcessShortTerm(short_term_ttl)
        self.working = working or InProcessWorking()
        self.preset = get_preset(preset)
        self.actor = actor
        self.retriever = Retriever(self.store, self.embedder)
        self._default_scope = dict(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)
        if any(v is not None for v in self._default_scope.values()):
            Scope.of(**self._default_scope)  # validate now, not on first use
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._qlock = threading.Lock()
        self._closed = False
        self._touched: dict[Scope, dict[float, set[str]]] = {}  # scope → search time → ids
        self._touch_lock = threading.Lock()
        self._last_touch_flush = time.monotonic()

    # -- plumbing ----------------------------------------------------------------------------------

    def _scope(
        self, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None
    ) -> Scope:
        if user_id is None and agent_id is None and run_id is None:
            d = self._default_scope
            return Scope.of(
                user_id=d["user_id"], agent_id=d["agent_id"], run_id=d["run_id"], org_id=org_id or d["org_id"]
            )
        return Scope.of(
            user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id or self._default_scope["org_id"]
        )

    def _id_scope(
        self, memory_id: Any, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None
    ) -> Scope:
        """The scope of a by-id call. With no scope named (none in the call or the constructor), the store
        says which scope holds the id: memory ids are unique, so ``get(id)`` needs nothing else, as in Mem0."""
        if any(v is not None for v in (user_id, agent_id, run_id)) or any(
            self._default_scope[k] is not None for k in ("user_id", "agent_id", "run_id")
        ):
            return self._scope(user_id, agent_id, run_id, org_id)
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "must be a non-empty string")
        found = self.store.scope_of_memory(memory_id)
        org = org_id or self._default_scope["org_id"]
        if found is None or (org is not None and found.org_id != org):
            raise NotFoundError("memory", memory_id)
        return found

    def _check_open(self) -> None:
        if self._closed:
            raise MemstrataError("memory is closed")

    def _extract(self, scope: Scope, messages: list[Message], now: datetime) -> list[Candidate]:
        from memstrata.ingest.llm_extract import LLMExtractor
        from memstrata.ingest.rules import RulesExtractor

        if self._extractor is None:
            if self.ingest_config.mode == "llm":
                raise ConfigurationError("ingest: mode 'llm' needs extractor=LLMExtractor(...)")
            self._extractor = RulesExtractor(threshold=self.ingest_config.importance_threshold)
        if isinstance(self._extractor, RulesExtractor):
            # Known names let "Anna" resolve to the stored "Anna Silva" instead of becoming a second node.
            known = [e.name for e in self.store.entities(scope, limit=5000)]
            return self._extractor.extract(messages, now, known_entities=known)
        if isinstance(self._extractor, LLMExtractor):  # one call that also sees the nearest stored facts
            near = known_neighbours(self.store, scope, self.embedder.embed, messages)
            return self._extractor.extract(messages, now, known=near)
        return self._extractor.extract(messages, now)

    def _query_vector(self, query: str) -> np.ndarray:
        with self._qlock:
            vec = self._qcache.get(query)
            if vec is not None:
                self._qcache.move_to_end(query)
                return vec
        vec = self.embedder.embed([query])[0]
        with self._qlock:
            self._qcache[query] = vec
            while len(self._qcache) > _QUERY_CACHE:
                self._qcache.popitem(last=False)
        return vec

    @staticmethod
    def _now(now: Any, field: str = "now") -> datetime:
        return utcnow() if now is None else parse_time(field, now)

    # -- writes ------------------------------------------------------------------------------------

    def add(
        self,
        messages: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        conversation_id: str | None = None,
        timestamp: Any = None,
        metadata: dict[str, Any] | None = None,
        infer: bool = True,
    ) -> dict[str, Any]:
        """Remember messages. Returns ``{"results": [{"id", "memory", "event", ...}], "episodes": [...]}``."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        check_id("conversation_id", conversation_id)
        if not isinstance(infer, bool):
            raise InvalidInputError("infer", "must be True or False")
        when = parse_time("timestamp", timestamp) if timestamp is not None else None
        msgs = normalize_messages(messages, when)
        meta = check_metadata(metadata)
        now_dt = utcnow()
        now = now_dt.timestamp()
        episodes = [
            EpisodeRecord(
                id=str(uuid.uuid4()),
                scope=scope,
                conversation_id=conversation_id,
                role=m.role,
                name=m.name,
                content=m.content,
                occurred_at=(m.timestamp or now_dt).timestamp(),
                created_at=now,
                metadata=meta,
                position=m.index,
                extraction_status="pending",
            )
            for m in msgs
        ]
        self.store.add_episodes(episodes)  # durable before any later step can fail
        warnings: list[str] = []
        if conversation_id is not None:
            turns = [Turn(e.role, e.content, e.occurred_at, e.id) for e in episodes]
            cache_write("short-term memory", lambda: self.short_term.push(scope, conversation_id, turns), warnings)
            cache_write("working memory", lambda: working_keeper.observe(self, scope, conversation_id, episodes),
                        warnings)
        episode_ids = [e.id for e in episodes]
        try:
            plan = self._plan(scope, msgs, episodes, meta, conversation_id, infer, now)
        except ProviderError as exc:
            self._mark(scope, episode_ids, "failed", f"{type(exc).__name__}: {exc}")
            retryable = bool(getattr(exc, "retryable", True))
            return {"results": [], "episodes": episode_ids, "failed": {"reason": str(exc), "retryable": retryable}}
        except BaseException as exc:
            self._mark(scope, episode_ids, "failed", f"{type(exc).__name__}: {exc}")
            raise
        out: dict[str, Any] = {"results": plan.results, "episodes": episode_ids, "messages": plan.messages}
        if warnings:
            out["warnings"] = warnings
        return out

    def _plan(
        self,
        scope: Scope,
        msgs: list[Message],
        episodes: list[EpisodeRecord],
        meta: dict[str, Any],
        conversation_id: str | None,
        infer: bool,
        now: float,
    ):  # type: ignore[no-untyped-def]
        ref_time = max((m.timestamp for m in msgs if m.timestamp), default=None) or utcnow()
        if infer:
            earlier = []
            if conversation_id is not None:  # this call's turns are already pushed (or stored, if the cache is down)
                turns = _recent_turns(self.short_term, self.store, scope, conversation_id, len(msgs) + 6)
                # system turns (markers, recorded working-state edits) are nobody's words to complete a reply with
                earlier = [(t.role, t.content) for t in turns[: max(0, len(turns) - len(msgs))] if t.role != "system"]
            from memstrata.ingest.rules import RulesExtractor

            facts = self._extract(scope, msgs, ref_time)
            candidates = keep_everything(facts, msgs, earlier, cues=isinstance(self._extractor, RulesExtractor))
        else:
            candidates = verbatim_candidates(msgs)
        plan = plan_add(
            self.store,
            scope,
            candidates=candidates,
            messages=msgs,
            episodes=episodes,
            embed=self.embedder.embed,
            metadata=meta,
            conversation_id=conversation_id,
            config=self.ingest_config,
            infer=infer,
            now=now,
            actor=self.actor,
        )
        cited = {  # episodes a fact was drawn from; evidence alone leaves an episode 'skipped'
            e
            for c in candidates
            if not infer or c.kind != EVIDENCE_KIND
            for i in c.source_indexes
            if 0 <= i < len(episodes)
            for e in [episodes[i].id]
        }
        plan.batch.episode_status.extend(
            (e.id, "done" if e.id in cited else "skipped", None) for e in episodes
        )
        self.store.apply(scope, plan.batch)
        plan.messages = message_report(msgs, [e.id for e in episodes], plan.results)
        return plan

    def _mark(self, scope: Scope, ids: list[str], status: str, error: str | None) -> None:
        try:
            self.store.apply(scope, WriteBatch(episode_status=[(i, status, error) for i in ids]))
        except MemstrataError:
            pass  # the episodes stay 'pending', which retry_failed() also picks up

    def retry_failed(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Run extraction again for episodes whose extraction failed or never finished."""
        scope = self._scope(user_id, agent_id, run_id, org_id)
        todo = self.store.list_episodes(scope, status="failed", limit=10_000) + self.store.list_episodes(
            scope, status="pending", limit=10_000
        )
        groups: dict[str | None, list[EpisodeRecord]] = {}
        for ep in sorted(todo, key=lambda e: (e.occurred_at, e.position)):
            groups.setdefault(ep.conversation_id, []).append(ep)
        results: list[dict[str, Any]] = []
        failed = 0
        for conv, eps in groups.items():
            msgs = [
                Message(e.role, e.content, i, e.name, datetime.fromtimestamp(e.occurred_at, UTC))
                for i, e in enumerate(eps)
            ]
            try:
                plan = self._plan(scope, msgs, eps, eps[0].metadata, conv, True, time.time())
                results.extend(plan.results)
            except ProviderError as exc:
                failed += len(eps)
                self._mark(scope, [e.id for e in eps], "failed", f"{type(exc).__name__}: {exc}")
        return {"results": results, "retried": len(todo), "still_failed": failed}

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        self._check_open()
        scope = self._id_scope(memory_id, user_id, agent_id, run_id, org_id)
        if text is None and metadata is None:
            raise InvalidInputError("text", "give text and/or metadata to update")
        rec = self._get_record(scope, memory_id)
        old = rec.text
        vecs = None
        if text is not None:
            norm = normalize_messages([{"role": "user", "content": text}])[0].content
            from memstrata.core.text import normalized_hash

            rec.text, rec.content_hash = norm, normalized_hash(norm)
            vecs = self.embedder.embed(chunk_text(norm))
        if metadata is not None:
            rec.metadata = check_metadata(metadata)
        rec.updated_at = time.time()
        event = HistoryEvent(
            str(uuid.uuid4()),
            rec.id,
            "UPDATE",
            old,
            rec.text,
            self.actor,
            "update() called",
            rec.updated_at,
            {"metadata_changed": metadata is not None},
        )
        self.store.apply(scope, WriteBatch(updated_memories=[(rec, vecs)], history=[event]))
        return {"id": rec.id, "memory": rec.text, "event": "UPDATE", "previous_memory": old}

    def delete(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete one memory; a DELETE event with its last text stays in history."""
        self._check_open()
        scope = self._id_scope(memory_id, user_id, agent_id, run_id, org_id)
        rec = self._get_record(scope, memory_id)
        event = HistoryEvent(
            str(uuid.uuid4()), rec.id, "DELETE", rec.text, None, self.actor, "delete() called", time.time()
        )
        self.store.apply(scope, WriteBatch(deleted_memory_ids=[rec.id], history=[event]))
        return {"id": rec.id, "memory": rec.text, "event": "DELETE"}

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete everything of one scope in every tier (memories, episodes, graph, history, short-term)."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        counts = self.store.delete_scope(scope)
        counts["short_term_conversations"] = self.short_term.clear(scope)
        counts["working_conversations"] = self.working.clear(scope)
        return {"message": "deleted", "deleted": counts}

    def reset(self) -> None:
        """Delete every scope's data. Irreversible."""
        self._check_open()
        self.store.reset()
        self.short_term = InProcessShortTerm(getattr(self.short_term, "ttl", DEFAULT_TTL_SECONDS))
        self.working = InProcessWorking()
        with self._qlock:
            self._qcache.clear()

    def resolve_conflict(
        self,
        conflict_id: str,
        keep: str = "new",
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Close a conflict: ``keep="new"`` (the newer value holds), ``"old"`` or ``"both"``."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        if keep not in ("new", "old", "both"):
            raise InvalidInputError("keep", "must be 'new', 'old' or 'both'")
        conflict = next((c for c in self.store.conflicts(scope, None) if c.id == conflict_id), None)
        if conflict is None:
            raise NotFoundError("conflict", conflict_id)
        if conflict.status != "open" and not (conflict.resolution or "").startswith(BY_POLICY):
            raise InvalidInputError("conflict_id", f"conflict {conflict_id} is already resolved")
        recs = {
            r.id: r for r in self.store.get_memories(scope, [conflict.new_memory_id, conflict.old_memory_id])
        }
        new, old = recs.get(conflict.new_memory_id), recs.get(conflict.old_memory_id)
        now = time.time()
        batch = WriteBatch()
        if old is not None and new is not None:
            if keep == "new" and old.current:
                old.valid_to, old.superseded_by = new.valid_from, new.id
                batch.updated_memories.append((old, None))
                batch.history.append(
                    HistoryEvent(
                        str(uuid.uuid4()),
                        old.id,
                        "SUPERSEDE",
                        old.text,
                        old.text,
                        self.actor,
                        "conflict resolved: keep new",
                        now,
                    )
                )
            elif keep == "old":
                old.valid_to, old.superseded_by = None, None
                new.valid_to, new.superseded_by = now, old.id
                batch.updated_memories += [(old, None), (new, None)]
                batch.history.append(
                    HistoryEvent(
                        str(uuid.uuid4()),
                        new.id,
                        "SUPERSEDE",
                        new.text,
                        new.text,
                        self.actor,
                        "conflict resolved: keep old",
                        now,
                    )
                )
            elif keep == "both":
                old.valid_to, old.superseded_by = None, None
                batch.updated_memories.append((old, None))
                batch.history.append(
                    HistoryEvent(
                        str(uuid.uuid4()),
                        old.id,
                        "UPDATE",
                        old.text,
                        old.text,
                        self.actor,
                        "conflict resolved: keep both",
                        now,
                    )
                )
        for rec in (old, new):
            if rec is not None:
                rec.updated_at = now
        self.store.apply(scope, batch)
        return self.store.resolve_conflict(scope, conflict_id, f"keep_{keep}", now).to_dict()

    # -- reads -------------------------------------------------------------------------------------

    def _get_record(self, scope: Scope, memory_id: str):  # type: ignore[no-untyped-def]
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "must be a non-empty string")
        found = self.store.get_memories(scope, [memory_id])
        if not found:
            raise NotFoundError("memory", memory_id)
        return found[0]

    def get(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """One memory of the scope by id; NotFoundError (a KeyError) when the scope holds no such id."""
        self._check_open()
        return self._get_record(self._id_scope(memory_id, user_id, agent_id, run_id, org_id), memory_id).to_dict()

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        filters: dict[str, Any] | None = None,
        include_superseded: bool = False,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """Memories of a scope in creation order, a page at a time: pass back ``next_cursor``."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        limit = _check_limit(limit)
        where = parse_filters(filters)
        after = _decode_cursor(cursor) if cursor else None
        rows = self.store.list_memories(
            scope,
            include_superseded=include_superseded,
            limit=limit + 1,
            after=after,
            where=where,
            conversation_id=conversation_id,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "results": [r.to_dict() for r in rows],
            "next_cursor": _encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None,
        }

    def history(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every event of a memory, oldest first. Kept after `delete`; a retention purge or `forget_user`
        removes it."""
        self._check_open()
        scope = self._id_scope(memory_id, user_id, agent_id, run_id, org_id)
        events = self.store.history(scope, memory_id)
        if not events:
            raise NotFoundError("memory", memory_id)
        return [e.to_dict() for e in events]

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        limit: int = 10,
        filters: dict[str, Any] | None = None,
        now: Any = None,
        as_of: Any = None,
        conversation_id: str | None = None,
        preset: str | None = None,
        explain: bool = False,
        include_superseded: bool = False,
    ) -> dict[str, Any]:
        """Ranked memories for a query: ``{"results": [{"id", "memory", "score", ...}]}``."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        hits = self._search(
            scope, query, limit, filters, now, as_of, conversation_id, preset, include_superseded
        )
        out = []
        for h in hits:
            item = h.record.to_dict()
            item["score"] = round(h.score, 6)
            if explain:
                item["stages"] = h.stages
            out.append(item)
        return {"results": out}

    def _search(
        self,
        scope: Scope,
        query: Any,
        limit: int,
        filters: Any,
        now: Any,
        as_of: Any,
        conversation_id: str | None,
        preset: str | None,
        include_superseded: bool,
    ):  # type: ignore[no-untyped-def]
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query", "must be a non-empty string")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInputError(
                "query", f"is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}"
            )
        check_utf8("query", query)
        check_id("conversation_id", conversation_id)
        recent = _recent_turns(self.short_term, self.store, scope, conversation_id, 6)
        req = SearchRequest(
            scope=scope,
            query=query,
            limit=_check_limit(limit),
            now=self._now(now),
            preset=get_preset(preset) if preset else self.preset,
            filters=parse_filters(filters),
            as_of=parse_time("as_of", as_of) if as_of is not None else None,
            conversation_id=conversation_id,
            recent_turns=recent,
            include_superseded=bool(include_superseded),
            query_vector=self._query_vector(query),
        )
        hits = self.retriever.search(req)
        self._note_use(scope, [h.record.id for h in hits], req.now.timestamp())
        return hits

    def _note_use(self, scope: Scope, ids: list[str], at: float) -> None:
        """Remember which memories were returned, and at which ``now``; written in batches so reads stay read-only
        on the hot path."""
        with self._touch_lock:
            # To the minute: a recency boost with a half-life in days needs no finer stamp, and fewer distinct
            # stamps mean fewer statements per flush.
            self._touched.setdefault(scope, {}).setdefault(at - at % 60, set()).update(ids)
            due = (time.monotonic() - self._last_touch_flush > TOUCH_FLUSH_SECONDS
                   or sum(len(v) for by_at in self._touched.values() for v in by_at.values()) >= TOUCH_FLUSH_COUNT)
        if due:
            self.flush_usage()

    def flush_usage(self) -> None:
        """Write pending last-used times (they feed the recency-of-use boost). Runs by itself now and then."""
        with self._touch_lock:
            pending, self._touched = self._touched, {}
            self._last_touch_flush = time.monotonic()
        for scope, by_at in pending.items():
            for at, ids in sorted(by_at.items()):
                try:
                    self.store.touch(scope, sorted(ids), at)
                except MemstrataError:
                    pass  # usage statistics are best effort; the next flush tries again with new data

    def context(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        conversation_id: str | None = None,
        token_budget: int = 2000,
        now: Any = None,
        preset: str | None = None,
        limit: int = 50,
        recent_turns: int = 6,
    ) -> dict[str, Any]:
        """A prompt-ready block: recent turns, then the best memories, within ``token_budget`` tokens."""
        self._check_open()
        if not isinstance(token_budget, int) or isinstance(token_budget, bool) or token_budget < 1:
            raise InvalidInputError("token_budget", "must be a positive integer")
        if not isinstance(recent_turns, int) or isinstance(recent_turns, bool) or not 0 <= recent_turns <= 1000:
            raise InvalidInputError("recent_turns", f"must be an integer from 0 to 1000, got {recent_turns!r}")
        scope = self._scope(user_id, agent_id, run_id, org_id)
        hits = self._search(scope, query, limit, None, now, None, conversation_id, preset, False)
        count = self.embedder.count_tokens
        recent = _recent_turns(self.short_term, self.store, scope, conversation_id, recent_turns)
        # The working state leads, within a quarter of the budget: it is what the conversation is about now.
        state = working_keeper.current(self, scope, conversation_id) if conversation_id else None
        working_text, working_used = context_section(state, token_budget // 4, count) if state else ("", 0)
        header_mem = "## Relevant memories\n"
        header_recent = "## Recent conversation\n"
        lines_recent = [f"{t.role}: {t.content}\n" for t in recent]
        used = 0
        recent_keep: list[int] = []
        if lines_recent:
            # The conversation gets at most a quarter of the budget: memories are what this call is for.
            recent_keep, used = fit_budget(
                list(reversed(lines_recent)), token_budget // 4, count, overhead=count(header_recent)
            )
            recent_keep = sorted(len(lines_recent) - 1 - i for i in recent_keep)
            if not recent_keep:
                used = 0
        lines = [f"- [{(iso(h.record.valid_from) or '')[:10]}] {h.record.text}\n" for h in hits]
        keep, used = fit_budget(lines, token_budget, count, overhead=used + working_used + count(header_mem))
        text = working_text
        if recent_keep:
            text += header_recent + "".join(lines_recent[i] for i in recent_keep) + "\n"
        if keep:
            text += header_mem + "".join(lines[i] for i in keep)
        else:
            used -= count(header_mem)
        items = [
            {
                "id": hits[i].record.id,
                "memory": hits[i].record.text,
                "score": round(hits[i].score, 6),
                "episode_ids": hits[i].record.episode_ids,
                "valid_from": iso(hits[i].record.valid_from),
                "created_at": iso(hits[i].record.created_at),
                "tokens": count(lines[i]),
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
        }

    def episodes(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        query: str | None = None,
        conversation_id: str | None = None,
        start: Any = None,
        end: Any = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope: full-text search with ``query``, else a time range in time order."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        limit = _check_limit(limit)
        if query is not None:
            if not isinstance(query, str) or not query.strip():
                raise InvalidInputError("query", "must be a non-empty string")
            return {
                "results": [
                    {**e.to_dict(), "score": round(s, 6)}
                    for e, s in self.store.search_episodes(scope, query, limit)
                ]
            }
        rows = self.store.list_episodes(
            scope,
            conversation_id=conversation_id,
            limit=limit,
            start=parse_time("start", start).timestamp() if start is not None else None,
            end=parse_time("end", end).timestamp() if end is not None else None,
        )
        return {"results": [e.to_dict() for e in rows]}

    def conflicts(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        status: str | None = "open",
    ) -> dict[str, Any]:
        """Conflicts raised when a new value met an old one: ``status`` is ``"open"`` (waiting for a person),
        ``"resolved"`` (by a person or by the conflict policy) or ``"all"`` (``None`` also means all)."""
        self._check_open()
        if status not in (None, "all", "open", "resolved"):
            raise InvalidInputError("status", f"must be 'open', 'resolved' or 'all', got {status!r}")
        status = None if status == "all" else status
        scope = self._scope(user_id, agent_id, run_id, org_id)
        return {"results": [c.to_dict() for c in self.store.conflicts(scope, status)]}

    def entities(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The scope's entity graph nodes, most mentioned first."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        return {"results": [e.to_dict() for e in self.store.entities(scope, _check_limit(limit))]}

    def neighbours(
        self,
        entity: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        depth: int = 1,
    ) -> dict[str, Any]:
        """An entity (by id, name or alias) and what it is connected to, with the memories about it."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        if not isinstance(depth, int) or not 1 <= depth <= 3:
            raise InvalidInputError("depth", "must be 1, 2 or 3")
        key = entity.strip().lower() if isinstance(entity, str) else ""
        if not key:
            raise InvalidInputError("entity", "must be a non-empty string")
        node = next(
            (
                e
                for e in self.store.entities(scope, 100_000)
                if e.id == entity or e.name.lower() == key or key in (a.lower() for a in e.aliases)
            ),
            None,
        )
        if node is None:
            raise NotFoundError("entity", entity)
        return {
            "entity": node.to_dict(),
            "neighbours": [
                {**n.to_dict(), "relation": rel, "hops": hops}
                for n, rel, hops in self.store.neighbours(scope, node.id, depth)
            ],
            "memories": self.store.memories_of_entities(scope, [node.id], 100),
        }

    def working_state(
        self,
        conversation_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> WorkingState:
        """What a conversation is about now: goals and tasks with their status, entities in focus (latest
        first), topic and the user's constraints. Rebuilt from the episodic tier when this process has none."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        check_id("conversation_id", conversation_id, required=True)
        return working_keeper.current(self, scope, conversation_id)

    def update_working_state(
        self,
        conversation_id: str,
        edit: dict[str, Any],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        timestamp: Any = None,
    ) -> WorkingState:
        """Change a conversation's working state explicitly; the edit is kept with its episodes, so a rebuild
        replays it. ``edit`` is one of ``{"op": "add_item", "kind": "goal"|"task", "text", "pinned"}``,
        ``{"op": "update_item", "item_id", "status": "open"|"done"|"dropped", "text", "pinned"}``,
        ``{"op": "set_topic", "topic"}`` (None unpins), ``{"op": "add_constraint", "text"}`` or
        ``{"op": "remove_constraint", "constraint_id"}``. Pinned items change only through this call."""
        self._check_open()
        scope = self._scope(user_id, agent_id, run_id, org_id)
        check_id("conversation_id", conversation_id, required=True)
        at = parse_time("timestamp", timestamp).timestamp() if timestamp is not None else None
        return working_keeper.edit(self, scope, conversation_id, edit, at)

    def scopes(
        self,
        *,
        org_id: str | None = None,
        user_ids: list[str] | None = None,
        agent_ids: list[str] | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The scopes this store holds, most recently active first: their ids, episode and memory counts and
        last write (``last_active_at``); optionally only one org's, or only some users' or agents'."""
        self._check_open()
        check_id("org_id", org_id)
        for field_name, values in (("user_ids", user_ids), ("agent_ids", agent_ids)):
            for value in values or ():
                check_id(field_name, value)
        rows = self.store.scopes(org_id, user_ids, agent_ids, _check_limit(limit))
        return {"results": rows}

    def stats(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> dict[str, Any]:
        """Row counts for one scope, or for the whole store when no scope is given."""
        self._check_open()
        if user_id is None and agent_id is None and run_id is None:
            out = self.store.stats(None)
        else:
            out = self.store.stats(self._scope(user_id, agent_id, run_id, org_id))
            for key in STORE_WIDE_STATS:  # a scope's counts say nothing about where or how big the store is
                out.pop(key, None)
        out["embedder"] = self.embedder.name
        return out

    # -- privacy -----------------------------------------------------------------------------------

    def forget_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Erase a user from every tier and scope, destroy their data key, compact storage; returns a receipt."""
        from memstrata.privacy.gdpr import forget_user

        return forget_user(self, user_id, org_id)

    def export_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Everything stored about a user, every tier and scope, as portable JSON."""
        from memstrata.privacy.gdpr import export_user

        return export_user(self, user_id, org_id)

    def import_user(self, data: dict[str, Any], *, user_id: str | None = None,
                    org_id: str | None = None) -> dict[str, Any]:
        """Load an export_user document (optionally as another user or org)."""
        from memstrata.privacy.gdpr import import_user

        return import_user(self, data, user_id=user_id, org_id=org_id)

    def audit_log(self, *, org_id: str | None = None, user_id: str | None = None, after: int = 0,
                  limit: int = 100) -> list[dict[str, Any]]:
        """Audit entries, oldest first."""
        from memstrata.privacy.audit import read_audit

        return read_audit(self.store, org_id=org_id, user_id=user_id, after=after, limit=limit)

    def verify_audit(self) -> dict[str, Any]:
        """Check the audit hash chain; {"ok": True, ...} when intact."""
        from memstrata.privacy.audit import verify_audit

        return verify_audit(self.store).to_dict()

    def close(self) -> None:
        if not self._closed:
            self.flush_usage()
            self._closed = True
            self.store.close()
            self.short_term.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Memory(store={type(self.store).__name__}, embedder={self.embedder.name!r})"


def _check_limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidInputError("limit", f"must be an integer, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


__all__ = ["Memory", "open_store"]
