"""A persistent embedding cache for benchmark runs only.

Benchmarks embed the same turns again and again: every system of a run embeds its haystack, and every run
embeds it anew. :class:`CachingEmbedder` wraps an embedder and keeps its vectors in one SQLite file, keyed by
the embedder's identity (name and dimension) and the SHA-256 of the text; a miss is embedded by the wrapped
embedder (all misses of a call in one batch) and stored, a hit is read back bit for bit. Texts passed to
:meth:`CachingEmbedder.live` always go to the wrapped embedder, so a timed search still pays for embedding its
query.

The library never builds one: only the harnesses in this package do, behind ``memstrata bench``'s
``--embed-cache`` option. A cache is only valid for a fixed model; delete the file when the model's weights or
tokenizer change under the same name.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DIR = ".memstrata/bench-cache"
FILE_NAME = "embeddings.sqlite3"
_CHUNK = 500  # SQLite's bound-parameter limit is far above this; it keeps each lookup statement small


def default_cache_dir() -> Path:
    """``.memstrata/bench-cache`` under the working directory (``memstrata bench`` also reads
    ``$MEMSTRATA_BENCH_CACHE``)."""
    return Path(DEFAULT_DIR)


def text_key(text: str) -> bytes:
    """The cache key of a text: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class CachingEmbedder:
    """An embedder that remembers what ``inner`` returned for each text, on disk.

    Same ``name``, ``dim`` and ``count_tokens`` as ``inner``; ``embed`` returns, row for row, the float32
    vector ``inner`` gave that text when it was first embedded. Safe to share between threads (one
    connection behind a lock) and between processes (SQLite's own locking; a row written twice keeps the first).
    ``hits`` and ``misses`` count texts served from the file and texts embedded by ``inner``.
    """

    def __init__(self, inner: Any, cache_dir: str | Path | None = None) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.dim: int = int(inner.dim)
        self.namespace = f"{self.name}/{self.dim}"
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILE_NAME
        self._lock = threading.Lock()
        self._live: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        self._db = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (namespace TEXT NOT NULL, key BLOB NOT NULL, vector BLOB NOT NULL, "
            "PRIMARY KEY (namespace, key)) WITHOUT ROWID"
        )

    def __repr__(self) -> str:
        return f"CachingEmbedder({self.inner!r}, path={str(self.path)!r})"

    # -- the embedder protocol ---------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def warm_up(self) -> None:
        warm = getattr(self.inner, "warm_up", None)
        if warm is not None:
            warm()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            live = [i for i, t in enumerate(texts) if t in self._live]
        if live:
            out[live] = self._checked(self.inner.embed([texts[i] for i in live]), len(live))
        rest = [i for i in range(len(texts)) if texts[i] not in self._live] if live else list(range(len(texts)))
        if not rest:
            return out
        keys = {i: text_key(texts[i]) for i in rest}
        with self._lock:
            found = self._lookup(set(keys.values()))
            missing: dict[bytes, str] = {}
            for i in rest:
                if keys[i] not in found:
                    missing.setdefault(keys[i], texts[i])
            if missing:
                # Embedding under the lock: concurrent callers with the same misses embed them once.
                vectors = self._checked(self.inner.embed(list(missing.values())), len(missing))
                rows = [(self.namespace, k, v.tobytes()) for k, v in zip(missing, vectors, strict=True)]
                with self._transaction():
                    self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)", rows)
                found.update(self._lookup(set(missing)))  # what the file holds, if another process won a race
            self.misses += len(missing)
            self.hits += len(rest) - sum(1 for i in rest if keys[i] in missing)
        for i in rest:
            out[i] = found[keys[i]]
        return out

    # -- harness controls ----------------------------------------------------------------------------------

    @contextmanager
    def live(self, texts: Iterable[str]) -> Iterator[None]:
        """Inside the block, ``texts`` are embedded by the wrapped embedder every time (timed query embedding)."""
        texts = list(texts)
        with self._lock:
            for t in texts:
                self._live[t] = self._live.get(t, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for t in texts:
                    self._live[t] -= 1
                    if not self._live[t]:
                        del self._live[t]

    def stats(self) -> dict[str, Any]:
        """Hits and misses of this object, and the file it reads."""
        return {"path": str(self.path), "hits": self.hits, "misses": self.misses}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals -------------------------------------------------------------------------------------------

    def _checked(self, vectors: Any, n: int) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.shape != (n, self.dim):
            raise ValueError(f"embedder {self.name!r} returned shape {arr.shape} for {n} texts of dimension {self.dim}")
        return arr

    def _lookup(self, keys: set[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        todo = list(keys)
        for start in range(0, len(todo), _CHUNK):
            part = todo[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            cur = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE namespace = ? AND key IN ({marks})", [self.namespace, *part]
            )
            for key, blob in cur:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape != (self.dim,):
                    raise ValueError(f"embedding cache {self.path}: a stored vector has {vec.size} values, "
                                     f"not {self.dim}; delete the file")
                found[bytes(key)] = vec
        return found

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def wrap(embedder: Any, cache_dir: str | Path | None) -> Any:
    """``embedder`` behind a :class:`CachingEmbedder` on ``cache_dir`` (None: no cache, the embedder itself)."""
    if cache_dir is None:
        return embedder
    return CachingEmbedder(embedder, cache_dir)


@contextmanager
def live(embedder: Any, texts: Iterable[str]) -> Iterator[None]:
    """:meth:`CachingEmbedder.live` when ``embedder`` is one, else nothing."""
    if isinstance(embedder, CachingEmbedder):
        with embedder.live(texts):
            yield
    else:
        yield


def stats(embedder: Any) -> dict[str, Any] | None:
    """:meth:`CachingEmbedder.stats` when ``embedder`` is one, else None."""
    return embedder.stats() if isinstance(embedder, CachingEmbedder) else None


def close(embedder: Any) -> None:
    """Close ``embedder``'s cache file when it is a :class:`CachingEmbedder` (the wrapped embedder stays open)."""
    if isinstance(embedder, CachingEmbedder):
        embedder.close()
