"""The ``llm`` extraction mode: one structured LLM call per batch of messages -> Candidate objects.

The model proposes memories as JSON that follows :data:`MEMORY_SCHEMA`; this module validates and
normalises them (clamped scores, known kinds and labels, source indexes that exist) before anything
downstream sees them. Failure is loud: :class:`ExtractionFailed` is raised rather than an empty list,
so the caller can mark the episode for a later retry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from memstrata.errors import ProviderError, ProviderResponseError
from memstrata.ingest.candidate import Candidate, EntityMention, Message, Relation, Slot
from memstrata.providers.llm import LLMClient, Usage

__all__ = ["MEMORY_SCHEMA", "SYSTEM_PROMPT", "ExtractionFailed", "LLMExtractor"]

KINDS = ("fact", "preference", "plan", "event", "relationship", "instruction")
ACTIONS = ("ADD", "UPDATE", "SUPERSEDE", "NOOP")
LABELS = ("PERSON", "PLACE", "ORG", "PROJECT", "PRODUCT", "DATE", "EVENT", "OTHER")

# Kinds and labels are described, not enumerated: an unknown value is normalised here ("fact", "OTHER")
# rather than paying for a re-ask.
_STR = {"type": "string"}
_ENTITY = {
    "type": "object",
    "properties": {"text": _STR, "canonical": _STR, "label": {"type": "string", "description": " | ".join(LABELS)}},
    "required": ["text", "canonical", "label"],
}
_RELATION = {
    "type": "object",
    "properties": {"subject": _STR, "relation": _STR, "object": _STR},
    "required": ["subject", "relation", "object"],
}
_SLOT = {
    "type": ["object", "null"],
    "properties": {"subject": _STR, "attribute": _STR, "value": _STR},
    "required": ["subject", "attribute", "value"],
}

MEMORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "memories": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": _STR,
                    "importance": {"type": "number"},
                    "reasons": {"type": "array", "items": _STR},
                    "kind": {"type": "string", "description": " | ".join(KINDS)},
                    "source_indexes": {"type": "array", "items": {"type": "integer"}},
                    "entities": {"type": "array", "items": _ENTITY},
                    "relations": {"type": "array", "items": _RELATION},
                    "slot": _SLOT,
                    "event_time": {"type": ["string", "null"]},
                    "confidence": {"type": "number"},
                    "action": {"type": "string", "description": " | ".join(ACTIONS)},
                    "targets": {"type": "array", "items": _STR},
                    "explicit": {"type": "boolean"},
                },
                "required": ["text", "importance", "kind", "source_indexes"],
            },
        }
    },
    "required": ["memories"],
}

SYSTEM_PROMPT = """\
You extract long-term memories about the user from a chat, for an AI assistant's memory.

