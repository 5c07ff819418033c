"""The queue panel: a scope's queued adds (dead letters first by default), each with its status, attempts and
last error, and a requeue button for a dead or failed one when the key may write."""

from __future__ import annotations

from typing import Any

from memstrata.ui.render import e, empty


def ingestion_table(items: list[dict[str, Any]], can_write: bool, status: str) -> str:
    if not items:
        return empty("No dead letters." if status == "dead" else "No queued adds.")
    rows = []
    for it in items:
        action = ""
        if can_write and it.get("status") in ("dead", "failed"):
            action = (f'<button type="button" class="requeue" data-ingestion-id="{e(it["ingestion_id"])}">'
                      "requeue</button>")
        outcomes = ", ".join(str(m.get("outcome")) for m in it.get("messages") or [])
        rows.append(
            f'<tr class="ingestion {e(it.get("status"))}"><td><code>{e(it.get("ingestion_id"))}</code></td>'
            f"<td>{e(it.get('status'))}</td><td>{e(len(it.get('episodes') or []))}</td><td>{e(it.get('attempts'))}</td>"
            f"<td>{e(it.get('error') or outcomes)}</td><td>{e((it.get('updated_at') or '')[:19])}</td>"
            f"<td>{action}</td></tr>"
        )
    return (
        '<table class="ingestions"><thead><tr><th>ingestion</th><th>status</th><th>messages</th><th>attempts</th>'
        f"<th>last error / outcomes</th><th>updated</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
