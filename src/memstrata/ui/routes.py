"""``/ui``: one page plus HTML fragments rendered on the server. The page's script fetches fragments with the API
key in a header, so the UI obeys exactly the rules of the REST API (same dependency, same SecuredMemory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from memstrata.server.auth import Secured
from memstrata.server.routes_memories import ScopeIds
from memstrata.ui import render

STATIC = Path(__file__).parent / "static"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/ui", include_in_schema=False)


def _html(body: str) -> HTMLResponse:
    return HTMLResponse(body, headers=_SECURITY_HEADERS)


@router.get("")
def page(request: Request) -> HTMLResponse:
    """The shell: no data in it, so it needs no key; the key is asked for when the server wants one."""
    auth = "1" if request.app.state.memstrata.auth.enabled else "0"
    text = (STATIC / "index.html").read_text(encoding="utf-8").replace("{{AUTH}}", auth)
    return _html(text)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in ("app.js", "app.css"):
        from memstrata.server.errors import ProblemError

        raise ProblemError(404, f"no static file {name!r}", slug="not-found")
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/fragments/memories")
def memories(
    mem: Secured,
    ids: ScopeIds,
    q: Annotated[str | None, Query()] = None,
    cursor: str | None = None,
    include_superseded: bool = False,
) -> HTMLResponse:
    if q and q.strip():
        found = mem.search(q, limit=25, include_superseded=include_superseded, **ids)
        return _html(render.memory_table(found["results"], scored=True))
    page_ = mem.get_all(limit=50, cursor=cursor, include_superseded=include_superseded, **ids)
    return _html(render.memory_table(page_["results"], page_["next_cursor"]))


@router.get("/fragments/memory/{memory_id}")
def memory(memory_id: str, mem: Secured, ids: ScopeIds) -> HTMLResponse:
    return _html(render.memory_detail(mem.get(memory_id, **ids), mem.history(memory_id, **ids)))


@router.get("/fragments/conflicts")
def conflicts(mem: Secured, ids: ScopeIds, status: str = "open") -> HTMLResponse:
    items = mem.conflicts(status=None if status == "all" else status, **ids)["results"]
    return _html(render.conflict_table(items, mem.principal.allows("write")))


@router.get("/fragments/entities")
def entities(mem: Secured, ids: ScopeIds) -> HTMLResponse:
    return _html(render.entity_list(mem.entities(limit=200, **ids)["results"]))


@router.get("/fragments/neighbourhood")
def neighbourhood(mem: Secured, ids: ScopeIds, entity: str, depth: int = 1) -> HTMLResponse:
    data = mem.neighbours(entity, depth=depth, **ids)
    texts = {}
    for mid in data.get("memories", [])[:50]:
        try:
            texts[mid] = mem.get(mid, **ids)["memory"]
        except KeyError:
            continue
    return _html(render.neighbourhood(data, texts))


@router.get("/fragments/audit")
def audit(mem: Secured, ids: ScopeIds) -> HTMLResponse:
    if not mem.supports("audit_log"):
        return _html(render.empty("The audit log is not available in this memstrata build."))
    user = ids.get("user_id")
    return _html(render.audit_table(mem.audit_log(org_id=ids.get("org_id"), user_id=user)))


@router.get("/fragments/conversation")
def conversation(mem: Secured, ids: ScopeIds, conversation_id: str) -> HTMLResponse:
    """A conversation's messages beside its working state."""
    from memstrata.ui import render_working

    state = mem.working_state(conversation_id, **ids).to_dict()
    eps = mem.episodes(conversation_id=conversation_id, limit=200, **ids)["results"]
    return _html(
        '<div class="split"><div>' + render_working.messages(eps) + "</div><aside>"
        + render_working.working_panel(state, mem.principal.allows("write")) + "</aside></div>"
    )


@router.get("/fragments/ingestions")
def ingestions(mem: Secured, ids: ScopeIds, status: str = "dead") -> HTMLResponse:
    """Queued adds of the scope: the dead letters, or all of them."""
    from memstrata.ui import render_queue

    items = mem.ingestions(status=None if status == "all" else status, limit=100, **ids)["results"]
    return _html(render_queue.ingestion_table(items, mem.principal.allows("write"), status))
