"""Request bodies and response shapes of ``/v1/conversations/{id}/working`` (a conversation's working state)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from memstrata.server.schemas import ScopeBody, Time, _Out

ItemKind = Literal["goal", "task"]
ItemStatus = Literal["open", "done", "dropped"]


class EditBody(ScopeBody):
    timestamp: Time | None = Field(
        None, description="when, in the conversation's time (default: its latest message); edits append"
    )


class AddItemRequest(EditBody):
    kind: ItemKind
    text: str
    pinned: bool = Field(True, description="a pinned item changes only through the API, never by inference")


class UpdateItemRequest(EditBody):
    status: ItemStatus | None = None
    text: str | None = Field(None, description="new wording; the old one stays in revisions")
    pinned: bool | None = None


class TopicRequest(EditBody):
    topic: str | None = Field(description="pins the topic; null unpins it and lets the conversation set it")


class ConstraintRequest(EditBody):
    text: str


class WorkItemOut(_Out):
    id: str
    kind: ItemKind
    text: str
    status: ItemStatus
    by: str = Field(description="user, assistant, or agent (set through the API)")
    opened_at: float = Field(description="epoch seconds, the conversation's time")
    updated_at: float
    episode_id: str | None = None
    pinned: bool = False
    parent_id: str | None = Field(None, description="the item an assistant commitment answers")
    revisions: list[str] = Field([], description="later changes, as said or set")


class ConstraintOut(_Out):
    id: str
    text: str
    at: float
    episode_id: str | None = None


class WorkingStateOut(_Out):
    goals: list[WorkItemOut]
    tasks: list[WorkItemOut]
    entities: list[str] = Field(description="entities in focus, latest mention first")
    topic: str | None = None
    topic_pinned: bool = False
    constraints: list[ConstraintOut]
    updated_at: float = Field(description="the conversation's time of the latest message or edit folded in")
    messages: int = Field(description="messages folded in")
