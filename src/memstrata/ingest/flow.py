"""The whole route of one ``add``, in order, so that ``Memory.add`` is one call:

1. the messages are checked and written as episodes, durably, before anything else can fail;
2. the conversation's short-term turns and working state are updated (a cache outage becomes a warning:
   the write is stored, and a caller told otherwise would retry and store it twice);
3. facts are extracted (rules, or an LLM that also sees the nearest stored facts) and completed with
   verbatim evidence, or, with ``infer=False``, each message is kept as it was said;
4. their windows are embedded; then, inside the scope's write section (``Store.scope_lock``), ``plan_add``
   dedups them, finds what they replace and applies the conflict policy from fresh reads, into one WriteBatch;
5. the batch, with each episode's extraction status, is applied in one transaction, still in the section.

A provider failure in step 3 or 4 marks the episodes 'failed' and is reported in the result, not raised:
``retry_failed`` runs them again later. Any other failure marks them and propagates.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from memstrata.cache_guard import cache_write, recent_turns
from memstrata.config import IngestConfig
from memstrata.core.validate import check_metadata, parse_time
from memstrata.errors import ConfigurationError, InvalidInputError, ProviderError
from memstrata.ingest.candidate import Candidate, Message
from memstrata.ingest.evidence import EVIDENCE_KIND, message_report
from memstrata.ingest.messages import normalize_messages
from memstrata.ingest.pipeline import AddPlan, embed_with_sentences, keep_everything, plan_add, verbatim_candidates
from memstrata.ingest.revise import known_neighbours
from memstrata.ingest.writer import Writer
from memstrata.models import EpisodeRecord, Scope, check_id, utcnow
from memstrata.providers.embedders import Embedder
from memstrata.tiers.base import ShortTermTier, Store, Turn

# What keeps the working state of a conversation up to date with freshly written episodes.
Observer = Callable[[Scope, str, list[EpisodeRecord]], object]


class AlreadyApplied(Exception):
    """A queued batch whose episodes another worker has applied since they were read: nothing was written."""

    def __init__(self, scope: Scope, episode_ids: list[str]) -> None:
        super().__init__(f"episodes {', '.join(episode_ids)} of scope {scope.key} were applied by another worker")
        self.episode_ids = episode_ids


class FlowTiers(Protocol):
    store: Store
    short_term: ShortTermTier


class IngestFlow:
    """Runs ``add`` and ``retry_failed`` over the tiers. ``extractor`` None: the rules extractor, made on
    first use (an ``IngestConfig(mode="llm")`` needs one given)."""

    def __init__(self, tiers: FlowTiers, writer: Writer, embedder: Embedder, *, config: IngestConfig,
                 extractor: Any, actor: str, observe: Observer) -> None:
        self.tiers, self.writer, self.embedder = tiers, writer, embedder
        self.config, self.extractor, self.actor, self.observe = config, extractor, actor, observe

    def stage(self, scope: Scope, messages: Any, *, conversation_id: str | None, timestamp: Any,
              metadata: dict[str, Any] | None, infer: Any, status: str,
              ) -> tuple[list[Message], dict[str, Any], list[EpisodeRecord], float]:
        """Check a call's arguments and build its episodes (not yet written) with extraction ``status``."""
        check_id("conversation_id", conversation_id)
        if not isinstance(infer, bool):
            raise InvalidInputError("infer", "must be True or False")
        when = parse_time("timestamp", timestamp) if timestamp is not None else None
        msgs = normalize_messages(messages, when)
        meta = check_metadata(metadata)
        now_dt = utcnow()
        now = now_dt.timestamp()
        episodes = [
            EpisodeRecord(id=str(uuid.uuid4()), scope=scope, conversation_id=conversation_id, role=m.role,
                          name=m.name, content=m.content, occurred_at=(m.timestamp or now_dt).timestamp(),
                          created_at=now, metadata=meta, position=m.index, extraction_status=status)
            for m in msgs
        ]
        return msgs, meta, episodes, now

    def follow(self, scope: Scope, conversation_id: str | None, episodes: list[EpisodeRecord]) -> list[str]:
        """Step 2: the conversation's recent turns and working state; returns the warnings of a cache outage."""
        warnings: list[str] = []
        if conversation_id is not None:
            turns = [Turn(e.role, e.content, e.occurred_at, e.id) for e in episodes]
            cache_write("short-term memory", lambda: self.tiers.short_term.push(scope, conversation_id, turns),
                        warnings)
            cache_write("working memory", lambda: self.observe(scope, conversation_id, episodes), warnings)
        return warnings

    def add(self, scope: Scope, messages: Any, *, conversation_id: str | None, timestamp: Any,
            metadata: dict[str, Any] | None, infer: bool) -> dict[str, Any]:
        msgs, meta, episodes, now = self.stage(scope, messages, conversation_id=conversation_id,
                                               timestamp=timestamp, metadata=metadata, infer=infer,
                                               status="pending")
        self.tiers.store.add_episodes(episodes)  # durable before any later step can fail
        warnings = self.follow(scope, conversation_id, episodes)
        episode_ids = [e.id for e in episodes]
        try:
            plan = self.plan(scope, msgs, episodes, meta, conversation_id, infer, now)
        except ProviderError as exc:
            self.writer.mark(scope, episode_ids, "failed", f"{type(exc).__name__}: {exc}")
            retryable = bool(getattr(exc, "retryable", True))
            return {"results": [], "episodes": episode_ids, "failed": {"reason": str(exc), "retryable": retryable}}
        except BaseException as exc:
            self.writer.mark(scope, episode_ids, "failed", f"{type(exc).__name__}: {exc}")
            raise
        out: dict[str, Any] = {"results": plan.results, "episodes": episode_ids, "messages": plan.messages}
        if warnings:
            out["warnings"] = warnings
        return out

    def retry_failed(self, scope: Scope) -> dict[str, Any]:
        """Extract again, one conversation at a time, every episode whose extraction failed or never ran."""
        store = self.tiers.store
        todo = store.list_episodes(scope, status="failed", limit=10_000) + store.list_episodes(
            scope, status="pending", limit=10_000
        )
        groups: dict[str | None, list[EpisodeRecord]] = {}
        for ep in sorted(todo, key=lambda e: (e.occurred_at, e.position)):
            groups.setdefault(ep.conversation_id, []).append(ep)
        results: list[dict[str, Any]] = []
        failed = 0
        for conv, eps in groups.items():
            msgs = [Message(e.role, e.content, i, e.name, datetime.fromtimestamp(e.occurred_at, UTC))
                    for i, e in enumerate(eps)]
            try:
                results.extend(self.plan(scope, msgs, eps, eps[0].metadata, conv, True, time.time()).results)
            except ProviderError as exc:
                failed += len(eps)
                self.writer.mark(scope, [e.id for e in eps], "failed", f"{type(exc).__name__}: {exc}")
        return {"results": results, "retried": len(todo), "still_failed": failed}

    def plan(self, scope: Scope, msgs: list[Message], episodes: Sequence[EpisodeRecord], meta: dict[str, Any],
             conversation_id: str | None, infer: bool, now: float, expect_status: str | None = None) -> AddPlan:
        """Extract, plan and apply one batch of messages whose episodes are stored already.

        With ``expect_status``, the episodes' extraction status is read again inside the write section: if any
        of them has moved on (another worker applied this batch meanwhile), nothing is written and
        ``AlreadyApplied`` is raised."""
        ref_time = max((m.timestamp for m in msgs if m.timestamp), default=None) or utcnow()
        if infer:
            earlier = []
            if conversation_id is not None:  # this call's turns are already pushed (or stored, if the cache is down)
                turns = recent_turns(self.tiers.short_term, self.tiers.store, scope, conversation_id, len(msgs) + 6)
                # system turns (markers, recorded working-state edits) are nobody's words to complete a reply with
                earlier = [(t.role, t.content) for t in turns[: max(0, len(turns) - len(msgs))] if t.role != "system"]
            from memstrata.ingest.rules import RulesExtractor

            facts = self._extract(scope, msgs, ref_time)
            candidates = keep_everything(facts, msgs, earlier, cues=isinstance(self.extractor, RulesExtractor))
        else:
            candidates = verbatim_candidates(msgs)
        # the slow part, before the section
        vectors, sentence_vectors = embed_with_sentences(candidates, msgs, self.embedder.embed, infer=infer,
                                                         sentences=self.config.sentence_vectors)
        cited = {  # episodes a fact was drawn from; evidence alone leaves an episode 'skipped'
            e
            for c in candidates
            if not infer or c.kind != EVIDENCE_KIND
            for i in c.source_indexes
            if 0 <= i < len(episodes)
            for e in [episodes[i].id]
        }
        # Dedup and supersession are decided from reads made inside the scope's write section, so a writer
        # that overlaps this one (a thread, another process, another server) sees its batch, or it sees theirs.
        with self.writer.section(scope):
            if expect_status is not None:
                now_status = {e.id: e.extraction_status
                              for e in self.tiers.store.get_episodes(scope, [e.id for e in episodes])}
                if any(now_status.get(e.id) != expect_status for e in episodes):
                    raise AlreadyApplied(scope, [e.id for e in episodes])
            plan = plan_add(self.tiers.store, scope, candidates=candidates, messages=msgs, episodes=episodes,
                            embed=self.embedder.embed, metadata=meta, conversation_id=conversation_id,
                            config=self.config, infer=infer, now=now, actor=self.actor, vectors=vectors,
                            sentence_vectors=sentence_vectors)
            plan.batch.episode_status.extend((e.id, "done" if e.id in cited else "skipped", None)
                                             for e in episodes)
            self.writer.apply(scope, plan.batch)
        plan.messages = message_report(msgs, [e.id for e in episodes], plan.results)
        return plan

    def _extract(self, scope: Scope, messages: list[Message], now: datetime) -> list[Candidate]:
        from memstrata.ingest.llm_extract import LLMExtractor
        from memstrata.ingest.rules import RulesExtractor

        if self.extractor is None:
            if self.config.mode == "llm":
                raise ConfigurationError("ingest: mode 'llm' needs extractor=LLMExtractor(...)")
            self.extractor = RulesExtractor(threshold=self.config.importance_threshold)
        if isinstance(self.extractor, RulesExtractor):
            # Known names let "Anna" resolve to the stored "Anna Silva" instead of becoming a second node.
            known = [e.name for e in self.tiers.store.entities(scope, limit=5000)]
            return self.extractor.extract(messages, now, known_entities=known)
        if isinstance(self.extractor, LLMExtractor):  # one call that also sees the nearest stored facts
            near = known_neighbours(self.tiers.store, scope, self.embedder.embed, messages)
            return self.extractor.extract(messages, now, known=near)
        result: list[Candidate] = self.extractor.extract(messages, now)
        return result
