"""How a working state reads in a prompt: short lines, most useful first, so a tight budget keeps the top."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memstrata.tiers.base import WorkingState, WorkItem

HEADER = "## Working state\n"


def _item_line(item: WorkItem) -> str:
    flags = " (pinned)" if item.pinned else ""
    change = f" — changed: {item.revisions[-1]}" if item.revisions else ""
    return f"- {item.kind}{flags}: {item.text}{change}\n"


def context_lines(state: WorkingState, closed: int = 3) -> list[str]:
    """Open goals, open tasks, constraints, topic, entities, then the latest closed items."""
    lines = [_item_line(i) for i in state.goals if i.status == "open"]
    lines += [_item_line(i) for i in state.tasks if i.status == "open"]
    lines += [f"- constraint: {c.text}\n" for c in state.constraints]
    if state.topic:
        lines.append(f"- topic: {state.topic}\n")
    if state.entities:
        lines.append(f"- in focus: {', '.join(state.entities[:8])}\n")
    finished = sorted((i for i in state.items() if i.status != "open"), key=lambda i: i.updated_at, reverse=True)
    lines += [f"- {i.status}: {i.kind} {i.text}\n" for i in finished[:closed]]
    return lines


def edit_summary(edit: dict[str, Any], state: WorkingState | None = None) -> str:
    """The text an API edit is recorded under in the conversation's episodes."""
    op = edit["op"]
    named = next((i for i in state.items() if i.id == edit.get("item_id")), None) if state else None
    if op == "add_item":
        return f"[working memory] {'pinned ' if edit['pinned'] else ''}{edit['kind']}: {edit['text']}"
    if op == "update_item":
        parts = [f"{k}={edit[k]}" for k in ("status", "text", "pinned") if edit.get(k) is not None]
        what = f"{named.kind} {named.text!r}" if named is not None else f"item {edit['item_id']}"
        return f"[working memory] {what}: {', '.join(parts)}"
    if op == "set_topic":
        return f"[working memory] topic: {edit['topic'] or '(cleared)'}"
    if op == "add_constraint":
        return f"[working memory] constraint: {edit['text']}"
    return f"[working memory] constraint {edit['constraint_id']} removed"


def context_section(state: WorkingState, budget: int, count: Callable[[str], int]) -> tuple[str, int]:
    """The working-state block of ``Memory.context`` and its tokens: whole lines, in order, within budget."""
    lines = context_lines(state)
    if not lines:
        return "", 0
    used = count(HEADER)
    kept = []
    for line in lines:
        n = count(line)
        if used + n > budget:
            break
        kept.append(line)
        used += n
    if not kept:
        return "", 0
    return HEADER + "".join(kept) + "\n", used
