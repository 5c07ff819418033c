"""LangGraph: a ``BaseStore`` whose items live in memstrata, for ``graph.compile(store=...)``.

    >>> from memstrata import Memory
    >>> from memstrata.integrations.langgraph import MemstrataStore
    >>> store = MemstrataStore(Memory(), namespace_scope=(None, "user_id"))   # ("memories", user_id)
    >>> graph = builder.compile(store=store)

**Namespaces and scopes.** ``namespace_scope`` names, position by position, which labels of a namespace are
memstrata scope ids (``"user_id"``, ``"agent_id"``, ``"run_id"``, ``"org_id"``) and which are plain path labels
(``None``); labels past the template are path labels too. With ``(None, "user_id")`` the namespace
``("memories", "alice", "food")`` is user ``alice``'s scope, path ``("memories", "food")``. Ids given to the
constructor (``user_id="alice"``) fill scope fields the template does not name. A read must name its scope:
a search or listing whose prefix stops before a scope label raises InvalidNamespaceError instead of reading
across users.

**Items.** Each item is one memstrata memory: its text is what search sees (the ``index`` fields, else the
whole value), and its metadata holds the value, the namespace path, the key and the expiry. ``search(query=...)``
runs memstrata's retrieval (semantic, keyword, entities, time) inside the scope; filters (``$eq``, ``$ne``,
``$gt``, ``$gte``, ``$lt``, ``$lte``; a plain value means ``$eq``) apply to the value's top-level fields.
TTL is in minutes, as in LangGraph; expired items are never returned and are deleted when next met
(``sweep_ttl`` removes all of a scope's at once). Overwriting an item keeps its earlier values in
``Memory.history``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.integrations._extras import require, sync_memory
from memstrata.models import Scope

_base = require("langgraph.store.base", "langgraph")
_embed = require("langgraph.store.base.embed", "langgraph")
BaseStore: Any = _base.BaseStore

SCOPE_FIELDS = ("user_id", "agent_id", "run_id", "org_id")
NEVER = 253402300799.0  # 9999-12-31T23:59:59Z: the expiry of an item without TTL, so one range filter serves all
_OPS = {"$eq": "eq", "$ne": "ne", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte", "$in": "in", "$nin": "nin"}
_PAGE = 1000


class MemstrataStore(BaseStore):
    """A LangGraph ``BaseStore`` on a memstrata ``Memory`` (or ``AsyncMemory``); see the module docstring."""

    supports_ttl = True

    def __init__(
        self,
        memory: Any,
        *,
        namespace_scope: Sequence[str | None] = ("user_id",),
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
        index_fields: Sequence[str] | None = None,
        ttl: dict[str, Any] | None = None,
    ) -> None:
        self.memory = sync_memory(memory)
        self.template = tuple(namespace_scope)
        self.fixed = {k: v for k, v in zip(SCOPE_FIELDS, (user_id, agent_id, run_id, org_id), strict=True) if v}
        named = [f for f in self.template if f is not None]
        for f in named:
            if f not in SCOPE_FIELDS:
                raise ConfigurationError(f"namespace_scope: {f!r} is not one of {', '.join(SCOPE_FIELDS)} or None")
        if len(set(named)) != len(named) or set(named) & set(self.fixed):
            raise ConfigurationError("namespace_scope: each scope id may come from one place only")
        if not ({"user_id", "agent_id", "run_id"} & (set(named) | set(self.fixed))):
            raise ConfigurationError("namespace_scope: name a user_id, agent_id or run_id (or pass one)")
        self.index_fields = list(index_fields) if index_fields is not None else None
        self.ttl_config = ttl

    # -- namespaces ------------------------------------------------------------------------------

    def _split(self, namespace: tuple[str, ...], *, prefix: bool = False) -> tuple[Scope, tuple[str, ...]]:
        """(scope, path) of a namespace; for a prefix, the scope labels must all be inside it."""
        ids = dict(self.fixed)
        path: list[str] = []
        for i, label in enumerate(namespace):
            field = self.template[i] if i < len(self.template) else None
            if field is None:
                path.append(label)
            else:
                ids[field] = label
        missing = [f for f in self.template[len(namespace):] if f is not None]
        if missing:
            what = "namespace prefix" if prefix else "namespace"
            raise _base.InvalidNamespaceError(
                f"{what} {namespace!r} stops before the {', '.join(missing)} label: every read and write must "
                f"name its memstrata scope (namespace_scope={self.template!r})")
        return Scope.of(**ids), tuple(path)

    def _join(self, scope: Scope, path: Sequence[str]) -> tuple[str, ...]:
        rest = iter(path)
        ids = scope.as_dict()
        out = [str(ids[f]) if f is not None else next(rest) for f in self.template]
        return (*out, *rest)

    @staticmethod
    def _path_filter(path: Sequence[str], exact: bool) -> dict[str, Any]:
        where: dict[str, Any] = {f"lg_p{i}": label for i, label in enumerate(path)}
        if exact:
            where["lg_depth"] = len(path)
        else:
            where["lg_depth"] = {"gte": len(path)}
        return where

    # -- items -----------------------------------------------------------------------------------

    def _text(self, key: str, path: Sequence[str], value: dict[str, Any], index: Any) -> str:
        fields = index if isinstance(index, list) else self.index_fields
        if fields and fields != ["$"]:
            parts = [t for f in fields for t in _embed.get_text_at_path(value, f)]
        else:
            parts = [v if isinstance(v, str) else f"{k}: {json.dumps(v, ensure_ascii=False)}"
                     for k, v in value.items()]
        body = "\n".join(p for p in parts if p.strip()) or json.dumps(value, sort_keys=True, ensure_ascii=False)
        # The address makes the text unique in its scope, so two keys with equal values stay two memories.
        return f"{'/'.join((*path, key))}: {body}"

    def _metadata(self, key: str, path: Sequence[str], value: dict[str, Any], ttl: float | None,
                  indexed: bool) -> dict[str, Any]:
        meta: dict[str, Any] = {f"v.{k}": v for k, v in value.items() if _scalar(v)}
        meta.update({f"lg_p{i}": label for i, label in enumerate(path)})
        meta.update(lg_depth=len(path), lg_key=key, lg_value=value, lg_ttl=ttl, lg_index=indexed,
                    lg_expires_at=NEVER if ttl is None else time.time() + ttl * 60)
        return meta

    def _item(self, scope: Scope, row: dict[str, Any], score: float | None = None) -> Any:
        meta = row["metadata"]
        path = tuple(meta[f"lg_p{i}"] for i in range(meta["lg_depth"]))
        stamps = {k: datetime.fromisoformat(row[k]) for k in ("created_at", "updated_at")}
        fields = dict(namespace=self._join(scope, path), key=meta["lg_key"], value=meta["lg_value"], **stamps)
        return _base.Item(**fields) if score is None else _base.SearchItem(**fields, score=score)

    def _ids(self, scope: Scope) -> dict[str, Any]:
        return scope.as_dict()

    def _find(self, scope: Scope, path: Sequence[str], key: str) -> dict[str, Any] | None:
        where = {**self._path_filter(path, exact=True), "lg_key": key}
        rows = self.memory.get_all(filters=where, limit=1, **self._ids(scope))["results"]
        return rows[0] if rows else None

    def _live(self, scope: Scope, rows: list[dict[str, Any]], refresh: bool) -> list[dict[str, Any]]:
        """Rows that have not expired (expired ones are deleted here); ``refresh`` pushes TTLs forward."""
        now = time.time()
        out = []
        for row in rows:
            meta = row["metadata"]
            if meta["lg_expires_at"] <= now:
                self.memory.delete(row["id"], **self._ids(scope))
                continue
            if refresh and meta.get("lg_ttl") is not None:
                meta["lg_expires_at"] = now + meta["lg_ttl"] * 60
                self.memory.update(row["id"], metadata=meta, **self._ids(scope))
            out.append(row)
        return out

    # -- operations ------------------------------------------------------------------------------

    def _get(self, op: Any) -> Any:
        scope, path = self._split(op.namespace)
        row = self._find(scope, path, op.key)
        live = self._live(scope, [row], op.refresh_ttl) if row else []
        return self._item(scope, live[0]) if live else None

    def _search(self, op: Any) -> list[Any]:
        scope, path = self._split(op.namespace_prefix, prefix=True)
        where = {**self._path_filter(path, exact=False), **_filters(op.filter),
                 "lg_expires_at": {"gt": time.time()}}
        want = op.offset + op.limit
        if want > _PAGE:
            raise InvalidInputError("limit", f"offset + limit must be at most {_PAGE}, got {want}")
        if op.query:
            where["lg_index"] = True
            hits = self.memory.search(op.query, filters=where, limit=want, **self._ids(scope))["results"]
            rows = self._live(scope, hits[op.offset:want], op.refresh_ttl)
            return [self._item(scope, r, r["score"]) for r in rows]
        rows = self.memory.get_all(filters=where, limit=want, **self._ids(scope))["results"]
        return [self._item(scope, r, None) for r in self._live(scope, rows[op.offset:want], op.refresh_ttl)]

    def _put(self, op: Any) -> None:
        scope, path = self._split(op.namespace)
        row = self._find(scope, path, op.key)
        ids = self._ids(scope)
        if op.value is None:
            if row is not None:
                self.memory.delete(row["id"], **ids)
            return
        value = dict(op.value)
        text = self._text(op.key, path, value, op.index)
        meta = self._metadata(op.key, path, value, op.ttl, op.index is not False)
        if row is None:
            self.memory.add(text, metadata=meta, infer=False, **ids)
        else:
            self.memory.update(row["id"], text=None if text == row["memory"] else text, metadata=meta, **ids)

    def _list(self, op: Any) -> list[tuple[str, ...]]:
        prefixes = [c.path for c in op.match_conditions or () if c.match_type == "prefix"]
        scope_len = max((i + 1 for i, f in enumerate(self.template) if f is not None), default=0)
        known = next((p for p in prefixes if len(p) >= scope_len and "*" not in p[:scope_len]), None)
        if known is None and scope_len:
            raise _base.InvalidNamespaceError(
                f"list_namespaces needs a prefix that names the scope labels {self.template[:scope_len]!r}: "
                "memstrata lists one scope's namespaces, never every user's")
        scope, _ = self._split(tuple(known or ())[:scope_len], prefix=True)
        seen: set[tuple[str, ...]] = set()
        cursor = None
        while True:
            page = self.memory.get_all(filters={"lg_expires_at": {"gt": time.time()}}, limit=_PAGE, cursor=cursor,
                                       **self._ids(scope))
            for row in page["results"]:
                meta = row["metadata"]
                if "lg_depth" in meta:
                    seen.add(self._join(scope, [meta[f"lg_p{i}"] for i in range(meta["lg_depth"])]))
            cursor = page["next_cursor"]
            if not cursor:
                break
        found = [ns for ns in seen if all(_matches(c, ns) for c in op.match_conditions or ())]
        if op.max_depth is not None:
            found = list({ns[: op.max_depth] for ns in found})
        return sorted(found)[op.offset: op.offset + op.limit]

    def batch(self, ops: Iterable[Any]) -> list[Any]:
        """Run Get, Search, Put and ListNamespaces ops in order; results line up with the ops."""
        results: list[Any] = []
        for op in ops:
            _base.validate_op_namespace(op)
            if isinstance(op, _base.GetOp):
                results.append(self._get(op))
            elif isinstance(op, _base.SearchOp):
                results.append(self._search(op))
            elif isinstance(op, _base.PutOp):
                self._put(op)
                results.append(None)
            elif isinstance(op, _base.ListNamespacesOp):
                results.append(self._list(op))
            else:
                raise InvalidInputError("op", f"unknown operation {type(op).__name__}")
        return results

    async def abatch(self, ops: Iterable[Any]) -> list[Any]:
        """``batch`` in a worker thread (memstrata's embedded engines have no non-blocking form)."""
        return await asyncio.to_thread(self.batch, list(ops))

    def sweep_ttl(self, namespace_prefix: tuple[str, ...]) -> int:
        """Delete the expired items of the scope named by ``namespace_prefix``; returns how many."""
        scope, path = self._split(namespace_prefix, prefix=True)
        where = {**self._path_filter(path, exact=False), "lg_expires_at": {"lte": time.time()}}
        gone = 0
        while rows := self.memory.get_all(filters=where, limit=_PAGE, **self._ids(scope))["results"]:
            for row in rows:
                self.memory.delete(row["id"], **self._ids(scope))
            gone += len(rows)
        return gone


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and not (isinstance(value, float) and value != value)


def _filters(spec: dict[str, Any] | None) -> dict[str, Any]:
    """LangGraph's filter (``{"field": value}`` or ``{"field": {"$op": value}}``) as memstrata's, on the value."""
    out: dict[str, Any] = {}
    for field, cond in (spec or {}).items():
        if isinstance(cond, dict) and any(str(k).startswith("$") for k in cond):
            unknown = [k for k in cond if k not in _OPS]
            if unknown:
                raise InvalidInputError(f"filter.{field}", f"unknown operator {unknown[0]!r} (use {', '.join(_OPS)})")
            out[f"v.{field}"] = {_OPS[k]: v for k, v in cond.items()}
        else:
            out[f"v.{field}"] = {"eq": cond}
    return out


def _matches(condition: Any, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    pairs = zip(namespace, path, strict=False) if condition.match_type == "prefix" else zip(
        reversed(namespace), reversed(path), strict=False)
    return all(p == "*" or n == p for n, p in pairs)


__all__ = ["MemstrataStore"]
