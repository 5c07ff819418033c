"""What an extractor proposes to remember, before dedup, conflicts and storage decide its fate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Message:
    """One incoming chat message, already validated."""

    role: str  # "user", "assistant", "system", "tool"
    content: str
    index: int  # position in the add() call
    name: str | None = None  # speaker name when the caller gives one
    timestamp: datetime | None = None


@dataclass(frozen=True)
class EntityMention:
    """A named thing in a text: ``label`` is PERSON, PLACE, ORG, PROJECT, PRODUCT, DATE, EVENT or OTHER."""

    text: str  # as written, e.g. "my sister Anna"
    canonical: str  # normalised name used to resolve nodes, e.g. "Anna"
    label: str


@dataclass(frozen=True)
class Relation:
    """A (subject, relation, object) edge, each end a canonical entity name ("user" is the speaker)."""

    subject: str
    relation: str  # snake_case verb phrase: "works_on", "sister_of", "lives_in"
    object: str


@dataclass(frozen=True)
class Slot:
    """The (subject, attribute) a fact assigns a value to; two facts with one slot and different values conflict."""

    subject: str  # "user", or a canonical entity name ("Anna", "meeting")
    attribute: str  # "lives_in", "job", "favorite_food", "meeting_day", ...
    value: str  # normalised value, compared case-insensitively


@dataclass
class Candidate:
    """A memory the extractor proposes.

    ``importance`` is in [0, 1]; ``reasons`` says why (e.g. "explicit_cue", "preference", "plan",
    "schedule_change", "relationship", "new_entity", "number", "date", "first_person_fact").
    ``source_indexes`` are the positions of the messages it came from in the add() call.
    """

    text: str
    importance: float
    reasons: list[str] = field(default_factory=list)
    kind: str = "fact"  # fact | preference | plan | event | relationship | instruction
    source_indexes: list[int] = field(default_factory=list)
    entities: list[EntityMention] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    slot: Slot | None = None
    event_time: datetime | None = None  # when the fact happened/holds, if the text says
    confidence: float = 0.8
    confidence_reason: str = "rules extraction"
    # What the extractor decided against stored memories (the llm mode does; rules leave it to the store):
    # "ADD", "UPDATE" (refines a stored fact), "SUPERSEDE" (a new value replaces it) or "NOOP" (already known).
    action: str | None = None
    targets: list[str] = field(default_factory=list)  # ids of the stored memories the action refers to
    explicit: bool | None = None  # the user said it is a change ("I moved", "not anymore")
