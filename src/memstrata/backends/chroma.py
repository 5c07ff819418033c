"""Chroma as the long-term vector index: embedded (``chroma:///path``) or a server (``chroma+http://host:8000``).

One cosine collection holds every scope; each record is one chunk of one memory with the metadata
``{scope_key, memory_id, active, chunk}``, and every query carries a ``where`` filter on ``scope_key``.
memstrata always hands Chroma its own vectors: the collection's embedding function refuses to run, so
Chroma never loads (or downloads) a model of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from memstrata.backends.memory_vectors import as_query, as_rows
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError, MemstrataError
from memstrata.models import Scope
from memstrata.tiers.vectors import VectorTier

DEFAULT_COLLECTION = "memstrata"
_RECORD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://memstrata.dev/chroma-record")
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_URL_OPTIONS = {"collection", "tenant", "database", "token"}
_EMBEDDER_NAME = "memstrata-precomputed"


def _driver() -> Any:
    try:
        import chromadb
    except ImportError as exc:
        raise ConfigurationError(
            "vectors: the chroma backend needs the chromadb package: pip install memstrata[chroma]"
        ) from exc
    return chromadb


def _refusing_embedder() -> Any:
    """An embedding function object that raises if Chroma ever tries to embed text itself.

    Passing one explicitly keeps Chroma from constructing its default (which downloads an ONNX model);
    it is registered under a fixed name so a collection created earlier loads it back by name."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import known_embedding_functions, register_embedding_function

    existing = known_embedding_functions.get(_EMBEDDER_NAME)
    if existing is not None:
        return existing()

    class PrecomputedOnly(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            raise BackendError("chroma: asked to embed text, but memstrata always supplies its own vectors")

        @staticmethod
        def name() -> str:
            return _EMBEDDER_NAME

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> PrecomputedOnly:
            return PrecomputedOnly()

        def default_space(self) -> Any:
            return "cosine"

    register_embedding_function(PrecomputedOnly)
    return PrecomputedOnly()


def _translate(action: str, exc: Exception) -> MemstrataError:
    """The most specific memstrata error for a Chroma client failure."""
    import httpx

    message = f"chroma: {action} failed: {exc}"
    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return BackendUnavailableError(message)
    if isinstance(exc, ValueError) and "could not connect" in str(exc).lower():
        return BackendUnavailableError(message)
    try:
        from chromadb.errors import ChromaAuthError, InvalidDimensionException

        if isinstance(exc, InvalidDimensionException):
            return ConfigurationError(f"chroma: {action}: {exc} (another embedder? choose another ?collection=)")
        if isinstance(exc, ChromaAuthError):
            return BackendError(f"chroma: {action}: the server refused our credentials (?token=): {exc}")
    except ImportError:
        pass
    return BackendError(message)


def _local_path(raw: str, url: str) -> str:
    path = unquote(raw)
    if not path.startswith("/") or path == "/":
        raise ConfigurationError(f"vectors: {url!r} needs three slashes and a folder: chroma:///path/to/chroma")
    rest = path.lstrip("/")
    # As for sqlite URLs: chroma:///~/x and chroma:///./x are home- and cwd-relative.
    return str(Path(rest if rest.startswith(("~", "./", "../")) else "/" + rest).expanduser())


class ChromaVectors(VectorTier):
    """The vector tier on Chroma: a persistent folder (``path``) or a Chroma server (``host``)."""

    def __init__(
        self,
        dim: int,
        *,
        path: str | None = None,
        host: str | None = None,
        port: int = 8000,
        ssl: bool = False,
        token: str | None = None,
        tenant: str | None = None,
        database: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        client: Any = None,
    ) -> None:
        if sum(x is not None for x in (path, host, client)) != 1:
            raise ConfigurationError("vectors: give ChromaVectors exactly one of path, host or client")
        if not _COLLECTION_NAME.match(collection):
            raise ConfigurationError(
                f"vectors: collection {collection!r} must be 3-512 letters, digits, '.', '_' or '-',"
                " starting and ending with a letter or digit"
            )
        chromadb = _driver()
        from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings

        self.dim = int(dim)
        self.collection_name = collection
        self.location = path if path is not None else f"{host}:{port}" if host is not None else "client"
        self._token = token
        self._embedder = _refusing_embedder()
        self._owns_client = client is None
        if client is not None:
            self._client = client
        else:
            settings = Settings(anonymized_telemetry=False)
            where = {"tenant": tenant or DEFAULT_TENANT, "database": database or DEFAULT_DATABASE}
            with self._call("connect"):
                if path is not None:
                    Path(path).mkdir(parents=True, exist_ok=True)
                    self._client = chromadb.PersistentClient(path=path, settings=settings, **where)
                else:
                    headers = {"Authorization": f"Bearer {token}"} if token else None
                    self._client = chromadb.HttpClient(
                        host=host, port=port, ssl=ssl, headers=headers, settings=settings, **where
                    )
        try:
            self._open_collection()
        except BaseException:
            with suppress(Exception):
                self.close()
            raise

    @classmethod
    def from_url(cls, url: str, dim: int) -> ChromaVectors:
        """``chroma:///abs/path`` (embedded), ``chroma+http(s)://host:8000``; options ``?collection=``,
        ``?tenant=``, ``?database=`` and ``?token=`` (sent as a bearer token)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - _URL_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"vectors: unknown option(s) {', '.join(unknown)} in {url!r} (known: {', '.join(sorted(_URL_OPTIONS))})"
            )
        common: dict[str, Any] = {
            "collection": options.get("collection") or DEFAULT_COLLECTION,
            "tenant": options.get("tenant") or None,
            "database": options.get("database") or None,
        }
        if scheme == "chroma":
            if parts.netloc:
                raise ConfigurationError(f"vectors: {url!r} needs three slashes: chroma:///path/to/chroma")
            if options.get("token"):
                raise ConfigurationError("vectors: token applies to a chroma server, not a folder")
            return cls(dim, path=_local_path(parts.path, url), **common)
        if scheme in ("chroma+http", "chroma+https"):
            if not parts.hostname:
                raise ConfigurationError(f"vectors: {url!r} names no host: chroma+http://host:8000")
            try:
                port = parts.port or (443 if scheme.endswith("s") else 8000)
            except ValueError:
                raise ConfigurationError(f"vectors: {url!r} has a bad port") from None
            return cls(dim, host=parts.hostname, port=port, ssl=scheme.endswith("s"),
                       token=options.get("token") or None, **common)
        raise ConfigurationError(f"vectors: {url!r} is not a chroma URL (chroma:///path or chroma+http://host:8000)")

    def __repr__(self) -> str:
        token = ", token=***" if self._token else ""
        return f"ChromaVectors({self.location!r}, collection={self.collection_name!r}, dim={self.dim}{token})"

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        try:
            yield
        except MemstrataError:
            raise
        except Exception as exc:
            raise _translate(action, exc) from exc

    def _open_collection(self) -> None:
        with self._call("open collection"):
            self._collection = self._client.get_or_create_collection(
                self.collection_name,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=self._embedder,
            )
            sample = self._collection.get(limit=1, include=["embeddings"])
        space = (self._collection.configuration.get("hnsw") or {}).get("space")
        if space not in (None, "cosine"):
            raise ConfigurationError(
                f"vectors: chroma collection {self.collection_name!r} uses {space} distance; memstrata needs cosine"
            )
        stored = sample.get("embeddings")
        if stored is not None and len(stored) and len(stored[0]) != self.dim:
            raise ConfigurationError(
                f"vectors: chroma collection {self.collection_name!r} holds {len(stored[0])}-d vectors; this memory"
                f" needs {self.dim}-d (another embedder?): choose another ?collection= or reset it"
            )

    @staticmethod
    def record_id(scope: Scope, memory_id: str, chunk: int) -> str:
        """The deterministic id of one chunk's record (scoped, so scopes never overwrite each other)."""
        return str(uuid.uuid5(_RECORD_NAMESPACE, f"{scope.key}\x1f{memory_id}\x1f{chunk}"))

    @staticmethod
    def _where(scope: Scope, *extra: dict[str, Any]) -> dict[str, Any]:
        conditions = [{"scope_key": scope.key}, *extra]
        return conditions[0] if len(conditions) == 1 else {"$and": conditions}

    def _batch_size(self) -> int:
        try:
            return max(1, int(self._client.get_max_batch_size()))
        except Exception:  # an older or remote client without the call: Chroma's long-standing default
            return 5000

    # -- the contract ------------------------------------------------------------------------------

    def upsert(self, scope: Scope, items: Sequence[tuple[str, np.ndarray, bool]]) -> None:
        latest = {mid: (as_rows(matrix, self.dim), bool(active)) for mid, matrix, active in items}
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        metadatas: list[dict[str, Any]] = []
        by_count: dict[int, list[str]] = {}
        for mid, (rows, active) in latest.items():
            by_count.setdefault(rows.shape[0], []).append(mid)
            for i, row in enumerate(rows):
                ids.append(self.record_id(scope, mid, i))
                vectors.append(row)
                metadatas.append({"scope_key": scope.key, "memory_id": mid, "active": active, "chunk": i})
        with self._call("upsert"):
            step = self._batch_size()
            for start in range(0, len(ids), step):
                end = start + step
                self._collection.upsert(
                    ids=ids[start:end], embeddings=np.stack(vectors[start:end]), metadatas=metadatas[start:end]
                )
            # Stale chunks go after the new ones are in, so a memory never vanishes from search meanwhile.
            for n, mids in by_count.items():
                self._collection.delete(
                    where=self._where(scope, {"memory_id": {"$in": mids}}, {"chunk": {"$gte": n}})
                )

    def delete(self, scope: Scope, memory_ids: Sequence[str]) -> None:
        if not memory_ids:
            return
        with self._call("delete"):
            self._collection.delete(where=self._where(scope, {"memory_id": {"$in": list(memory_ids)}}))

    def set_active(self, scope: Scope, memory_ids: Sequence[str], active: bool) -> None:
        if not memory_ids:
            return
        with self._call("set_active"):
            found = self._collection.get(
                where=self._where(scope, {"memory_id": {"$in": list(memory_ids)}}), include=["metadatas"]
            )
            if not found["ids"]:
                return
            metadatas = [{**(meta or {}), "active": bool(active)} for meta in found["metadatas"]]
            step = self._batch_size()
            for start in range(0, len(found["ids"]), step):
                self._collection.update(
                    ids=found["ids"][start : start + step], metadatas=metadatas[start : start + step]
                )

    def search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_inactive: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        query = as_query(vector, self.dim)
        if k <= 0 or (only is not None and len(only) == 0):
            return []
        extra: list[dict[str, Any]] = []
        if not include_inactive:
            extra.append({"active": True})
        if only is not None:
            extra.append({"memory_id": {"$in": list(dict.fromkeys(only))}})
        where = self._where(scope, *extra)
        # Chroma ranks chunks, not memories: fetch more than k and widen until k distinct memories are seen.
        want = k * 3 + 8
        while True:
            with self._call("search"):
                result = self._collection.query(
                    query_embeddings=query[None, :], n_results=want, where=where,
                    include=["metadatas", "distances"],
                )
            metas, distances = result["metadatas"][0], result["distances"][0]
            best: dict[str, float] = {}
            for meta, distance in zip(metas, distances, strict=True):
                mid = str(meta["memory_id"])
                if mid not in best:
                    best[mid] = 1.0 - float(distance)
                    if len(best) >= k:
                        return list(best.items())
            if len(metas) < want:
                return list(best.items())
            want *= 4

    def count(self, scope: Scope) -> int:
        with self._call("count"):
            return len(self._collection.get(where=self._where(scope, {"chunk": 0}), include=[])["ids"])

    def drop_scope(self, scope: Scope) -> None:
        with self._call("drop_scope"):
            self._collection.delete(where=self._where(scope))

    def reset(self) -> None:
        with self._call("reset"):
            self._client.delete_collection(self.collection_name)
        self._open_collection()

    def close(self) -> None:
        closer = getattr(self._client, "close", None)
        if self._owns_client and closer is not None:
            with self._call("close"):
                closer()
