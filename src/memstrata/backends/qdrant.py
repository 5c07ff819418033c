"""Qdrant as the long-term vector index: embedded (``qdrant:///path``) or a server (``qdrant+http://host:6333``).

One collection holds every scope. Each point is one chunk of one memory, with the payload
``{scope_key, memory_id, active, chunk}``; every query filters on ``scope_key``, so a scope only ever
sees its own points. The Store keeps the truth: this index can always be rebuilt from it.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from memstrata.backends.memory_vectors import as_query, as_rows
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError, MemstrataError
from memstrata.models import Scope
from memstrata.tiers.vectors import VectorTier

DEFAULT_COLLECTION = "memstrata"
_POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://memstrata.dev/qdrant-point")
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_URL_OPTIONS = {"collection", "api_key", "timeout"}
_UPSERT_BATCH = 256
_GATEWAY_STATUSES = {502, 503, 504}


def _driver() -> tuple[Any, Any]:
    try:
        from qdrant_client import QdrantClient, models
    except ImportError as exc:
        raise ConfigurationError(
            "vectors: the qdrant backend needs the qdrant-client package: pip install memstrata[qdrant]"
        ) from exc
    return QdrantClient, models


def _translate(action: str, exc: Exception) -> MemstrataError:
    """The most specific memstrata error for a Qdrant client failure."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    message = f"qdrant: {action} failed: {exc}"
    if isinstance(exc, ResponseHandlingException | httpx.TransportError | ConnectionError | TimeoutError):
        return BackendUnavailableError(message)
    if isinstance(exc, UnexpectedResponse) and exc.status_code in _GATEWAY_STATUSES:
        return BackendUnavailableError(message)
    if isinstance(exc, RuntimeError) and "already accessed by another instance" in str(exc):
        return BackendUnavailableError(
            f"qdrant: the embedded storage is locked by another client (one process per path): {exc}"
        )
    try:
        import grpc

        if isinstance(exc, grpc.RpcError) and exc.code() in (  # type: ignore[attr-defined]
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        ):
            return BackendUnavailableError(message)
    except ImportError:
        pass
    return BackendError(message)


def _local_path(raw: str, url: str) -> str:
    path = unquote(raw)
    if path in ("/:memory:", ":memory:"):
        return ":memory:"
    if not path.startswith("/") or path == "/":
        raise ConfigurationError(f"vectors: {url!r} needs three slashes and a folder: qdrant:///path/to/qdrant")
    rest = path.lstrip("/")
    # As for sqlite URLs: qdrant:///~/x and qdrant:///./x are home- and cwd-relative.
    return str(Path(rest if rest.startswith(("~", "./", "../")) else "/" + rest).expanduser())


