"""HTML fragments of the conversation view: its messages and its working state. Everything is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memstrata.ui.render import e, empty


def _when(ts: Any) -> str:
    try:
        return e(datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M"))
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _item(item: dict[str, Any], can_write: bool) -> str:
    status = e(item.get("status"))
    badges = f'<span class="badge {status}">{status}</span>'
    if item.get("pinned"):
        badges += ' <span class="badge pinned">pinned</span>'
    if item.get("revisions"):
        badges += f' <span class="badge changed" title="{e(item["revisions"][-1])}">changed</span>'
    actions = ""
    if can_write:
        iid = e(item.get("id"))
        choices = ("done", "dropped") if item.get("status") == "open" else ("open",)
        actions = "".join(
            f'<button type="button" class="work-status" data-item-id="{iid}" data-status="{s}">'
            f'{"reopen" if s == "open" else "drop" if s == "dropped" else s}</button>'
            for s in choices
        )
    return (
        f'<li class="work-item {status}">{badges} {e(item.get("text"))} '
        f'<small>by {e(item.get("by"))} · {_when(item.get("opened_at"))}</small> {actions}</li>'
    )


def working_panel(state: dict[str, Any], can_write: bool) -> str:
    """Goals, tasks, topic, constraints and entities in focus, with close/reopen buttons for a writer."""
    def items(kind: str) -> str:
        rows = [_item(i, can_write) for i in state.get(kind) or []]
        return f'<ul class="work">{"".join(rows)}</ul>' if rows else '<p class="empty">none</p>'

    topic = e(state.get("topic")) or "—"
    if state.get("topic_pinned"):
        topic += ' <span class="badge pinned">pinned</span>'
    constraints = "".join(f"<li>{e(c.get('text'))}</li>" for c in state.get("constraints") or []) or "<li>none</li>"
    entities = ", ".join(e(x) for x in state.get("entities") or []) or "—"
    pin = ""
    if can_write:
        pin = (
            '<form id="pin-form"><select id="pin-kind"><option value="goal">goal</option>'
            '<option value="task">task</option></select> <input id="pin-text" placeholder="pin a goal or task" '
            'size="28"> <button type="submit">Pin</button></form>'
        )
    return (
        f'<div class="working" data-updated="{e(state.get("updated_at"))}"><h3>Working state</h3>'
        f"<p><b>Topic:</b> {topic}</p><h4>Goals</h4>{items('goals')}<h4>Tasks</h4>{items('tasks')}"
        f"<h4>Constraints</h4><ul>{constraints}</ul><p><b>In focus:</b> {entities}</p>"
        f"<p><small>as of {_when(state.get('updated_at'))} (conversation time) · "
        f"{e(state.get('messages'))} messages</small></p>{pin}</div>"
    )


def messages(episodes: list[dict[str, Any]]) -> str:
    """A conversation's messages, oldest first; recorded working-memory edits are shown as such."""
    if not episodes:
        return empty("No messages in this conversation.")
    rows = "".join(
        f'<li class="msg {e(x.get("role"))}"><small>{e((x.get("occurred_at") or "")[:16].replace("T", " "))}'
        f"</small> <b>{e(x.get('role'))}</b>: {e(x.get('content'))}</li>"
        for x in episodes
    )
    return f'<ol class="messages">{rows}</ol>'
