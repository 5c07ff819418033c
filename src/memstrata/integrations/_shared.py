"""What the agent-framework integrations share: scope arguments and reading a
conversation back from the episodic tier in order. Public API only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TypedDict

from memstrata.errors import InvalidInputError
from memstrata.inputs import check_message
from memstrata.memory import MAX_LIMIT, Memory
from memstrata.models import Scope


class ScopeArgs(TypedDict):
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    org_id: str | None


def scope_args(
    *, user_id: str | None, agent_id: str | None = None, run_id: str | None = None, org_id: str | None = None
) -> ScopeArgs:
    """Validated scope keyword arguments, fixed when an integration object is built (fails early on bad ids)."""
    Scope.of(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)
    return ScopeArgs(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)


def conversation(memory: Memory, scope: ScopeArgs, conversation_id: str) -> Iterator[dict[str, Any]]:
    """Every episode of one conversation, oldest first, a page at a time (episodes share no cursor, so pages
    restart at the last time seen and skip what they already returned)."""
    seen: set[str] = set()
    start: Any = None
    while True:
        page = memory.episodes(**scope, conversation_id=conversation_id, start=start, limit=MAX_LIMIT)["results"]
        fresh = [e for e in page if e["id"] not in seen]
        yield from fresh
        seen.update(e["id"] for e in fresh)
        if len(page) < MAX_LIMIT:
            return
        last = page[-1]["occurred_at"]
        if fresh:
            start = last
        else:  # a full page of one instant: step past it
            start = datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(microseconds=1)


def check_each(entries: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Validate every (message, metadata) pair with the checks ``Memory.add`` applies, before the first is
    written: integrations that store one message per ``add`` (each with its own metadata) then write all
    or none."""
    for i, (message, metadata) in enumerate(entries):
        try:
            check_message(message, metadata)
        except InvalidInputError as exc:
            raise InvalidInputError(f"items[{i}].{exc.field}", exc.problem) from None


def first_text(value: Any) -> str:
    """The text of a message content that may be a string or a list of typed parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [p.get("text") or "" for p in value if isinstance(p, dict)]
        return "\n".join(p for p in parts if p)
    return ""