def _check_unlocked(path: str) -> None:
    """Refuse a folder another client holds, before the driver does: its refusal leaks an open file."""
    lock_path = Path(path) / ".lock"
    if not lock_path.exists():
        return
    import portalocker

    with open(lock_path, "r+") as handle:
        try:
            portalocker.lock(handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
        except portalocker.exceptions.LockException:
            raise BackendUnavailableError(
                f"qdrant: the embedded storage {path} is locked by another client (one process per folder;"
                " use a qdrant server to share it)"
            ) from None
        portalocker.unlock(handle)


def _url_options(query: str, url: str, allowed: set[str]) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigurationError(
            f"vectors: unknown option(s) {', '.join(unknown)} in {url!r} (known: {', '.join(sorted(allowed))})"
        )
    return options


class QdrantVectors(VectorTier):
    """The vector tier on Qdrant: embedded storage in a folder (``path``) or a server (``url``).

    Embedded mode does exact search and suits a single process with up to tens of thousands of
    points; use a server beyond that or when several processes share the index.
    """

    def __init__(
        self,
        dim: int,
        *,
        path: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        timeout: int | None = None,
        client: Any = None,
    ) -> None:
        if sum(x is not None for x in (path, url, client)) != 1:
            raise ConfigurationError("vectors: give QdrantVectors exactly one of path, url or client")
        if not _COLLECTION_NAME.match(collection):
            raise ConfigurationError(f"vectors: collection {collection!r} must be 1-255 letters, digits, _ or -")
        client_cls, self._models = _driver()
        self.dim = int(dim)
        self.collection = collection
        self.location = path if path is not None else url if url is not None else "client"
        self._api_key = api_key
        self._owns_client = client is None
        if client is not None:
            self._client = client
        else:
            try:
                if path is not None:
                    if path == ":memory:":
                        self._client = client_cls(location=":memory:", force_disable_check_same_thread=True)
                    else:
                        Path(path).mkdir(parents=True, exist_ok=True)
                        _check_unlocked(path)
                        # The server may call us from worker threads; the lock below serialises access.
                        self._client = client_cls(path=path, force_disable_check_same_thread=True)
                else:
                    # The version probe would only warn when the server is down; the first real call raises.
                    self._client = client_cls(
                        url=url, api_key=api_key, timeout=timeout, https=bool(url and url.startswith("https://")),
                        check_compatibility=False,
                    )
            except MemstrataError:
                raise
            except Exception as exc:
                raise _translate("connect", exc) from exc
        from qdrant_client.local.qdrant_local import QdrantLocal

        self._embedded = isinstance(getattr(self._client, "_client", None), QdrantLocal)
        self._lock = threading.RLock()
        try:
            self._ensure_collection()
        except BaseException:
            with suppress(Exception):
                self.close()  # an embedded client holds a lock on its folder until closed
            raise

    @classmethod
    def from_url(cls, url: str, dim: int) -> QdrantVectors:
        """``qdrant:///abs/path`` (embedded), ``qdrant+http(s)://host:6333``; options ``?collection=``,
        ``?api_key=`` and ``?timeout=`` (seconds)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        options = _url_options(parts.query, url, _URL_OPTIONS)
        collection = options.get("collection") or DEFAULT_COLLECTION
        if scheme == "qdrant":
            if parts.netloc == ":memory:":
                return cls(dim, path=":memory:", collection=collection)
            if parts.netloc:
                raise ConfigurationError(f"vectors: {url!r} needs three slashes: qdrant:///path/to/qdrant")
            if "api_key" in options or "timeout" in options:
                raise ConfigurationError("vectors: api_key and timeout apply to a qdrant server, not a folder")
            return cls(dim, path=_local_path(parts.path, url), collection=collection)
        if scheme in ("qdrant+http", "qdrant+https"):
            if not parts.hostname:
                raise ConfigurationError(f"vectors: {url!r} names no host: qdrant+http://host:6333")
            timeout = options.get("timeout")
            try:
                seconds = int(timeout) if timeout else None
            except ValueError:
                raise ConfigurationError(f"vectors: timeout={timeout!r} is not a whole number of seconds") from None
            base = f"{scheme.split('+', 1)[1]}://{parts.netloc}{parts.path.rstrip('/')}"
            return cls(dim, url=base, api_key=options.get("api_key") or None, collection=collection, timeout=seconds)
        raise ConfigurationError(f"vectors: {url!r} is not a qdrant URL (qdrant:///path or qdrant+http://host:6333)")

    def __repr__(self) -> str:
        key = ", api_key=***" if self._api_key else ""
        return f"QdrantVectors({self.location!r}, collection={self.collection!r}, dim={self.dim}{key})"

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        with self._lock if self._embedded else nullcontext():
            try:
                yield
            except MemstrataError:
                raise
            except Exception as exc:
                raise _translate(action, exc) from exc

    def _ensure_collection(self) -> None:
        m = self._models
        with self._call("open collection"):
            if self._client.collection_exists(self.collection):
                self._check_existing()
                return
            try:
                self._client.create_collection(
                    self.collection, vectors_config=m.VectorParams(size=self.dim, distance=m.Distance.COSINE)
                )
            except Exception:
                # Another process may have created it between our check and our create.
                if not self._client.collection_exists(self.collection):
                    raise
                self._check_existing()
                return
            if not self._embedded:
                # Embedded mode scans everything anyway (and warns that indexes do nothing there).
                for name in ("scope_key", "memory_id"):
                    self._client.create_payload_index(self.collection, name, m.PayloadSchemaType.KEYWORD)

    def _check_existing(self) -> None:
        params = self._client.get_collection(self.collection).config.params.vectors
        size = getattr(params, "size", None)
        distance = getattr(params, "distance", None)
        if size != self.dim or distance != self._models.Distance.COSINE:
            raise ConfigurationError(
                f"vectors: qdrant collection {self.collection!r} holds {size}-d {distance} vectors; this memory"
                f" needs {self.dim}-d cosine (another embedder?): choose another ?collection= or reset it"
            )

    def _scope_filter(self, scope: Scope, *extra: Any) -> Any:
        m = self._models
        return m.Filter(must=[m.FieldCondition(key="scope_key", match=m.MatchValue(value=scope.key)), *extra])

    def _ids_condition(self, memory_ids: Sequence[str]) -> Any:
        m = self._models
        return m.FieldCondition(key="memory_id", match=m.MatchAny(any=list(memory_ids)))

    @staticmethod
    def point_id(scope: Scope, memory_id: str, chunk: int) -> str:
        """The deterministic id of one chunk's point; the scope is part of it, so scopes never overwrite each
        other even if a memory id repeats."""
        return str(uuid.uuid5(_POINT_NAMESPACE, f"{scope.key}\x1f{memory_id}\x1f{chunk}"))

    # -- the contract ------------------------------------------------------------------------------

    def upsert(self, scope: Scope, items: Sequence[tuple[str, np.ndarray, bool]]) -> None:
        m = self._models
        latest = {mid: (as_rows(matrix, self.dim), bool(active)) for mid, matrix, active in items}
        points = [
            m.PointStruct(
                id=self.point_id(scope, mid, i),
                vector=row.tolist(),
                payload={"scope_key": scope.key, "memory_id": mid, "active": active, "chunk": i},
            )
            for mid, (rows, active) in latest.items()
            for i, row in enumerate(rows)
        ]
        by_count: dict[int, list[str]] = {}
        for mid, (rows, _) in latest.items():
            by_count.setdefault(rows.shape[0], []).append(mid)
        with self._call("upsert"):
            for start in range(0, len(points), _UPSERT_BATCH):
                self._client.upsert(self.collection, points=points[start : start + _UPSERT_BATCH], wait=True)
            # Stale chunks go after the new ones are in, so a memory never vanishes from search meanwhile.
            for n, mids in by_count.items():
                stale = self._scope_filter(
                    scope, self._ids_condition(mids), m.FieldCondition(key="chunk", range=m.Range(gte=n))
                )
                self._client.delete(self.collection, points_selector=m.FilterSelector(filter=stale), wait=True)

    def delete(self, scope: Scope, memory_ids: Sequence[str]) -> None:
        if not memory_ids:
            return
        m = self._models
        with self._call("delete"):
            self._client.delete(
                self.collection,
                points_selector=m.FilterSelector(filter=self._scope_filter(scope, self._ids_condition(memory_ids))),
                wait=True,
            )

    def set_active(self, scope: Scope, memory_ids: Sequence[str], active: bool) -> None:
        if not memory_ids:
            return
        m = self._models
        with self._call("set_active"):
            self._client.set_payload(
                self.collection,
                payload={"active": bool(active)},
                points=m.FilterSelector(filter=self._scope_filter(scope, self._ids_condition(memory_ids))),
                wait=True,
            )

    def search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_inactive: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        m = self._models
        query = as_query(vector, self.dim)
        if k <= 0 or (only is not None and len(only) == 0):
            return []
        conditions = []
        if not include_inactive:
            conditions.append(m.FieldCondition(key="active", match=m.MatchValue(value=True)))
        if only is not None:
            conditions.append(self._ids_condition(list(dict.fromkeys(only))))
        with self._call("search"):
            # Grouping by memory with one hit per group keeps each memory's best chunk, ranked by it.
            result = self._client.query_points_groups(
                self.collection,
                group_by="memory_id",
                query=query.tolist(),
                query_filter=self._scope_filter(scope, *conditions),
                limit=k,
                group_size=1,
                with_payload=False,
            )
        return [(str(group.id), float(group.hits[0].score)) for group in result.groups if group.hits]

    def count(self, scope: Scope) -> int:
        m = self._models
        first_chunk = m.FieldCondition(key="chunk", match=m.MatchValue(value=0))
        with self._call("count"):
            return int(self._client.count(self.collection, count_filter=self._scope_filter(scope, first_chunk),
                                          exact=True).count)

    def drop_scope(self, scope: Scope) -> None:
        m = self._models
        with self._call("drop_scope"):
            self._client.delete(
                self.collection, points_selector=m.FilterSelector(filter=self._scope_filter(scope)), wait=True
            )

    def reset(self) -> None:
        with self._call("reset"):
            self._client.delete_collection(self.collection)
        self._ensure_collection()

    def close(self) -> None:
        if not self._owns_client:
            return
        with self._call("close"):
            self._client.close()
