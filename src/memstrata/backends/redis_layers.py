"""The shared layer of the read cache on Redis (or a Redis Cluster): query vectors and versioned scope entries.

Keys, under the prefix (default ``memstrata:``)::

    qv:<embedder digest>:<text digest>   a query vector, float32 bytes, with a TTL
    sv:{tag}<scope key>                  the scope's version (an integer; INCR on every write)
    se:{tag}<scope key>|<name>           a scope entry: 8 bytes of the version it was computed under, then the payload
    si:{tag}<scope key>                  the names of the scope's entries (so erasure needs no SCAN)
    su:{tag}<org and user>               the keys of a user's scopes with entries (so erasure finds them all)
    epoch                                raised by a user's erasure; a process that sees it move drops its own copies

Every key of a scope carries the scope's hash tag (``backends.redis.scope_tag``), so a scope's keys share one
Redis Cluster slot and a scope's version, entries and index are read and changed together on one node; the
full scope key follows the tag, so two scopes never share a key. A version starts at the clock in
nanoseconds (``SET NX``) rather than at 1, so after Redis loses its data a scope never gets back a version an
old in-process entry still carries.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis

from memstrata.backends.redis import DEFAULT_PREFIX, Client, _split_url, connect, scope_tag
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError
from memstrata.models import Scope
from memstrata.tiers.cache import SharedCache

T = TypeVar("T")
SOCKET_TIMEOUT = 0.25  # a cache that answers slower than the database is worse than none
_VERSION = struct.Struct(">q")
_SCAN_BATCH = 500
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisLayers(SharedCache):
    """``SharedCache`` on one Redis client (plain or cluster)."""

    def __init__(self, client: Client | str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = connect(client, socket_timeout=SOCKET_TIMEOUT) if isinstance(client, str) else client
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"RedisLayers(prefix={self.prefix!r})"

    def _run(self, op: Callable[[], T]) -> T:
        try:
            return op()
        except _UNREACHABLE as exc:
            raise BackendUnavailableError(f"layered cache: cannot reach Redis: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise BackendError(f"layered cache: Redis failed: {exc}") from exc

    # -- keys --------------------------------------------------------------------------------------

    def _vector(self, name: str) -> str:
        return f"{self.prefix}qv:{name}"

    def _scoped(self, kind: str, scope: Scope) -> str:
        return f"{self.prefix}{kind}:{scope_tag(scope)}{scope.key}"

    def _user_index(self, org_id: str, user_id: str) -> str:
        return self._scoped("su", Scope(org_id, user_id))

    def _entry(self, scope: Scope, name: str) -> str:
        return f"{self._scoped('se', scope)}|{name}"

    @property
    def _epoch(self) -> str:
        return f"{self.prefix}epoch"

    # -- query vectors -----------------------------------------------------------------------------

    def get_vectors(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []

        def op() -> list[bytes | None]:
            pipe = self.client.pipeline(transaction=False)  # a cluster client splits it by node
            for key in keys:
                pipe.get(self._vector(key))
            return [raw if isinstance(raw, bytes) else None for raw in pipe.execute()]

        return self._run(op)

    def put_vectors(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        if not items:
            return
        ttl = max(1, int(ttl_seconds * 1000))

        def op() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key, data in items.items():
                pipe.set(self._vector(key), data, px=ttl)
            pipe.execute()

        self._run(op)

    def drop_vectors(self) -> int:
        return self._run(lambda: self._delete_matching(f"{self.prefix}qv:*"))

    # -- scope entries -----------------------------------------------------------------------------

    def read_scope(self, scope: Scope, names: Sequence[str]) -> tuple[int, int, list[bytes | None]]:
        vkey = self._scoped("sv", scope)

        def op() -> tuple[int, int, list[bytes | None]]:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self._epoch)
            pipe.get(vkey)
            for name in names:
                pipe.get(self._entry(scope, name))
            epoch, version, *raw = pipe.execute()
            if version is None:  # first sight of the scope: give it a version no earlier one can equal
                self.client.set(vkey, time.time_ns(), nx=True)
                return int(epoch or 0), int(self.client.get(vkey) or 0), [None] * len(names)
            current = int(version)
            out: list[bytes | None] = []
            for value in raw:
                ok = isinstance(value, bytes) and len(value) >= 8 and _VERSION.unpack_from(value)[0] == current
                out.append(value[8:] if ok else None)
            return int(epoch or 0), current, out

        return self._run(op)

    def put_scope(self, scope: Scope, version: int, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        if not items:
            return
        ttl = max(1, int(ttl_seconds * 1000))
        index = self._scoped("si", scope)
        stamp = _VERSION.pack(version)

        def op() -> None:
            pipe = self.client.pipeline(transaction=True)  # one slot: the entries and the index change together
            for name, payload in items.items():
                pipe.set(self._entry(scope, name), stamp + payload, px=ttl)
            pipe.sadd(index, *items)
            pipe.pexpire(index, ttl)  # outlives every entry it names
            pipe.execute()
            if scope.user_id is not None:  # another slot: its own call
                users = self.client.pipeline(transaction=True)
                users.sadd(self._user_index(scope.org_id, scope.user_id), scope.key)
                users.pexpire(self._user_index(scope.org_id, scope.user_id), ttl)
                users.execute()

        self._run(op)

    def bump(self, scopes: Sequence[Scope]) -> None:
        if not scopes:
            return

        def op() -> None:
            pipe = self.client.pipeline(transaction=False)
            for scope in scopes:
                vkey = self._scoped("sv", scope)
                pipe.set(vkey, time.time_ns(), nx=True)
                pipe.incr(vkey)
            pipe.execute()

        self._run(op)

    def erase(self, scopes: Sequence[Scope]) -> int:
        def op() -> int:
            gone = 0
            for scope in scopes:
                index = self._scoped("si", scope)
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in self.client.smembers(index)]
                pipe = self.client.pipeline(transaction=True)
                if names:
                    pipe.delete(*[self._entry(scope, n) for n in names])
                pipe.delete(index)
                gone += int(pipe.execute()[0]) if names else 0
            self.bump(scopes)
            return gone

        return self._run(op)

    def erase_user(self, org_id: str, user_id: str) -> int:
        index = self._user_index(org_id, user_id)

        def op() -> int:
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in self.client.smembers(index)]
            gone = self.erase([Scope.from_key(k) for k in keys]) if keys else 0
            self.client.delete(index)
            self.client.incr(self._epoch)
            return gone

        return self._run(op)

    def bump_all(self) -> None:
        def op() -> None:
            versions = list(self.client.scan_iter(match=f"{self.prefix}sv:*", count=_SCAN_BATCH))
            for start in range(0, len(versions), _SCAN_BATCH):
                pipe = self.client.pipeline(transaction=False)
                for key in versions[start:start + _SCAN_BATCH]:
                    pipe.incr(key)
                pipe.execute()
            self._delete_matching(f"{self.prefix}se:*")
            self._delete_matching(f"{self.prefix}si:*")
            self._delete_matching(f"{self.prefix}su:*")
            self.client.incr(self._epoch)

        self._run(op)

    def _delete_matching(self, pattern: str) -> int:
        gone = 0
        batch: list[Any] = []
        for key in self.client.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                gone += self._delete(batch)
                batch = []
        return gone + (self._delete(batch) if batch else 0)

    def _delete(self, keys: list[Any]) -> int:
        pipe = self.client.pipeline(transaction=False)  # keys of many slots: one DEL each
        for key in keys:
            pipe.delete(key)
        return sum(int(n) for n in pipe.execute())

    def close(self) -> None:
        self.client.close()


def layers_from_url(url: str) -> RedisLayers:
    """The shared cache at ``redis://host:6379/0`` (``?prefix=`` for a key prefix, ``?cluster=1`` for a
    Redis Cluster reached through the node named)."""
    clean, opts = _split_url(url)
    cluster = opts.get("cluster", "").lower() in ("1", "true", "yes", "on")
    try:
        client = connect(clean, socket_timeout=SOCKET_TIMEOUT, cluster=cluster)
    except ValueError as exc:
        raise ConfigurationError(f"cache_layers: {url!r} is not a Redis URL: {exc}") from exc
    return RedisLayers(client, prefix=opts.get("prefix", DEFAULT_PREFIX))
