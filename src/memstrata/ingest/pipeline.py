"""From validated messages to one WriteBatch: candidates, dedup, conflicts and graph links.

Reads the store only through the tier contract (hash, slot and kNN lookups); writes nothing itself.
The caller writes episodes first, then applies the batch in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memstrata.config import IngestConfig
from memstrata.core.text import chunk_text
from memstrata.ingest.asides import sentence_units
from memstrata.ingest.candidate import Candidate, Message
from memstrata.ingest.conflicts import AUTO_RESOLUTION, clean_value
from memstrata.ingest.entities import resolve_entities
from memstrata.ingest.evidence import EVIDENCE_KIND, cue_candidates, evidence_candidates, finish_facts
from memstrata.ingest.implicit_changes import raise_implicit
from memstrata.ingest.prototypes import RememberingEmbed
from memstrata.ingest.revise import (
    Replacement,
    assign_attributes,
    evidence_of,
    find_reframed,
    find_replaced,
    kept_as_said,
    model_replacements,
    outdates_all,
    refine_attributes,
    said_only,
)
from memstrata.ingest.template_updates import find_by_template
from memstrata.ingest.updates import DESCRIPTIONS, Decision, attributes_in, family_of
from memstrata.models import ConflictRecord, EpisodeRecord, HistoryEvent, MemoryRecord, Scope
from memstrata.tiers.base import Store, WriteBatch

# Whose long messages get sentence vectors. Not the assistant's: its long replies restate what the user asked for
# sentence by sentence, so their sentences lifted the reply above the user's own aside (bench/RESULTS.md,
# "sentence-evidence"), and they would multiply the embedding cost of ingesting them.
SENTENCE_ROLES = ("user",)
NEAR_DUPLICATE_PROBE = 0.85  # below this cosine no pair is a near duplicate; saves is_near_duplicate calls



def _windows(cand: Candidate, messages: Sequence[Message]) -> list[str]:
    """What to embed for a candidate. What users say is embedded whole, window by window; an assistant's
    or tool's long output only by its opening window (the rest stays searchable by keyword). Embedding
    is the dominant cost of ingestion: a 150-token window costs ~50 ms of CPU on a small machine."""
    windows = chunk_text(cand.text)
    sources = [messages[i] for i in cand.source_indexes if 0 <= i < len(messages)]
    roles = {m.role for m in sources}
    family = family_of(cand.slot.attribute) if cand.slot is not None else None
    if cand.slot is not None and cand.slot.subject == "user" and family in DESCRIPTIONS:
        windows[0] = f"{windows[0]} ({DESCRIPTIONS[family]})"
    kept = windows if "user" in roles or not roles else windows[:1]
    speakers = {m.name for m in sources if m.name}
    if len(speakers) == 1:
        # Who said it is part of what it means: "Caroline: I joined a support group" answers "What did Caroline
        # join?", which the bare first-person words do not. Only the vectors carry the name, not the text.
        speaker = speakers.pop()
        kept = [f"{speaker}: {w}" for w in kept]
        kept += _reply_window(cand, messages, speaker)
    return kept


REPLY_WORDS = 40  # of the turn replied to (its opening says what it is about), read with the reply
REPLY_MAX_WORDS = 40  # a longer turn says what it is about itself


def _reply_window(cand: Candidate, messages: Sequence[Message], speaker: str) -> list[str]:
    """Between people, a short turn is read with the turn it answers: "It's got an octopus on it", said of
    the guitar the other person just asked about, answers "What design is on Calvin's guitar?" only beside
    that question. One more window of a verbatim turn of a named speaker, after another named speaker's
    turn in the same call; the turn's own vector is unchanged (the search takes a memory's nearest window)."""
    if cand.kind != EVIDENCE_KIND or len(cand.source_indexes) != 1:
        return []
    i = cand.source_indexes[0]
    if not 0 < i < len(messages) or len(messages[i].content.split()) > REPLY_MAX_WORDS:
        return []
    before = messages[i - 1]
    if not before.name or before.name == speaker or before.role not in SENTENCE_ROLES:
        return []
    said = " ".join(before.content.split()[:REPLY_WORDS])
    return [f"{before.name}: {said}\n{speaker}: {messages[i].content}"]


@dataclass
class AddPlan:
    batch: WriteBatch
    results: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)  # per message: outcome and reason code


def keep_everything(facts: Sequence[Candidate], messages: Sequence[Message],
                    earlier: Sequence[tuple[str, str]] = (), *, cues: bool = True) -> list[Candidate]:
    """Facts made whole and given their attribute, plus verbatim evidence for every message, in message
    order (each message's evidence before its facts, so a later fact can close it). ``cues``: also turn
    statements of change the extractor skipped into facts (the rules mode; a model judges them itself)."""
    kept = finish_facts(list(facts), messages, earlier)
    if cues:
        kept += cue_candidates(messages, kept)
    assign_attributes(kept, messages)
    evidence = evidence_candidates(messages, kept, earlier)
    order = {id(c): n for n, c in enumerate([*evidence, *kept])}
    return sorted([*evidence, *kept], key=lambda c: (c.source_indexes[0] if c.source_indexes else -1,
                                                      order[id(c)]))


def verbatim_candidates(messages: Sequence[Message]) -> list[Candidate]:
    """``infer=False``: every message becomes a memory as written."""
    return [
        Candidate(
            text=m.content,
            importance=1.0,
            reasons=["verbatim"],
            kind=EVIDENCE_KIND,
            source_indexes=[m.index],
            confidence=1.0,
            confidence_reason="stored verbatim",
        )
        for m in messages
        if m.role != "system"
    ]


def embed_candidates(candidates: Sequence[Candidate], messages: Sequence[Message],
                     embed: Callable[[list[str]], np.ndarray], *, infer: bool = False) -> list[np.ndarray]:
    """The vectors of each candidate's windows (see ``_windows``), in one call to the embedder. With
    ``infer``, each fact's attribute is first checked against its meaning, so it is embedded with its family."""
    return embed_with_sentences(candidates, messages, embed, infer=infer, sentences=False)[0]


def embed_with_sentences(candidates: Sequence[Candidate], messages: Sequence[Message],
                         embed: Callable[[list[str]], np.ndarray], *, infer: bool = False, sentences: bool = True,
                         ) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """``embed_candidates``, and with ``sentences`` the sentence vectors of each long verbatim message
    (``memstrata.ingest.asides``), made in the same call to the embedder: (windows, sentences) per candidate,
    sentences None where there are none."""
    if infer:
        if not isinstance(embed, RememberingEmbed):
            embed = RememberingEmbed(embed)
        refine_attributes(candidates, messages, embed)
    chunks = [_windows(c, messages) for c in candidates]
    units = [_sentence_units(c, messages) if sentences else [] for c in candidates]
    bare = [_bare_windows(c, messages, group) for c, group in zip(candidates, chunks, strict=True)]
    if not chunks:
        return [], []
    vectors = embed([t for group in (*chunks, *units, *bare) for t in group])
    per_candidate: list[np.ndarray] = []
    per_sentences: list[np.ndarray | None] = []
    offset = 0
    for group in chunks:
        per_candidate.append(vectors[offset : offset + len(group)])
        offset += len(group)
    bare_at = offset + sum(len(g) for g in units)
    for n, group in enumerate(bare):
        if group:  # a named speaker's fact: its name and its words count alike
            both = per_candidate[n] + vectors[bare_at : bare_at + len(group)]
            per_candidate[n] = (both / np.linalg.norm(both, axis=1, keepdims=True)).astype(np.float32)
            bare_at += len(group)
    for group in units:
        per_sentences.append(vectors[offset : offset + len(group)] if group else None)
        offset += len(group)
    return per_candidate, per_sentences


def _bare_windows(cand: Candidate, messages: Sequence[Message], named: list[str]) -> list[str]:
    """A fact drawn from one named speaker's words, as its windows (``named``, from :func:`_windows`) read
    without the name (none for anything else). In a short text the name outweighs what was said ("Audrey:
    Their joy was infectious." sits nearer any question about Audrey than her message about the cookies she
    baked), so such a fact's vector is the mean of the two: who said it still counts, but no more than what
    was said."""
    if cand.kind == EVIDENCE_KIND:
        return []
    speakers = {messages[i].name for i in cand.source_indexes if 0 <= i < len(messages) and messages[i].name}
    if len(speakers) != 1:
        return []
    prefix = f"{next(iter(speakers))}: "
    return [w[len(prefix):] if w.startswith(prefix) else w for w in named]


def _sentence_units(cand: Candidate, messages: Sequence[Message]) -> list[str]:
    """The sentences of a verbatim message worth their own vector, with the speaker's name as its windows
    carry it."""
    if cand.kind != EVIDENCE_KIND or len(cand.source_indexes) != 1 or not 0 <= cand.source_indexes[0] < len(messages):
        return []
    source = messages[cand.source_indexes[0]]
    if source.role not in SENTENCE_ROLES:
        return []
    units = sentence_units(source.content)
    return [f"{source.name}: {u}" for u in units] if source.name else units


def plan_add(
    store: Store,
    scope: Scope,
    *,
    candidates: Sequence[Candidate],
    messages: Sequence[Message],
    episodes: Sequence[EpisodeRecord],
    embed: Callable[[list[str]], np.ndarray],
    metadata: dict,
    conversation_id: str | None,
    config: IngestConfig,
    infer: bool,
    now: float,
    actor: str,
    vectors: Sequence[np.ndarray] | None = None,
    sentence_vectors: Sequence[np.ndarray | None] | None = None,
) -> AddPlan:
    """``vectors``: each candidate's window vectors from ``embed_candidates``, made before the caller took
    the scope's write section (embedding is the slow part); None embeds them here. ``sentence_vectors``: each
    candidate's sentence vectors (``embed_with_sentences``), stored with the memory it becomes."""
    from memstrata.ingest.conflicts import find_conflicts
    from memstrata.ingest.dedup import is_near_duplicate, normalized_hash

    batch = WriteBatch()
    plan = AddPlan(batch)
    if not candidates:
        return plan
    if infer:
        embed = RememberingEmbed(embed)
    per_candidate = list(vectors) if vectors is not None else embed_candidates(candidates, messages, embed,
                                                                                infer=infer)

    in_batch: dict[str, MemoryRecord] = {}
    updated: dict[str, MemoryRecord] = {}
    with_facts = {i for c in candidates if c.kind != EVIDENCE_KIND for i in c.source_indexes}

    def merge(target: MemoryRecord, cand: Candidate, ep_ids: list[str], reason: str, event: str) -> None:
        before = target.mention_count
        target.mention_count += 1
        target.last_seen_at = now
        target.updated_at = now
        target.episode_ids = list(dict.fromkeys([*target.episode_ids, *ep_ids]))
        target.importance = max(target.importance, cand.importance)
        if target.id not in in_batch:
            updated[target.id] = target
        batch.history.append(
            HistoryEvent(
                str(uuid.uuid4()),
                target.id,
                event,
                target.text,
                target.text,
                actor,
                reason,
                now,
                {"mention_count": [before, target.mention_count]},
            )
        )
        plan.results.append(
            {"id": target.id, "memory": target.text, "event": event, "episode_ids": ep_ids, "reason": reason}
        )

    per_sentences = list(sentence_vectors) if sentence_vectors is not None else [None] * len(per_candidate)
    for cand, vecs, sent_vecs in zip(candidates, per_candidate, per_sentences, strict=True):
        ep_ids = [episodes[i].id for i in cand.source_indexes if 0 <= i < len(episodes)]
        source = messages[cand.source_indexes[0]] if cand.source_indexes else None
        said = source.timestamp.timestamp() if source and source.timestamp else now
        when = cand.event_time.timestamp() if cand.event_time else said
        h = normalized_hash(cand.text)

        if cand.action == "NOOP":  # the extractor says a stored memory already holds it
            known = [m for m in store.get_memories(scope, cand.targets) if m.current]
            if known:
                merge(updated.get(known[0].id, known[0]), cand, ep_ids, "already known", "MERGE")
                plan.results[-1]["kind"] = cand.kind
                continue
        twin = in_batch.get(h) or next((m for m in store.find_by_hash(scope, h) if m.current), None)
        if twin is not None:
            merge(updated.get(twin.id, twin), cand, ep_ids, "exact duplicate", "MERGE")
            plan.results[-1]["kind"] = cand.kind
            continue
        olds: list[MemoryRecord] = []
        if cand.slot is not None:
            # Any subject: find_conflicts resolves aliases ("Anna" ~ "Anna Silva") itself.
            names = attributes_in(family_of(cand.slot.attribute)) if infer else [cand.slot.attribute]
            olds = [updated.get(m.id, m) for a in names for m in store.find_by_slot(scope, None, a)]
            olds += [m for m in in_batch.values() if m.slot and m.slot[1] in names and m.current]
        if infer and config.near_duplicate and cand.kind != EVIDENCE_KIND:
            near = _near_duplicate(store, scope, cand, vecs[0], olds, is_near_duplicate)
            if near is not None:
                merge(updated.get(near.id, near), cand, ep_ids, "near duplicate", "MERGE")
                plan.results[-1]["kind"] = cand.kind
                continue

        rec = MemoryRecord(
            id=str(uuid.uuid4()),
            scope=scope,
            text=cand.text,
            created_at=said,
            updated_at=said,
            valid_from=when,
            conversation_id=conversation_id,
            metadata=dict(metadata),
            episode_ids=ep_ids,
            kind=cand.kind,
            importance=cand.importance,
            confidence=cand.confidence,
            confidence_reason=cand.confidence_reason,
            source_role=source.role if source else None,
            last_seen_at=now,
            content_hash=h,
            slot=(cand.slot.subject, cand.slot.attribute, cand.slot.value) if cand.slot else None,
            entities=sorted({e.canonical for e in cand.entities}),
        )
        result: dict[str, Any] = {"id": rec.id, "memory": rec.text, "event": "ADD", "kind": rec.kind,
                                  "episode_ids": ep_ids}
        reason = (
            "stored verbatim" if not infer else f"importance {cand.importance:.2f}: {', '.join(cand.reasons)}"
        )

        reps: list[Replacement] = []
        if infer and cand.kind != EVIDENCE_KIND:
            role = source.role if source else None
            reps = model_replacements(store, scope, cand) if cand.action else find_replaced(
                store, scope, cand, vecs[0], role, olds, ep_ids, source.content if source else "",
                source.name if source else None, embed, reframe=config.reframe_updates)
            if (not reps and not cand.action and config.template_updates and role == "user"
                    and not config.reframe_updates):
                reps = find_by_template(store, scope, cand, embed, ep_ids, source.name if source else None,
                                        source.content if source else "")
        elif (infer and config.reframe_updates and source is not None and source.role == "user"
              and cand.source_indexes[0] not in with_facts):
            # a message that gave no fact may still give a known statement of the user's a new value
            reps = find_reframed(store, scope, cand.text, vecs[0], ep_ids, source.name)
            if reps:
                rec.kind = cand.kind = "fact"
                result["kind"] = "fact"
        elif (infer and config.template_updates and not config.reframe_updates and source is not None
              and source.role == "user" and cand.source_indexes[0] not in with_facts):
            # a message that gave no fact ("Aldi now") may still give a known statement a new value
            reps = find_by_template(store, scope, cand, embed, ep_ids, source.name, source.content)
            if reps:
                rec.kind = cand.kind = "fact"
                result["kind"] = "fact"
        if infer:
            for rep in reps:
                old = updated.get(rep.old.id, rep.old)
                if old.superseded_by is not None:
                    continue
                cid = _replace(plan, store, scope, old, rec, cand, rep.decision, in_batch, updated, config,
                               when, now, actor)
                if config.conflict_policy == "latest_wins":
                    result.setdefault("supersedes", []).append(old.id)
                if cid:
                    result.setdefault("conflicts", []).append(cid)
        elif cand.slot is not None:
            clash = set(find_conflicts(cand, [(m.id, _slot_of(m)) for m in olds if m.slot]))
            for old in olds:
                if old.id in clash:
                    cid = _replace(plan, store, scope, old, rec, cand, None, in_batch, updated, config,
                                   when, now, actor)
                    result.setdefault("conflicts", []).append(cid)

        batch.new_memories.append((rec, vecs))
        if sent_vecs is not None and len(sent_vecs):
            batch.sentence_vectors.append((rec.id, sent_vecs))
        in_batch[h] = rec
        batch.history.append(
            HistoryEvent(
                str(uuid.uuid4()), rec.id, "ADD", None, rec.text, actor, reason, now, {"episode_ids": ep_ids}
            )
        )
        for ent in cand.entities:
            batch.entity_links.append((rec.id, ent.canonical, ent.label, ent.text))
        relations = list(cand.relations)
        if cand.slot is not None:
            # A slot whose value names an entity is an edge too: (Anna Silva) -lives_in-> (Braga).
            target = next((e.canonical for e in cand.entities if e.canonical.lower() == cand.slot.value.lower()), None)
            if target and not any(r.relation == cand.slot.attribute and r.object == target for r in relations):
                from memstrata.ingest.candidate import Relation

                relations.append(Relation(cand.slot.subject, cand.slot.attribute, target))
        for rel in relations:
            batch.edges.append((rel.subject, rel.relation, rel.object, rec.id, ep_ids[0] if ep_ids else None))
        plan.results.append(result)

    batch.updated_memories.extend((m, None) for m in updated.values())
    if infer and config.implicit_conflicts and config.mode == "rules":  # a model call judges its own pairs
        raise_implicit(batch, plan.results, store, scope, messages, [e.id for e in episodes], embed,
                       config.conflict_policy, now)
    resolve_entities(batch)  # which stored entity each name is: decided here, the store only upserts
    return plan


def _replace(plan: AddPlan, store: Store, scope: Scope, old: MemoryRecord, rec: MemoryRecord, cand: Candidate,
             decision: Decision | None, in_batch: dict[str, MemoryRecord], updated: dict[str, MemoryRecord],
             config: IngestConfig, when: float, now: float, actor: str) -> str | None:
    """Record that ``rec`` gives ``old``'s attribute a new value: a conflict record unless the statement
    said itself that it is a change, and under ``latest_wins`` the old fact (and evidence that said only
    it) closed at the new fact's time. Returns the conflict id, if one was raised."""
    batch = plan.batch
    subject, attribute, value = (
        (cand.slot.subject, cand.slot.attribute, cand.slot.value) if cand.slot
        else (old.slot[0], old.slot[1], cand.text) if old.slot else ("user", "", cand.text)
    )
    conflict_id = None
    if decision is None or not decision.explicit or config.conflict_policy != "latest_wins":
        conflict = ConflictRecord(
            id=str(uuid.uuid4()),
            new_memory_id=rec.id,
            old_memory_id=old.id,
            subject=subject,
            attribute=attribute,
            # the values as a person reads them: "lisbon", not "lisbon hopefully by march"
            old_value=clean_value(old.slot[2], old.slot[1]) if old.slot else old.text,
            new_value=clean_value(value, attribute) if cand.slot else value,
            policy=config.conflict_policy,
            # a policy that settles conflicts itself records how; a person may still overrule it
            status="resolved" if config.conflict_policy in AUTO_RESOLUTION else "open",
            created_at=now,
            resolved_at=now if config.conflict_policy in AUTO_RESOLUTION else None,
            resolution=AUTO_RESOLUTION.get(config.conflict_policy),
        )
        batch.conflicts.append(conflict)
        conflict_id = conflict.id
    if config.conflict_policy != "latest_wins":
        return conflict_id
    why = f"{attribute} of {subject} changed" if attribute else (decision.reason if decision else "changed")
    targets = [old]
    if decision is not None and old.kind != EVIDENCE_KIND:
        # a message that said (nearly) only the old fact ends with it; one that said more stays as said
        evidence = evidence_of(store, scope, old, in_batch)
        targets += [updated.get(ev.id, ev) for ev in evidence
                    if outdates_all(old, ev) or said_only(store, scope, old, ev, in_batch)]
        kept = None if evidence or old.id in {m.id for m in in_batch.values()} else kept_as_said(
            store, scope, old, rec.text, now)
        if kept is not None:
            batch.new_memories.append(kept)
            batch.history.append(HistoryEvent(str(uuid.uuid4()), kept[0].id, "ADD", None, kept[0].text, actor,
                                              "kept as said: a later statement replaced part of it", now,
                                              {"episode_ids": kept[0].episode_ids}))
            plan.results.append({"id": kept[0].id, "memory": kept[0].text, "event": "ADD", "kind": EVIDENCE_KIND,
                                 "episode_ids": kept[0].episode_ids, "reason": "kept_as_said"})
    for target in targets:
        target.valid_to = when
        target.superseded_by = rec.id
        target.updated_at = now
        if not any(m is target for m in in_batch.values()):
            updated[target.id] = target
        extra = {"superseded_by": rec.id, **({"conflict_id": conflict_id} if conflict_id else {})}
        batch.history.append(
            HistoryEvent(str(uuid.uuid4()), target.id, "SUPERSEDE", target.text, target.text, actor,
                         f"{why} to {value!r}" if target is old else f"its statement was replaced ({why})",
                         now, extra)
        )
        plan.results.append({"id": target.id, "memory": target.text, "event": "SUPERSEDE", "superseded_by": rec.id,
                             "reason": "explicit_update" if decision and decision.explicit else "implicit_update"})
    rec.confidence_reason += "; supersedes an earlier value"
    return conflict_id


def _slot_of(m: MemoryRecord):  # type: ignore[no-untyped-def]
    from memstrata.ingest.candidate import Slot

    assert m.slot is not None
    return Slot(*m.slot)


def _near_duplicate(
    store: Store, scope: Scope, cand: Candidate, vec: np.ndarray, same_slot: list[MemoryRecord], judge
) -> MemoryRecord | None:  # type: ignore[no-untyped-def]
    """A current memory this candidate restates: a close kNN hit, or a fact with the same slot and value."""
    from memstrata.ingest.candidate import Slot
    from memstrata.ingest.dedup import SAME_SLOT_THRESHOLD

    probe = min(NEAR_DUPLICATE_PROBE, SAME_SLOT_THRESHOLD)
    hit_ids = [i for i, s in store.vector_search(scope, vec, 3) if s >= probe]
    records = {r.id: r for r in store.get_memories(scope, hit_ids)}
    records.update({m.id: m for m in same_slot if m.id not in records})
    if not records:
        return None
    vectors = store.vectors(scope, list(records))
    names = sorted({e.canonical for e in cand.entities})
    for rec in records.values():
        old_vec = vectors.get(rec.id)
        if old_vec is None or not rec.current or rec.kind == EVIDENCE_KIND:
            continue
        old_slot = Slot(*rec.slot) if rec.slot else None
        if judge(cand.text, vec, names, rec.text, old_vec, rec.entities, new_slot=cand.slot, old_slot=old_slot):
            return rec
    return None