Rules:
- Keep only durable, user-relevant facts: who the user is, their preferences, plans, relationships, \
schedules, projects, possessions, instructions for the assistant. Skip small talk, greetings and \
one-off requests that will not matter later.
- The speaker of "user" messages is the user. Write each memory as a short standalone sentence in the \
third person about "the user" (e.g. "The user lives in Lisbon."), resolving pronouns and relative dates.
- Third parties are not the user: "my boss lives in Paris" is a fact about the boss, not "the user \
lives in Paris".
- Hypotheticals, questions, sarcasm, jokes and quoted or reported speech are not facts. Assistant \
messages are context; record what they say only when the user confirms it.
- Use "user" as the subject for the speaker in relations and slots; other subjects are canonical \
entity names ("Anna", "Acme Corp").
- importance in [0, 1]: 0.9+ identity, health, strong preferences and explicit "remember this"; \
0.5-0.8 ordinary durable facts and plans; below 0.5 minor details.
- confidence in [0, 1]: how sure you are the user meant this literally.
- reasons: short tags such as explicit_cue, preference, plan, schedule_change, relationship, \
new_entity, number, date, first_person_fact.
- kind: one of fact, preference, plan, event, relationship, instruction.
- source_indexes: the [index] numbers of the messages the memory comes from.
- entities: named things in the memory, label one of PERSON, PLACE, ORG, PROJECT, PRODUCT, DATE, \
EVENT, OTHER; canonical is the bare normalised name ("my sister Anna" -> "Anna").
- relations: snake_case verb phrases ("lives_in", "works_at", "sister_of").
- slot: the (subject, attribute, value) the fact sets, when a newer value would replace an older one \
(e.g. {"subject": "user", "attribute": "lives_in", "value": "Lisbon"}); otherwise null.
- event_time: ISO-8601 time when the memory happened or holds, if the chat says; otherwise null.
- Known memories (if listed) are what is already stored, each with a ref such as "k1". For every memory \
you propose, say what it does to them: action "ADD" (new, unrelated to any known memory), "UPDATE" (the \
same fact with more or corrected detail; targets: the refs it refines), "SUPERSEDE" (a new value for \
what a known memory states, e.g. a new city, job, manager, date, weight, or a preference reversed or a \
plan dropped; targets: the refs it replaces) or "NOOP" (already known; targets: the ref that says it). \
explicit: true when the user said it is a change ("I moved", "not anymore", "switched"), false when they \
only stated the new value. Never supersede the user's facts with someone else's, and never act on \
questions, wishes or hypotheticals.
- If nothing is worth remembering, return {"memories": []}.
"""

_SNAKE = re.compile(r"[^0-9a-z]+")


class ExtractionFailed(ProviderResponseError):
    """The LLM extraction of a batch failed; ``reason`` says why, ``cause`` is the provider error.

    ``retryable`` is True for transient causes (timeout, rate limit, server error, bad answer), so a
    caller can record the failure on the episode and try again later.
    """

    def __init__(self, reason: str, *, cause: BaseException | None = None, retryable: bool = True) -> None:
        self.reason = reason
        self.cause = cause
        self.retryable = retryable
        super().__init__(f"llm extraction failed: {reason}")


def _clamp(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return default
    return min(1.0, max(0.0, float(value)))


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _snake(value: str) -> str:
    return _SNAKE.sub("_", value.lower()).strip("_")


def _subject(value: str) -> str:
    # Models write the speaker as "User", "the user", "I": all mean the canonical "user".
    return "user" if value.lower() in ("user", "the user", "i", "me", "speaker") else value


def _parse_time(value: Any, tz: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            return None
        parsed = datetime(d.year, d.month, d.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz or UTC)


class LLMExtractor:
    """Extracts memory candidates with one structured LLM call per ``extract`` call.

    ``client``: an :class:`~memstrata.providers.llm.LLMClient`. ``threshold``: candidates with lower
    importance are not returned. ``max_memories``: at most this many candidates per batch (the most
    important kept). ``instructions``: extra text appended to the system prompt (domain hints).
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        threshold: float = 0.0,
        max_memories: int = 50,
        instructions: str | None = None,
        roles: Sequence[str] = ("user", "assistant"),
    ) -> None:
        self.client = client
        self.threshold = threshold
        self.max_memories = max_memories
        self.roles = frozenset(roles)
        self.system_prompt = SYSTEM_PROMPT + (f"\nAdditional instructions:\n{instructions}\n" if instructions else "")
        self.last_usage: Usage | None = None
        self.last_dropped = 0  # proposals rejected by validation in the last call

    def __repr__(self) -> str:
        return f"LLMExtractor(client={self.client!r}, threshold={self.threshold})"

    # -- public API ----------------------------------------------------------------------------------

    def extract(self, messages: Sequence[Message], now: datetime | None = None,
                known: Sequence[tuple[str, str]] = ()) -> list[Candidate]:
        """Candidates for ``messages``; raises :class:`ExtractionFailed` when the provider call fails.

        ``known``: (id, text) of stored memories near these messages; the model says which of them each
        proposal adds to, updates, supersedes or repeats (one call for the whole batch)."""
        todo = self._todo(messages)
        if not todo:
            self.last_usage, self.last_dropped = Usage(), 0
            return []
        try:
            answer, self.last_usage = self.client.complete_json(
                self.system_prompt, self.render(todo, now, known), MEMORY_SCHEMA, name="record_memories"
            )
        except ProviderError as exc:
            self.last_usage = self.client.last_usage
            raise self._failure(exc) from exc
        return self.to_candidates(answer, todo, now, known)

    async def aextract(self, messages: Sequence[Message], now: datetime | None = None,
                       known: Sequence[tuple[str, str]] = ()) -> list[Candidate]:
        """Async twin of :meth:`extract`."""
        todo = self._todo(messages)
        if not todo:
            self.last_usage, self.last_dropped = Usage(), 0
            return []
        try:
            answer, self.last_usage = await self.client.acomplete_json(
                self.system_prompt, self.render(todo, now, known), MEMORY_SCHEMA, name="record_memories"
            )
        except ProviderError as exc:
            self.last_usage = self.client.last_usage
            raise self._failure(exc) from exc
        return self.to_candidates(answer, todo, now, known)

    # -- I/O-free helpers ----------------------------------------------------------------------------

    def _todo(self, messages: Sequence[Message]) -> list[Message]:
        return [m for m in messages if m.role in self.roles and m.content and m.content.strip()]

    @staticmethod
    def _failure(exc: ProviderError) -> ExtractionFailed:
        if isinstance(exc, ExtractionFailed):
            return exc
        # The client tags HTTP errors with their status; a 4xx other than 429 will fail the same way again.
        status = getattr(exc, "status", None)
        permanent = isinstance(status, int) and 400 <= status < 500 and status != 429
        return ExtractionFailed(str(exc), cause=exc, retryable=not permanent)

    @staticmethod
    def render(messages: Sequence[Message], now: datetime | None, known: Sequence[tuple[str, str]] = ()) -> str:
        """The user prompt: the reference time, the known memories as ``[k1] text``, then each message as
        ``[index] role (name, time): text``."""
        ref = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        lines = [f"Current time: {ref}", ""]
        if known:
            lines += ["Known memories:", *(f"[k{n}] {text}" for n, (_, text) in enumerate(known, start=1)), ""]
        lines.append("Messages:")
        for m in messages:
            extra = [x for x in (m.name, m.timestamp.isoformat(timespec="seconds") if m.timestamp else None) if x]
            who = f"{m.role} ({', '.join(extra)})" if extra else m.role
            lines.append(f"[{m.index}] {who}: {m.content}")
        return "\n".join(lines)

    def to_candidates(
        self, answer: dict[str, Any], messages: Sequence[Message], now: datetime | None,
        known: Sequence[tuple[str, str]] = (),
    ) -> list[Candidate]:
        """Validate and normalise the model's proposals; ones citing messages not in the batch are dropped,
        and so are refs to memories it was not shown."""
        valid = {m.index for m in messages}
        refs = {f"k{n}": mid for n, (mid, _) in enumerate(known, start=1)}
        tz = now.tzinfo if now is not None else None
        out: list[Candidate] = []
        dropped = 0
        for item in answer.get("memories", []):
            cand = self._candidate(item, valid, tz, refs) if isinstance(item, dict) else None
            if cand is None:
                dropped += 1
            elif cand.importance >= self.threshold:
                out.append(cand)
        if len(out) > self.max_memories:
            keep = set(map(id, sorted(out, key=lambda c: -c.importance)[: self.max_memories]))
            dropped += len(out) - self.max_memories
            out = [c for c in out if id(c) in keep]
        self.last_dropped = dropped
        return out

    def _candidate(self, item: dict[str, Any], valid: set[int], tz: Any,
                   refs: dict[str, str] | None = None) -> Candidate | None:
        text = _text(item.get("text"))
        raw = item.get("source_indexes")
        if not text or not isinstance(raw, list) or not raw:
            return None
        sources: list[int] = []
        for i in raw:
            # An index outside the batch means the model invented a source: distrust the whole item.
            if isinstance(i, bool) or not isinstance(i, int | float) or int(i) != i or int(i) not in valid:
                return None
            if int(i) not in sources:
                sources.append(int(i))
        kind = _text(item.get("kind")).lower()
        entities = []
        for e in item.get("entities") or []:
            if isinstance(e, dict) and _text(e.get("text")):
                label = _text(e.get("label")).upper()
                entities.append(
                    EntityMention(
                        text=_text(e.get("text")),
                        canonical=_text(e.get("canonical")) or _text(e.get("text")),
                        label=label if label in LABELS else "OTHER",
                    )
                )
        relations = []
        for r in item.get("relations") or []:
            if isinstance(r, dict):
                subj, rel, obj = _text(r.get("subject")), _snake(_text(r.get("relation"))), _text(r.get("object"))
                if subj and rel and obj:
                    relations.append(Relation(_subject(subj), rel, _subject(obj)))
        slot = None
        s = item.get("slot")
        if isinstance(s, dict):
            subj, attr, value = _text(s.get("subject")), _snake(_text(s.get("attribute"))), _text(s.get("value"))
            if subj and attr and value:
                slot = Slot(_subject(subj), attr, value)
        reasons = [_snake(r) for r in item.get("reasons") or [] if isinstance(r, str) and _snake(r)]
        action, targets = _action(item, refs or {})
        explicit = item.get("explicit")
        return Candidate(
            text=text,
            importance=_clamp(item.get("importance"), 0.5),
            reasons=list(dict.fromkeys(reasons)),
            kind=kind if kind in KINDS else "fact",
            source_indexes=sources,
            entities=entities,
            relations=relations,
            slot=slot,
            event_time=_parse_time(item.get("event_time"), tz),
            confidence=_clamp(item.get("confidence"), 0.8),
            confidence_reason=f"llm extraction ({self.client.model})",
            action=action,
            targets=targets,
            explicit=explicit if isinstance(explicit, bool) else None,
        )


def _action(item: dict[str, Any], refs: dict[str, str]) -> tuple[str, list[str]]:
    """The model's decision with its refs mapped to memory ids; a change or repeat that names no memory it
    was shown is an ADD."""
    action = _text(item.get("action")).upper() or "ADD"
    if action not in ACTIONS:
        action = "ADD"
    raw = item.get("targets") or []
    targets = [refs[r] for r in (raw if isinstance(raw, list) else []) if isinstance(r, str) and r in refs]
    if action != "ADD" and not targets:
        return "ADD", []
    return action, list(dict.fromkeys(targets))
