"""Moving from Mem0: read its exports and its open-source store, write the memories into memstrata.

Sources (``read_mem0``):

* an export: JSON of ``Memory.get_all`` output (``{"results": [...]}``, a list, or ``{"memories": [...]}``), or
  JSON Lines of memory items;
* an open-source store: the vector store folder (Qdrant local mode, the folder with ``meta.json``; or a Chroma
  persistent folder, with ``chroma.sqlite3``) holding the memories and their scopes, and the SQLite history
  database (``history.db``, Mem0's ``history_db_path``) holding every ADD/UPDATE/DELETE with its time.

``import_mem0`` keeps Mem0's memory ids (they are UUIDs, unique like memstrata's), scopes, metadata, creation
and update times, and history; a memory whose id the store already holds is skipped, so a second run adds only
what is new. Mem0's entity collection (``<collection>_entities``) is rebuilt by memstrata's own graph, not read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.models import Scope, check_id

# What Mem0 keeps as a memory's own fields (mem0/memory/main.py, ``get``); every other payload key (its
# metadata, actor_id, role, attributed_to, expiration_date) becomes memstrata metadata.
_CORE = {"data", "memory", "text", "hash", "created_at", "updated_at", "id", "text_lemmatized", "user_id",
         "agent_id", "run_id", "metadata", "score"}


@dataclass
class Mem0Memory:
    id: str
    memory: str
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    created_at: str
    updated_at: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mem0Data:
    memories: list[Mem0Memory]
    history: dict[str, list[dict[str, Any]]]  # memory id -> events, oldest first
    source: str


def _iso(value: Any, where: str) -> str:
    """A Mem0 timestamp (ISO 8601, any offset; naive means UTC) as ISO UTC text."""
    if value is None or value == "":
        raise InvalidInputError(where, "has no timestamp")
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(where, f"is not an ISO 8601 time: {value!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _memory(item: Any, where: str) -> Mem0Memory:
    if not isinstance(item, dict):
        raise InvalidInputError(where, f"must be a memory object, got {type(item).__name__}")
    text = item.get("memory") or item.get("data") or item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(where, "needs a 'memory' (or payload 'data') string")
    ident = item.get("id")
    if not isinstance(ident, str | int) or str(ident) == "":
        raise InvalidInputError(f"{where}.id", "must be the Mem0 memory id")
    ids = {k: check_id(k, item.get(k)) for k in ("user_id", "agent_id", "run_id")}
    if not any(ids.values()):
        raise InvalidInputError(where, "names no user_id, agent_id or run_id")
    meta = dict(item.get("metadata") or {})
    meta.update({k: v for k, v in item.items() if k not in _CORE})
    created = _iso(item.get("created_at"), f"{where}.created_at")
    updated = _iso(item.get("updated_at"), f"{where}.updated_at") if item.get("updated_at") else created
    return Mem0Memory(str(ident), text, ids["user_id"], ids["agent_id"], ids["run_id"], created, updated, meta)


def _read_export(path: Path) -> list[Mem0Memory]:
    raw = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        try:
            doc = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InvalidInputError(str(path), f"is neither JSON nor JSON Lines: {exc.msg}") from None
    if isinstance(doc, dict):
        doc = doc.get("results", doc.get("memories"))
    if not isinstance(doc, list):
        raise InvalidInputError(str(path), "must hold a list of memories, {'results': [...]} or {'memories': [...]}")
    return [_memory(item, f"{path.name}[{i}]") for i, item in enumerate(doc)]


def _read_qdrant(path: Path, collection: str) -> list[Mem0Memory]:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:
        raise ConfigurationError("reading a Mem0 Qdrant store needs qdrant-client: pip install 'memstrata[qdrant]'"
                                 ) from exc
    client = QdrantClient(path=str(path))
    try:
        if not client.collection_exists(collection):
            raise InvalidInputError("collection", f"the Qdrant store at {path} has no collection {collection!r}")
        out, offset = [], None
        while True:
            points, offset = client.scroll(collection, limit=256, offset=offset, with_payload=True,
                                           with_vectors=False)
            out += [_memory({**(p.payload or {}), "id": str(p.id)}, f"qdrant:{p.id}") for p in points]
            if offset is None:
                return out
    finally:
        client.close()


def _read_chroma(path: Path, collection: str) -> list[Mem0Memory]:
    try:
        import chromadb
    except ImportError as exc:
        raise ConfigurationError("reading a Mem0 Chroma store needs chromadb: pip install 'memstrata[chroma]'"
                                 ) from exc
    client = chromadb.PersistentClient(path=str(path))
    if collection not in {c.name for c in client.list_collections()}:
        raise InvalidInputError("collection", f"the Chroma store at {path} has no collection {collection!r}")
    got = client.get_collection(collection).get(include=["metadatas"])
    return [_memory({**(meta or {}), "id": ident}, f"chroma:{ident}")
            for ident, meta in zip(got["ids"], got["metadatas"] or [], strict=True)]


def _read_history(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInputError(str(path), f"cannot be opened as SQLite: {exc}") from None
    try:
        rows = conn.execute(
            "SELECT memory_id, old_memory, new_memory, event, created_at, updated_at, actor_id, role"
            " FROM history ORDER BY created_at, DATETIME(updated_at), rowid").fetchall()
    except sqlite3.Error as exc:
        raise InvalidInputError(str(path), f"is not a Mem0 history database ({exc})") from None
    finally:
        conn.close()
    out: dict[str, list[dict[str, Any]]] = {}
    for mid, old, new, event, created, updated, actor, role in rows:
        at = _iso(updated if event in ("UPDATE", "DELETE") and updated else created, f"history of {mid}")
        out.setdefault(str(mid), []).append({
            "event": str(event).upper(), "old_memory": old, "new_memory": new, "created_at": at,
            "actor": f"mem0:{actor}" if actor else "mem0 import", "reason": "imported from Mem0",
            "metadata": {"role": role} if role else {},
        })
    return out


def read_mem0(path: str | Path, *, history_db: str | Path | None = None, collection: str = "mem0") -> Mem0Data:
    """Read a Mem0 export file, or a Mem0 store (vector store folder, plus ``history_db`` or a ``history.db``
    found in or beside it). See the module docstring."""
    src = Path(path)
    if not src.exists():
        raise InvalidInputError("path", f"{src} does not exist")
    if src.is_file() and src.suffix not in (".db", ".sqlite", ".sqlite3"):
        memories = _read_export(src)
        kind = "export"
    elif (src / "meta.json").exists() or (src / "collection").is_dir():
        memories, kind = _read_qdrant(src, collection), "qdrant"
    elif (src / "chroma.sqlite3").exists():
        memories, kind = _read_chroma(src, collection), "chroma"
    else:
        raise InvalidInputError("path", f"{src} is not a Mem0 export (JSON) nor a Qdrant or Chroma store folder")
    found = history_db or next((p for p in (src / "history.db", src.parent / "history.db") if src.is_dir()
                                and p.is_file()), None)
    history = _read_history(Path(found)) if found else {}
    return Mem0Data(memories, history, kind)


def _blocks(data: Mem0Data, org_id: str | None) -> Iterable[tuple[Scope, dict[str, Any]]]:
    by_scope: dict[Scope, list[Mem0Memory]] = {}
    for m in data.memories:
        by_scope.setdefault(Scope.of(user_id=m.user_id, agent_id=m.agent_id, run_id=m.run_id, org_id=org_id),
                            []).append(m)
    for scope, items in by_scope.items():
        memories = [{"id": m.id, "memory": m.memory, "created_at": m.created_at, "updated_at": m.updated_at,
                     "valid_from": m.created_at, "metadata": m.metadata} for m in items]
        history = {m.id: data.history.get(m.id) or [
            {"event": "ADD", "new_memory": m.memory, "created_at": m.created_at, "actor": "mem0 import",
             "reason": "imported from Mem0"}] for m in items}
        yield scope, {"memories": memories, "history": history}


def import_mem0(memory: Any, data: Mem0Data, *, org_id: str | None = None) -> dict[str, Any]:
    """Write Mem0 memories (ids, scopes, timestamps, history) into ``memory``; ids already there are skipped."""
    from memstrata.privacy.audit import Auditor
    from memstrata.privacy.gdpr import import_scope

    counts = {"read": len(data.memories), "imported": 0, "skipped": 0, "history": 0, "scopes": 0}
    store = memory.store
    for scope, block in _blocks(data, check_id("org_id", org_id)):
        fresh = [m for m in block["memories"] if store.scope_of_memory(m["id"]) is None]
        counts["skipped"] += len(block["memories"]) - len(fresh)
        if not fresh:
            continue
        keep = {m["id"] for m in fresh}
        done = import_scope(memory, scope, {"memories": fresh, "history": {
            k: v for k, v in block["history"].items() if k in keep}}, keep_ids=True)
        counts["imported"] += done["memories"]
        counts["history"] += done["history"]
        counts["scopes"] += 1
        Auditor(store, memory.actor).record("import_mem0", scope=scope, memory_ids=sorted(keep),
                                            details={"source": data.source, **done})
    return counts


__all__ = ["Mem0Data", "Mem0Memory", "import_mem0", "read_mem0"]
