"""Request bodies and documented response shapes of the REST API.

Request models are strict (no silent "10" → 10) and forbid unknown fields, so a typo is a 422 that names it.
They check types only: the rules (lengths, id syntax, ranges) live in ``Memory`` and come back as problems
naming the field, so the server can never disagree with the library. Response models document the shapes;
routes return the library's dicts directly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Epoch seconds a datetime can hold (years 1 to 9999): beyond them the number cannot be a time at all.
_EPOCH = {"ge": -62_135_596_800, "le": 253_402_300_799}
Time = str | Annotated[int, Field(**_EPOCH)] | Annotated[float, Field(**_EPOCH)]
Role = Literal["user", "assistant", "system", "tool"]
Preset = Literal["fast", "balanced", "thorough"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScopeBody(_Body):
    user_id: str | None = Field(None, description="user of the scope; defaults to the key's single bound user")
    agent_id: str | None = Field(None, description="agent of the scope")
    run_id: str | None = Field(None, description="run (session) of the scope")
    org_id: str | None = Field(None, description="organisation; defaults to the key's org")


class MessageIn(_Body):
    role: Role = "user"
    content: str
    name: str | None = None
    timestamp: Time | None = Field(None, description="when it was said: ISO 8601 or epoch seconds")


class AddRequest(ScopeBody):
    messages: str | list[MessageIn] = Field(description="a text, or a list of chat messages")
    conversation_id: str | None = None
    timestamp: Time | None = Field(None, description="when the messages were said (default: now)")
    metadata: dict[str, Any] | None = None
    infer: bool = Field(True, description="extract facts (true) or store the text verbatim (false)")
    wait: bool = Field(True, description="false: store the messages and answer 202 with an ingestion_id at once;"
                                         " `memstrata worker` processes them (GET /v1/ingestions/{id})")
    idempotency_key: str | None = Field(None, description="with wait false: a retried request with the same key"
                                                          " stores nothing twice and answers the first ingestion")


class SearchRequest(ScopeBody):
    query: str
    limit: int = 10
    filters: dict[str, Any] | None = Field(None, description="metadata/column filters, e.g. {'kind': 'plan'}")
    now: Time | None = Field(None, description="reference time for 'last week' etc.")
    as_of: Time | None = Field(None, description="what was believed at this moment")
    conversation_id: str | None = None
    preset: Preset | None = None
    explain: bool = Field(False, description="include each stage's score")
    include_superseded: bool = False


class ContextRequest(ScopeBody):
    query: str
    conversation_id: str | None = None
    token_budget: int = 2000
    now: Time | None = None
    preset: Preset | None = None
    limit: int = 50
    recent_turns: int = 6


class UpdateRequest(_Body):
    text: str | None = None
    metadata: dict[str, Any] | None = None


class ResolveRequest(ScopeBody):
    keep: Literal["new", "old", "both"] = "new"


# -- responses (documentation) --------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(_Out):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    request_id: str | None = None


class Source(_Out):
    role: str | None = None
    episode_ids: list[str] = []


class MemoryItem(_Out):
    id: str
    memory: str
    metadata: dict[str, Any] = {}
    created_at: str | None = None
    updated_at: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    org_id: str | None = None
    confidence: float | None = None
    source: Source | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    superseded_by: str | None = None
    entities: list[str] = []
    score: float | None = Field(None, description="search only")
    revised_by: str | None = Field(
        None, description="search only: a later statement of the user's that answers the query otherwise, "
        "ranked just above this one")


class AddEvent(_Out):
    id: str
    memory: str
    event: str


class ScopeOut(_Out):
    org_id: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    episodes: int
    memories: int
    last_active_at: str | None = Field(None, description="the newest write in the scope (ISO 8601)")


class ScopeList(_Out):
    results: list[ScopeOut]


class AddResponse(_Out):
    results: list[AddEvent]
    episodes: list[str]
    warnings: list[str] | None = Field(
        None, description="steps that were skipped although the add succeeded (e.g. the short-term cache is down)"
    )


class SearchResponse(_Out):
    results: list[MemoryItem]


class MemoryPage(_Out):
    results: list[MemoryItem]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null at the end")


class ContextItem(_Out):
    id: str
    memory: str
    score: float
    tokens: int
    excerpt: str | None = Field(None, description="what the text shows of a long memory cut to fit the budget: its "
                                "opening and the sentences about the query; null when the memory is shown whole")


class StandingItem(_Out):
    id: str
    memory: str
    kind: str = Field(description="instruction or preference")
    score: float = Field(description="cosine similarity to the query")
    tokens: int


class ContextResponse(_Out):
    text: str
    items: list[ContextItem]
    tokens: int
    token_budget: int
    standing: list[StandingItem] = Field(
        default_factory=list,
        description="standing instructions and preferences shown in their reserved part of the budget",
    )


class ChangeResponse(_Out):
    id: str
    memory: str | None = None
    event: str


class DeleteAllResponse(_Out):
    message: str
    deleted: dict[str, int]


class HistoryItem(_Out):
    id: str
    memory_id: str
    event: str
    old_memory: str | None = None
    new_memory: str | None = None
    actor: str
    reason: str
    created_at: str | None = None


class Episode(_Out):
    id: str
    role: str
    content: str
    occurred_at: str | None = None
    conversation_id: str | None = None
    score: float | None = None


class EpisodeList(_Out):
    results: list[Episode]


class Conflict(_Out):
    id: str
    new_memory_id: str
    old_memory_id: str
    subject: str
    attribute: str
    old_value: str
    new_value: str
    status: str


class ConflictList(_Out):
    results: list[Conflict]


class Entity(_Out):
    id: str
    name: str
    label: str
    aliases: list[str] = []
    mention_count: int = 1


class EntityList(_Out):
    results: list[Entity]


class Neighbour(Entity):
    relation: str
    hops: int


class Neighbourhood(_Out):
    entity: Entity
    neighbours: list[Neighbour]
    memories: list[str]


class PrincipalOut(_Out):
    key_id: str | None
    name: str
    org_id: str | None
    scopes: list[str]
    user_ids: list[str] | None
    agent_ids: list[str] | None


class Status(_Out):
    status: str
