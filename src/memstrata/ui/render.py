"""HTML fragments for the browser UI. Every value passes through ``e`` (html.escape): nothing is trusted."""

from __future__ import annotations

import html
import math
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
    if item.get("revised_by"):  # search only: a later statement answers the query otherwise
        return (f'<span class="badge old" title="a later statement, ranked above, says otherwise">said earlier'
                f"</span> since {start}")
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
    """An entity drawn as a graph with its neighbours, then the same as lists, and the memories about it."""
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
        f"{graph_svg(ent, data.get('neighbours') or [])}"
        f"<p>aliases: {e(aliases) or '—'}</p><h4>Connected to</h4><ul>{neigh}</ul>"
        f"<h4>Memories</h4><ul>{mems}</ul>"
    )


GRAPH_W, GRAPH_H, MAX_NODES = 600, 400, 24


def _label(text: Any, limit: int = 16) -> str:
    value = "" if text is None else str(text)
    return e(value if len(value) <= limit else value[: limit - 1] + "…")


def graph_svg(center: dict[str, Any], neighbours: list[dict[str, Any]]) -> str:
    """The entity in the middle and its neighbours around it, each edge labelled with its relation (neighbours
    further away sit on an outer ring, dashed). Plain SVG, no script: a neighbour opens its own graph."""
    cx, cy = GRAPH_W / 2, GRAPH_H / 2
    shown = neighbours[:MAX_NODES]
    edges, nodes = [], []
    for i, n in enumerate(shown):
        far = int(n.get("hops") or 1) > 1
        angle = 2 * math.pi * i / len(shown) - math.pi / 2
        rx, ry = (245, 160) if far else (190, 130)
        x, y = cx + rx * math.cos(angle), cy + ry * math.sin(angle)
        lx, ly = cx + (x - cx) * 0.55, cy + (y - cy) * 0.55
        dash = ' stroke-dasharray="4 3"' if far else ""
        edges.append(
            f'<g class="edge"><line x1="{cx:.0f}" y1="{cy:.0f}" x2="{x:.0f}" y2="{y:.0f}"{dash}/>'
            f'<text x="{lx:.0f}" y="{ly + 3:.0f}">{_label(n.get("relation"), 18)}</text></g>'
        )
        nodes.append(
            f'<g class="node{" far" if far else ""}" data-entity="{e(n.get("id"))}" tabindex="0" role="button">'
            f'<title>{e(n.get("name"))} ({e(n.get("label"))}, {e(n.get("hops"))} hop(s))</title>'
            f'<circle cx="{x:.0f}" cy="{y:.0f}" r="16"/>'
            f'<text x="{x:.0f}" y="{y + 30:.0f}">{_label(n.get("name"))}</text></g>'
        )
    nodes.append(
        f'<g class="node center"><title>{e(center.get("name"))}</title>'
        f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="24"/>'
        f'<text x="{cx:.0f}" y="{cy + 40:.0f}">{_label(center.get("name"))}</text></g>'
    )
    more = len(neighbours) - len(shown)
    note = f'<text class="note" x="8" y="{GRAPH_H - 8}">and {more} more</text>' if more > 0 else ""
    if not shown:
        note = f'<text class="note" x="8" y="{GRAPH_H - 8}">no connections yet</text>'
    return (
        f'<svg class="graph" viewBox="0 0 {GRAPH_W} {GRAPH_H}" role="img" '
        f'aria-label="graph around {e(center.get("name"))}">{"".join(edges)}{"".join(nodes)}{note}</svg>'
    )


def _scope_label(scope: Any) -> str:
    if not isinstance(scope, dict):
        return e(scope)
    return " · ".join(f"{k.removesuffix('_id')} {e(v)}" for k, v in scope.items() if v and k != "org_id") or "—"


def audit_table(entries: Any) -> str:
    """Audit entries: when, who, what, on which scope and which memories (ids open the memory)."""
    if isinstance(entries, dict):
        entries = entries.get("results") or entries.get("entries") or []
    if not entries:
        return empty("No audit entries.")
    rows = []
    for row in entries:
        ids = "".join(
            f'<code class="id memory" data-memory-id="{e(mid)}" tabindex="0">{e(mid)}</code> '
            for mid in row.get("memory_ids") or []
        ) or "—"
        rows.append(
            f"<tr><td class=\"num\">{e(row.get('seq'))}</td><td>{_day(row.get('at'))}</td>"
            f"<td><code>{e(row.get('actor'))}</code></td><td>{e(row.get('operation'))}</td>"
            f"<td>{_scope_label(row.get('scope'))}</td><td>{ids}</td></tr>"
        )
    return (
        '<table class="audit"><thead><tr><th>#</th><th>when</th><th>actor</th><th>operation</th><th>scope</th>'
        f"<th>memories</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
