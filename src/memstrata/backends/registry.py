"""Which backend serves a URL: one table from URL scheme to factory, for each kind of tier.

Three kinds are opened by URL: the durable store (``Memory(store=...)``), an external vector index
(``Memory(vectors=...)``) and the cache tiers, short-term plus working (``Memory(cache=...)``). The built-in
schemes are registered below; drivers are imported only when their scheme is opened, so a missing one
fails with an error that names the extra to install.

Another package adds a scheme with ``register_store`` / ``register_vectors`` / ``register_cache``, or
without any import by the user, through an entry point in the ``memstrata.backends`` group whose object
is a function of no arguments that makes those calls. Entry points load once, the first time a scheme
is asked for that nothing registered yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from memstrata.config import parse_store_url
from memstrata.errors import ConfigurationError
from memstrata.tiers.base import Capability, ShortTermTier, Store, WorkingTier
from memstrata.tiers.vectors import VectorTier

ENTRY_POINT_GROUP = "memstrata.backends"

#: ``factory(url, dim, **options)``: the options are ``Memory``'s extra keyword arguments
StoreFactory = Callable[..., Store]
#: ``factory(url, dim)``
VectorFactory = Callable[[str, int], VectorTier]
#: ``factory(url, ttl_seconds)``: both cache tiers, usually sharing one client
CacheFactory = Callable[[str, float], tuple[ShortTermTier, WorkingTier]]

_stores: dict[str, StoreFactory] = {}
_vectors: dict[str, VectorFactory] = {}
_caches: dict[str, CacheFactory] = {}
_lock = threading.Lock()
_plugins_loaded = False
log = logging.getLogger("memstrata.backends")


def _key(scheme: str) -> str:
    if not isinstance(scheme, str) or not scheme.strip() or "://" in scheme:
        raise ConfigurationError(f"backend scheme: expected a bare scheme such as 'myscheme', got {scheme!r}")
    return scheme.strip().lower()


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Serve ``scheme://...`` store URLs with ``factory(url, dim, **options)``; replaces an earlier one."""
    _stores[_key(scheme)] = factory


def register_vectors(scheme: str, factory: VectorFactory) -> None:
    """Serve ``scheme://...`` vector-index URLs with ``factory(url, dim)``."""
    _vectors[_key(scheme)] = factory


def register_cache(scheme: str, factory: CacheFactory) -> None:
    """Serve ``scheme://...`` cache URLs with ``factory(url, ttl_seconds) -> (short_term, working)``."""
    _caches[_key(scheme)] = factory


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].strip().lower() if isinstance(url, str) and "://" in url else ""


def _lookup(table: dict[str, Any], scheme: str) -> Any:
    global _plugins_loaded
    if scheme not in table and not _plugins_loaded:
        with _lock:
            if not _plugins_loaded:
                _plugins_loaded = True
                from importlib.metadata import entry_points

                for ep in entry_points(group=ENTRY_POINT_GROUP):
                    try:
                        ep.load()()
                    except Exception as exc:  # one broken plugin must not take the others down
                        log.warning("backend plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
    return table.get(scheme)


def open_store(url: str, dim: int, **options: Any) -> Store:
    """Open the durable store named by ``url``: ``sqlite:///path`` (or a bare path), ``postgresql://...``,
    or a registered scheme. A store that holds encrypted data is refused unless ``codec`` can open it."""
    scheme = _scheme(url) or "sqlite"
    factory = _lookup(_stores, scheme)
    if factory is None:
        parse_store_url(url)  # names the bad URL the way every other store error does
        raise ConfigurationError(f"store: the {scheme} backend is not available in this build")
    store: Store = factory(url, dim, **options)
    codec = options.get("codec")
    if (codec is None or not codec.encrypts) and store.supports(Capability.PRIVACY):
        try:
            encrypted = store.holds_data_keys()  # type: ignore[attr-defined]
        except BaseException:
            store.close()
            raise
        if encrypted:
            # Without its keys every text would come back as ciphertext; refuse instead.
            store.close()
            raise ConfigurationError(
                "store: it holds encrypted data; open it with its master key (set MEMSTRATA_MASTER_KEY or "
                "MEMSTRATA_MASTER_KEY_FILE, or use memstrata.secure.secure_memory(..., master_key=...))"
            )
    return store


def open_vector_tier(url: str, dim: int) -> VectorTier:
    """An external vector index by URL: ``qdrant:///path`` (embedded), ``qdrant+http://host:6333``,
    ``chroma:///path`` (embedded persistent client), ``chroma+http://host:8000``, or a registered scheme."""
    factory = _lookup(_vectors, _scheme(url))
    if factory is None:
        raise ConfigurationError(f"vectors: unknown scheme in {url!r} (supported: {', '.join(sorted(_vectors))})")
    tier: VectorTier = factory(url, dim)
    return tier


def open_cache(url: str, ttl_seconds: float) -> tuple[ShortTermTier, WorkingTier]:
    """Short-term and working tiers by URL: ``redis://host:port/db`` (also ``rediss://``, ``unix://``)."""
    factory = _lookup(_caches, _scheme(url))
    if factory is None:
        raise ConfigurationError(f"cache: unknown scheme in {url!r} (supported: {', '.join(sorted(_caches))})")
    tiers: tuple[ShortTermTier, WorkingTier] = factory(url, ttl_seconds)
    return tiers


# -- the built-in backends -------------------------------------------------------------------------


def _sqlite(url: str, dim: int, **options: Any) -> Store:
    from memstrata.backends.sqlite import SQLiteStore

    return SQLiteStore(parse_store_url(url).path, dim=dim, **options)


def _postgres(url: str, dim: int, **options: Any) -> Store:
    from memstrata.backends.postgres import PostgresStore

    return PostgresStore(parse_store_url(url).url, dim=dim, **options)


def _qdrant(url: str, dim: int) -> VectorTier:
    from memstrata.backends.qdrant import QdrantVectors

    return QdrantVectors.from_url(url, dim)


def _chroma(url: str, dim: int) -> VectorTier:
    from memstrata.backends.chroma import ChromaVectors

    return ChromaVectors.from_url(url, dim)


def _redis(url: str, ttl_seconds: float) -> tuple[ShortTermTier, WorkingTier]:
    from memstrata.backends.redis import short_term_from_url

    return short_term_from_url(url, ttl_seconds=ttl_seconds)


register_store("sqlite", _sqlite)
for _name in ("postgresql", "postgres"):
    register_store(_name, _postgres)
for _name in ("qdrant", "qdrant+http", "qdrant+https"):
    register_vectors(_name, _qdrant)
for _name in ("chroma", "chroma+http", "chroma+https"):
    register_vectors(_name, _chroma)
for _name in ("redis", "rediss", "unix"):
    register_cache(_name, _redis)

__all__ = [
    "ENTRY_POINT_GROUP", "open_cache", "open_store", "open_vector_tier", "register_cache", "register_store",
    "register_vectors",
]
