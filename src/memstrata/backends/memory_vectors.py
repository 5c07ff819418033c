"""An exact, in-process VectorTier on numpy: the reference the external vector stores are tested against.

Nothing is persisted: after a restart, ``Memory.writer.rebuild(scope)`` fills it again from the
Store. Useful as a drop-in index for tests and for small single-process deployments.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from memstrata.errors import InvalidInputError
from memstrata.models import Scope
from memstrata.tiers.vectors import VectorTier


def as_rows(matrix: np.ndarray, dim: int, field_name: str = "vectors") -> np.ndarray:
    """``matrix`` as a float32 (chunks, dim) array, or InvalidInputError naming what is wrong."""
    rows = np.atleast_2d(np.asarray(matrix, dtype=np.float32))
    if rows.ndim != 2 or rows.shape[1] != dim:
        raise InvalidInputError(field_name, f"expected shape (chunks, {dim}), got {tuple(rows.shape)}")
    if not np.all(np.isfinite(rows)):
        raise InvalidInputError(field_name, "contains NaN or infinite values")
    return rows


def as_query(vector: np.ndarray, dim: int) -> np.ndarray:
    """A query vector as a flat float32 array of length ``dim``."""
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] != dim or not np.all(np.isfinite(q)):
        raise InvalidInputError("vector", f"expected {dim} finite numbers, got shape {np.shape(vector)}")
    return q


def unit_rows(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    # A zero vector has no direction: it stays zero and scores 0 against everything, as in Qdrant.
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


@dataclass
class _Scope:
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # memory id -> unit rows
    active: dict[str, bool] = field(default_factory=dict)
    packed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # matrix, owner index, ids


class NumpyVectors(VectorTier):
    """Exact cosine kNN held in this process, one dict of matrices per scope; thread-safe."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._scopes: dict[str, _Scope] = {}
        self._lock = threading.Lock()

    def _scope(self, scope: Scope) -> _Scope:
        return self._scopes.setdefault(scope.key, _Scope())

    def upsert(self, scope: Scope, items: Sequence[tuple[str, np.ndarray, bool]]) -> None:
        prepared = [(mid, unit_rows(as_rows(m, self.dim)), bool(a)) for mid, m, a in items]
        with self._lock:
            s = self._scope(scope)
            for mid, rows, active in prepared:
                if rows.shape[0] == 0:
                    s.rows.pop(mid, None)
                    s.active.pop(mid, None)
                    continue
                s.rows.pop(mid, None)  # re-insert at the end, as a re-written row would be
                s.rows[mid] = rows
                s.active[mid] = active
            s.packed = None

    def delete(self, scope: Scope, memory_ids: Sequence[str]) -> None:
        with self._lock:
            s = self._scopes.get(scope.key)
            if s is None:
                return
            for mid in memory_ids:
                s.rows.pop(mid, None)
                s.active.pop(mid, None)
            s.packed = None

    def set_active(self, scope: Scope, memory_ids: Sequence[str], active: bool) -> None:
        with self._lock:
            s = self._scopes.get(scope.key)
            if s is None:
                return
            for mid in memory_ids:
                if mid in s.active:
                    s.active[mid] = bool(active)

    def search(
        self, scope: Scope, vector: np.ndarray, k: int, *, include_inactive: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        q = unit_rows(as_query(vector, self.dim)[None, :])[0]
        with self._lock:
            s = self._scopes.get(scope.key)
            if s is None or not s.rows or k <= 0:
                return []
            if s.packed is None:
                ids = np.array(list(s.rows), dtype=object)
                owners = np.concatenate([np.full(r.shape[0], i) for i, r in enumerate(s.rows.values())])
                s.packed = (np.vstack(list(s.rows.values())), owners, ids)
            matrix, owners, ids = s.packed
            allowed = np.array([include_inactive or s.active[mid] for mid in ids], dtype=bool)
        if only is not None:
            wanted = set(only)
            allowed &= np.array([mid in wanted for mid in ids], dtype=bool)
        row_ok = allowed[owners]
        if not row_ok.any():
            return []
        scores = np.where(row_ok, matrix @ q, -np.inf)
        order = np.argsort(-scores, kind="stable")
        best: dict[str, float] = {}
        for row in order:
            if not row_ok[row]:
                break
            mid = ids[owners[row]]
            if mid not in best:
                best[mid] = float(scores[row])
                if len(best) >= k:
                    break
        return list(best.items())

    def count(self, scope: Scope) -> int:
        with self._lock:
            s = self._scopes.get(scope.key)
            return 0 if s is None else len(s.rows)

    def drop_scope(self, scope: Scope) -> None:
        with self._lock:
            self._scopes.pop(scope.key, None)

    def reset(self) -> None:
        with self._lock:
            self._scopes.clear()
