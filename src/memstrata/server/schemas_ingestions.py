"""Response shapes of queued adds (``POST /v1/memories`` with ``wait: false``) and ``/v1/ingestions``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from memstrata.server.schemas import ScopeBody, _Out

IngestionStatus = Literal["pending", "running", "failed", "done", "dead"]


class MessageOutcome(_Out):
    index: int
    episode_id: str | None = None
    outcome: str = Field(description="kept, merged, superseded, archived or ignored")
    reason: str
    memory_ids: list[str] = []


class IngestionOut(_Out):
    ingestion_id: str
    status: IngestionStatus = Field(
        description="pending (queued), running (a worker holds it), failed (to be retried at next_attempt_at),"
                    " done, or dead (out of attempts: requeue it)")
    episodes: list[str] = Field(description="ids of the stored messages")
    attempts: int
    created_at: str
    updated_at: str
    idempotency_key: str | None = None
    error: str | None = Field(None, description="the last attempt's failure")
    next_attempt_at: str | None = None
    messages: list[MessageOutcome] | None = Field(None, description="per message, once done")
    memory_ids: list[str] | None = None
    duplicate: bool | None = Field(None, description="true when the idempotency key named an earlier add")
    warnings: list[str] | None = None


class IngestionList(_Out):
    results: list[IngestionOut]


class RequeueRequest(ScopeBody):
    pass
