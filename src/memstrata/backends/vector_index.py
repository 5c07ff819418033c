"""An in-process exact kNN index per scope, kept as a cache of the database.

The database is the truth: each scope's matrix is loaded from it on first use and reloaded when the
scope's version in the database moved without us (another process wrote, or a crash left us stale).
Writes made through this process patch the cached matrix in place, so ingest-then-search stays cheap.

Exact search was chosen over HNSW with numbers (bench/RESULTS.md): one matrix-vector product over a
scope of 100k rows costs a few milliseconds on 2 cores, is always right, and needs no per-scope index
files to keep consistent after a crash.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

# A scope at least this large has its scores computed in parallel slices. BLAS itself is kept to one
# thread (see providers.embedders.limit_blas_threads): its threads spin between calls and starve the
# embedder, while these workers sleep on a queue. numpy releases the GIL inside the product.
PARALLEL_ROWS = 20_000
_WORKERS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def scores_of(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query``, split over worker threads for a large matrix."""
    n = matrix.shape[0]
    if n < PARALLEL_ROWS or _WORKERS == 1:
        return matrix @ query
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="memstrata-knn")
    out = np.empty(n, dtype=np.result_type(matrix, query))
    bounds = [n * i // _WORKERS for i in range(_WORKERS + 1)]

    def part(i: int) -> None:
        np.matmul(matrix[bounds[i] : bounds[i + 1]], query, out=out[bounds[i] : bounds[i + 1]])

    for _ in _pool.map(part, range(_WORKERS)):
        pass
    return out


# Passed as the version to search: whatever matrix is cached (loaded if none); the caller checks the version
# that comes back against the database.
ANY = object()


@dataclass
class _ScopeMatrix:
    version: object  # an engine's scope version: SQLite's counter, PostgreSQL's xmin of the scope's counter row
    matrix: np.ndarray  # (n, dim) float32, rows L2-normalised
    owners: np.ndarray  # (n,) int64 memory rid that owns the row (a long memory has several rows)
    active: np.ndarray  # (n,) bool: the owning memory is current (not superseded / expired)

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + self.owners.nbytes + self.active.nbytes


Loader = Callable[[], tuple[object, np.ndarray, np.ndarray, np.ndarray]]


class VectorIndex:
    """Scope key → matrix cache with an LRU bound on memory."""

    def __init__(self, dim: int, max_bytes: int = 2 * 1024**3) -> None:
        self.dim = dim
        self.max_bytes = max_bytes
        self._scopes: OrderedDict[str, _ScopeMatrix] = OrderedDict()
        self._lock = threading.RLock()
        self._bytes = 0

    def _get(self, key: str, version: object, load: Loader) -> _ScopeMatrix:
        with self._lock:
            entry = self._scopes.get(key)
            if entry is not None and (version is ANY or entry.version == version):
                self._scopes.move_to_end(key)
                return entry
        loaded_version, matrix, owners, active = load()
        entry = _ScopeMatrix(loaded_version, matrix, owners, active)
        with self._lock:
            old = self._scopes.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._scopes[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes and len(self._scopes) > 1:
                _, evicted = self._scopes.popitem(last=False)
                self._bytes -= evicted.nbytes
        return entry

    def search(self, key: str, version: object, load: Loader, query: np.ndarray, k: int,
               **options: Any) -> list[tuple[int, float]]:
        """Top-k memory rids by cosine; a memory with several rows scores by its best row (``options``: those of
        :meth:`query`)."""
        return self.query(key, version, load, query, k, **options)[1]

    def query(
        self,
        key: str,
        version: object,
        load: Loader,
        query: np.ndarray,
        k: int,
        *,
        include_inactive: bool = False,
        only: set[int] | None = None,
    ) -> tuple[object, list[tuple[int, float]]]:
        """``search``, and the version of the matrix that answered (``version`` may be ``ANY``)."""
        entry = self._get(key, version, load)
        with self._lock:  # a patch replaces the arrays, never changes them in place: take one consistent set
            matrix, owners, active, used = entry.matrix, entry.owners, entry.active, entry.version
        n = matrix.shape[0]
        if n == 0 or k <= 0:
            return used, []
        scores = scores_of(matrix, query.astype(np.float32, copy=False))
        mask = None if include_inactive else active
        if only is not None:
            allowed = np.isin(owners, np.fromiter(only, dtype=np.int64, count=len(only)))
            mask = allowed if mask is None else (mask & allowed)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        # Fetch extra rows so that several rows of one memory don't crowd out others.
        want = min(n, k * 3 + 8)
        top = np.argpartition(-scores, want - 1)[:want] if want < n else np.arange(n)
        # Equal scores in row id order, as the SQL stores order them.
        top = top[np.lexsort((owners[top], -scores[top]))]
        best: dict[int, float] = {}
        for row in top:
            s = float(scores[row])
            if s == -np.inf:
                break
            rid = int(owners[row])
            if rid not in best:
                best[rid] = s
                if len(best) >= k:
                    break
        return used, list(best.items())

    def patch(
        self,
        key: str,
        old_version: object,
        new_version: object,
        *,
        add: Iterable[tuple[int, np.ndarray]] = (),
        remove: Iterable[int] = (),
        deactivate: Sequence[int] = (),
        activate: Sequence[int] = (),
    ) -> None:
        """Apply this process's own committed write; drop the cache if someone else wrote in between."""
        with self._lock:
            entry = self._scopes.get(key)
            if entry is None:
                return
            if entry.version != old_version:
                self._bytes -= entry.nbytes
                del self._scopes[key]
                return
            self._bytes -= entry.nbytes
            remove_set = set(remove)
            if remove_set:
                keep = ~np.isin(entry.owners, np.fromiter(remove_set, dtype=np.int64, count=len(remove_set)))
                entry.matrix, entry.owners, entry.active = (
                    entry.matrix[keep],
                    entry.owners[keep],
                    entry.active[keep],
                )
            added = list(add)
            if added:
                rows = [np.atleast_2d(v).astype(np.float32) for _, v in added]
                owners = np.concatenate(
                    [
                        np.full(r.shape[0], rid, dtype=np.int64)
                        for (rid, _), r in zip(added, rows, strict=True)
                    ]
                )
                entry.matrix = np.vstack([entry.matrix, *rows])
                entry.owners = np.concatenate([entry.owners, owners])
                entry.active = np.concatenate([entry.active, np.ones(len(owners), dtype=bool)])
            # After the adds: a memory re-embedded in this write may also have stopped being current.
            if deactivate or activate:
                entry.active = entry.active.copy()  # a search may hold the old array
                for rid in deactivate:
                    entry.active[entry.owners == rid] = False
                for rid in activate:
                    entry.active[entry.owners == rid] = True
            entry.version = new_version
            self._bytes += entry.nbytes

    def holds(self, key: str) -> bool:
        with self._lock:
            return key in self._scopes

    def drop(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._scopes.clear()
                self._bytes = 0
            elif key in self._scopes:
                self._bytes -= self._scopes.pop(key).nbytes

    @property
    def resident_bytes(self) -> int:
        return self._bytes
