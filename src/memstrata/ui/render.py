"""HTML fragments for the browser UI. Every value passes through ``e`` (html.escape): nothing is trusted."""

from __future__ import annotations

import html
from typing import Any


def e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _day(ts: str | None) -> str:
    return e(ts[:16].replace("T", " ")) if ts else ""


def _validity(item: dict[str, Any]) -> str:
    start, end = _day(item.get("valid_from")), _day(item.get("valid_to"))
    if item.get("superseded_by"):
        return f'<span class="badge old">superseded</span> {start} → {end}'
    if end:
        return f'<span class="badge old">ended</span> {start} → {end}'
    return f'<span class="badge now">current</span> since {start}'


def _confidence(value: Any) -> str:
    try:
        pct = round(float(value) * 100)
    except (TypeError, ValueError):
        return ""
    return f'<meter min="0" max="100" value="{pct}" title="{pct}%"></meter> {pct}%'


def empty(text: str) -> str:
    return f'<p class="empty">{e(text)}</p>'


def memory_table(items: list[dict[str, Any]], next_cursor: str | None = None, *, scored: bool = False) -> str:
    """Memories as rows; a row opens the memory's detail, ``next_cursor`` adds a 'more' button."""
    if not items:
        return empty("No memories here.")
    head = "<th>score</th>" if scored else ""
    rows = []
    for it in items:
        source = it.get("source") or {}
        score = f'<td class="num">{float(it.get("score") or 0):.3f}</td>' if scored else ""
        rows.append(
            f'<tr class="memory" data-memory-id="{e(it.get("id"))}" tabindex="0">{score}'
            f'<td class="text">{e(it.get("memory"))}</td>'
            f"<td>{_validity(it)}</td>"
            f"<td>{_confidence(it.get('confidence'))}</td>"
            f'<td>{e(source.get("role") or "")} · {len(source.get("episode_ids") or [])} ep.</td>'
            f"<td>{_day(it.get('created_at'))}</td></tr>"
        )
    more = (
        f'<button type="button" class="more" data-cursor="{e(next_cursor)}">More</button>' if next_cursor else ""
    )
    return (
        f'<table class="memories"><thead><tr>{head}<th>memory</th><th>validity</th><th>confidence</th>'
        f"<th>source</th><th>created</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
    )


def memory_detail(item: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """One memory with its fields and every event of its history."""
    fields = [
        ("id", e(item.get("id"))),
        ("validity", _validity(item)),
        ("confidence", f"{_confidence(item.get('confidence'))} {e(item.get('confidence_reason'))}"),
        ("kind", e(item.get("kind"))),
        ("importance", e(item.get("importance"))),
        ("entities", e(", ".join(item.get("entities") or []))),
        ("source episodes", e(", ".join((item.get("source") or {}).get("episode_ids") or []))),
        ("mentions", e(item.get("mention_count"))),
        ("metadata", f"<code>{e(item.get('metadata'))}</code>"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in fields)
    events = "".join(
        f"<tr><td>{_day(h.get('created_at'))}</td><td>{e(h.get('event'))}</td>"
        f"<td>{e(h.get('old_memory'))}</td><td>{e(h.get('new_memory'))}</td>"
        f"<td>{e(h.get('actor'))}: {e(h.get('reason'))}</td></tr>"
        for h in history
    )
    return (
        f'<h3>{e(item.get("memory"))}</h3><dl>{dl}</dl><h4>History</h4>'
        f'<table class="history"><thead><tr><th>when</th><th>event</th><th>before</th><th>after</th>'
        f"<th>by / why</th></tr></thead><tbody>{events}</tbody></table>"
    )


def conflict_table(items: list[dict[str, Any]], can_write: bool) -> str:
    """Conflicts with old and new value; open ones get resolve buttons when the key may write."""
    if not items:
        return empty("No conflicts.")
    rows = []
    for c in items:
        actions = ""
        if c.get("status") == "open" and can_write:
            actions = "".join(
                f'<button type="button" class="resolve" data-conflict-id="{e(c.get("id"))}" data-keep="{k}">'
                f"keep {k}</button>"
                for k in ("new", "old", "both")
            )
        rows.append(
            f"<tr><td>{e(c.get('subject'))} · {e(c.get('attribute'))}</td>"
            f'<td class="old">{e(c.get("old_value"))}</td><td class="new">{e(c.get("new_value"))}</td>'
            f"<td>{e(c.get('status'))} {e(c.get('resolution') or '')}</td>"
            f"<td>{_day(c.get('created_at'))}</td><td>{actions}</td></tr>"
        )
    return (
        '<table class="conflicts"><thead><tr><th>subject · attribute</th><th>old</th><th>new</th><th>status</th>'
        f"<th>raised</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def entity_list(items: list[dict[str, Any]]) -> str:
    if not items:
        return empty("No entities yet.")
    links = "".join(
        f'<li><button type="button" class="entity" data-entity="{e(x.get("id"))}">{e(x.get("name"))}</button>'
        f' <small>{e(x.get("label"))} · {e(x.get("mention_count"))}×</small></li>'
        for x in items
    )
    return f'<ul class="entities">{links}</ul>'


def neighbourhood(data: dict[str, Any], texts: dict[str, str]) -> str:
    """An entity, its neighbours by relation and hop count, and the memories about it."""
    ent = data.get("entity") or {}
    neigh = "".join(
        f'<li>{e(n.get("relation"))} → <button type="button" class="entity" data-entity="{e(n.get("id"))}">'
        f'{e(n.get("name"))}</button> <small>{e(n.get("hops"))} hop(s)</small></li>'
        for n in data.get("neighbours") or []
    ) or "<li>no connections</li>"
    mems = "".join(
        f'<li class="memory" data-memory-id="{e(mid)}" tabindex="0">{e(texts.get(mid, mid))}</li>'
        for mid in data.get("memories") or []
    ) or "<li>none</li>"
    aliases = ", ".join(ent.get("aliases") or [])
    return (
        f'<h3>{e(ent.get("name"))} <small>{e(ent.get("label"))}</small></h3>'
        f"<p>aliases: {e(aliases) or '—'}</p><h4>Connected to</h4><ul>{neigh}</ul>"
        f"<h4>Memories</h4><ul>{mems}</ul>"
    )


def audit_table(entries: Any) -> str:
    """Audit entries as a table of whatever fields the audit module returns."""
    if isinstance(entries, dict):
        entries = entries.get("results") or entries.get("entries") or []
    if not entries:
        return empty("No audit entries.")
    cols = [c for c in ("seq", "at", "actor", "operation", "scope_key", "memory_ids") if c in entries[0]] or list(
        entries[0]
    )
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{e(row.get(c))}</td>" for c in cols) + "</tr>" for row in entries)
    return f'<table class="audit"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
