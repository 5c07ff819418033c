"""Short-term and working tiers on Redis, and a query-embedding cache.

Recent turns of a conversation live in one Redis list per (scope, conversation): RPUSH + LTRIM keep it
bounded, EXPIRE gives it the tier's TTL, and ``recent`` is one LRANGE. A small set per scope names its
conversations, so clearing a scope needs no SCAN. Every key holds the scope key, which is prefix-free
(length-prefixed ids), so no two scopes can share a key.

Every key of a scope carries the same hash tag (``{…}``, a digest of the scope key), so on a Redis Cluster
all of a scope's keys live in one hash slot: the multi-key transactions below (push a turn and index
its conversation; clear a scope) run on one node, and different scopes spread over the masters. Open a
cluster with ``redis://host:port/?cluster=1`` naming any one node (``connect`` discovers the rest).

Sockets have short timeouts and a dead connection is retried once, which is what reconnects after
Redis restarts. When Redis cannot be reached, calls raise BackendUnavailableError — or, with
``fallback=True``, are served by the in-process tiers (a warning is logged once per outage) until Redis
answers again; turns written during the outage stay in this process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from memstrata.backends.inprocess import DEFAULT_TTL_SECONDS, InProcessShortTerm, InProcessWorking
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError
from memstrata.models import Scope
from memstrata.tiers.base import ShortTermTier, Turn, WorkingState, WorkingTier

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "redis tiers: the driver is not installed; pip install 'memstrata[redis]' (redis)"
    ) from exc

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PREFIX = "memstrata:"
SOCKET_TIMEOUT = 0.5
RETRY_INTERVAL = 2.0  # while Redis is down, how often a fallback tier tries it again
Client = redis.Redis | RedisCluster
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def connect(url: str, *, socket_timeout: float = SOCKET_TIMEOUT, cluster: bool = False) -> Client:
    """A client with bounded timeouts and one retry (which reconnects a connection Redis dropped).

    ``cluster=True`` gives a Redis Cluster client that starts from the node in ``url``."""
    if cluster:
        return RedisCluster.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 1),
        )
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.exceptions.ConnectionError],
        health_check_interval=30,
    )


class _Guard:
    """Runs Redis calls: translates errors, or switches to a fallback while Redis is away."""

    def __init__(self, client: Client, what: str, fallback: bool) -> None:
        self.client = client
        self.what = what
        self.fallback = fallback
        self._down_since: float | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    def where(self) -> str:
        pool = getattr(self.client, "connection_pool", None)
        if pool is None:  # a cluster client: name the node it started from
            node = self.client.get_default_node() if hasattr(self.client, "get_default_node") else None
            return f"cluster via {node.host}:{node.port}" if node is not None else "cluster"
        kw = pool.connection_kwargs
        return str(kw.get("path") or f"{kw.get('host', '?')}:{kw.get('port', '?')}")

    def call(self, op: Callable[[], T], local: Callable[[], T]) -> T:
        if self.fallback and self._down_since is not None and time.monotonic() < self._next_try:
            return local()
        try:
            result = op()
        except _UNREACHABLE as exc:
            if not self.fallback:
                raise BackendUnavailableError(
                    f"{self.what}: cannot reach Redis at {self.where()}: {exc}; pass fallback=True to serve from "
                    "process memory while it is away"
                ) from exc
            with self._lock:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("%s: Redis at %s is unreachable (%s); using process memory until it returns",
                                self.what, self.where(), exc)
                self._next_try = time.monotonic() + RETRY_INTERVAL
            return local()
        except redis.exceptions.RedisError as exc:
            raise BackendError(f"{self.what}: Redis at {self.where()} failed: {exc}") from exc
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    log.warning("%s: Redis at %s is back after %.0f s", self.what, self.where(),
                                time.monotonic() - self._down_since)
                    self._down_since = None
        return result

    @property
    def degraded(self) -> bool:
        """True while calls are served by the fallback."""
        return self._down_since is not None


def _turn_json(t: Turn) -> str:
    return json.dumps({"r": t.role, "c": t.content, "t": t.at, "e": t.episode_id}, ensure_ascii=False)


def _turn(raw: Any) -> Turn:
    d = json.loads(raw)
    return Turn(d["r"], d["c"], d["t"], d.get("e"))


def scope_tag(scope: Scope) -> str:
    """The hash tag every key of ``scope`` carries: one Redis Cluster slot per scope. A digest, so that
    braces inside ids cannot change which part of a key Redis hashes."""
    return "{" + hashlib.sha256(scope.key.encode()).hexdigest()[:16] + "}"


def scope_key(prefix: str, kind: str, scope: Scope, conversation_id: str | None = None) -> str:
    base = f"{prefix}{kind}:{scope_tag(scope)}{scope.key}"
    return base if conversation_id is None else f"{base}|{conversation_id}"


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisShortTerm(ShortTermTier):
    """Recent turns per (scope, conversation) in a Redis list with a TTL (default 24 h) and a length cap."""

    def __init__(
        self,
        client: Client | str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_turns: int = 50,
        prefix: str = DEFAULT_PREFIX,
        fallback: bool = False,
    ) -> None:
        self.client = connect(client) if isinstance(client, str) else client
        self.ttl = ttl_seconds
        self.max_turns = max_turns
        self.prefix = prefix
        self._guard = _Guard(self.client, "redis short-term tier", fallback)
        self._local = InProcessShortTerm(ttl_seconds, max_turns)

    def _key(self, scope: Scope, conversation_id: str) -> str:
        return scope_key(self.prefix, "st", scope, conversation_id)

    def _index(self, scope: Scope) -> str:
        return scope_key(self.prefix, "stc", scope)

    @property
    def degraded(self) -> bool:
        return self._guard.degraded

    def push(self, scope: Scope, conversation_id: str, turns: Sequence[Turn]) -> None:
        if not turns:
            return
        key, index, ttl = self._key(scope, conversation_id), self._index(scope), max(1, int(self.ttl * 1000))

        def op() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.rpush(key, *[_turn_json(t) for t in turns])
            pipe.ltrim(key, -self.max_turns, -1)
            pipe.pexpire(key, ttl)
            pipe.sadd(index, conversation_id)
            pipe.pexpire(index, ttl)
            pipe.execute()

        self._guard.call(op, lambda: self._local.push(scope, conversation_id, turns))

    def recent(self, scope: Scope, conversation_id: str, limit: int = 10) -> list[Turn]:
        if limit <= 0:
            return []
        key = self._key(scope, conversation_id)
        return self._guard.call(
            lambda: [_turn(r) for r in self.client.lrange(key, -limit, -1)],
            lambda: self._local.recent(scope, conversation_id, limit),
        )

    def clear(self, scope: Scope, conversation_id: str | None = None) -> int:
        index = self._index(scope)

        def op() -> int:
            if conversation_id is not None:
                pipe = self.client.pipeline(transaction=True)
                pipe.delete(self._key(scope, conversation_id))
                pipe.srem(index, conversation_id)
                return int(pipe.execute()[0])
            convs = [_text(c) for c in self.client.smembers(index)]
            keys = [self._key(scope, c) for c in convs]
            pipe = self.client.pipeline(transaction=True)
            if keys:
                pipe.delete(*keys)
            pipe.delete(index)
            return int(pipe.execute()[0]) if keys else 0

        gone = self._guard.call(op, lambda: 0)
        return gone + self._local.clear(scope, conversation_id)

    def close(self) -> None:
        self.client.close()


CAS_ATTEMPTS = 50
# KEYS: the state, the scope's index of conversations. ARGV: whether a state was read ("1"/"0"), what was
# read, the new state, the TTL in ms, the conversation id. Stores the new state only if the key still holds
# what was read; returns 1 if it did, else 0.
_CAS_SCRIPT = """
local now = redis.call('GET', KEYS[1])
if (ARGV[1] == '1' and now ~= ARGV[2]) or (ARGV[1] == '0' and now) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""


class RedisWorking(WorkingTier):
    """Working state per (scope, conversation) as a JSON snapshot with a TTL."""

    def __init__(
        self,
        client: Client | str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        prefix: str = DEFAULT_PREFIX,
        fallback: bool = False,
    ) -> None:
        self.client = connect(client) if isinstance(client, str) else client
        self.ttl = ttl_seconds
        self.prefix = prefix
        self._guard = _Guard(self.client, "redis working tier", fallback)
        self._local = InProcessWorking()
        self._cas = self.client.register_script(_CAS_SCRIPT)

    def _key(self, scope: Scope, conversation_id: str) -> str:
        return scope_key(self.prefix, "wk", scope, conversation_id)

    def _index(self, scope: Scope) -> str:
        return scope_key(self.prefix, "wkc", scope)

    def get(self, scope: Scope, conversation_id: str) -> WorkingState | None:
        def op() -> WorkingState | None:
            raw = self.client.get(self._key(scope, conversation_id))
            return None if raw is None else WorkingState.from_dict(json.loads(raw))

        return self._guard.call(op, lambda: self._local.get(scope, conversation_id))

    def put(self, scope: Scope, conversation_id: str, state: WorkingState) -> None:
        ttl = max(1, int(self.ttl * 1000))

        def op() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self._key(scope, conversation_id), json.dumps(state.to_dict(), ensure_ascii=False), px=ttl)
            pipe.sadd(self._index(scope), conversation_id)
            pipe.pexpire(self._index(scope), ttl)
            pipe.execute()

        self._guard.call(op, lambda: self._local.put(scope, conversation_id, state))

    def update(self, scope: Scope, conversation_id: str,
               change: Callable[[WorkingState | None], WorkingState]) -> WorkingState:
        """Compare-and-set: the state is read, changed here and written by a script that stores it only
        if the key still holds what was read (both keys of the script share the scope's slot). On a
        conflict ``change`` runs again on the newer state."""
        key, index = self._key(scope, conversation_id), self._index(scope)
        ttl = max(1, int(self.ttl * 1000))

        def op() -> WorkingState:
            for attempt in range(CAS_ATTEMPTS):
                raw = self.client.get(key)
                state = change(None if raw is None else WorkingState.from_dict(json.loads(raw)))
                new = json.dumps(state.to_dict(), ensure_ascii=False)
                expected = [b"0", b""] if raw is None else [b"1", raw]
                if self._cas(keys=[key, index], args=[*expected, new, ttl, conversation_id]):
                    return state
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # let the other writer finish first
            raise BackendError(f"redis working tier: the state of {conversation_id!r} kept changing under "
                               f"{CAS_ATTEMPTS} attempts to update it")

        return self._guard.call(op, lambda: self._local.update(scope, conversation_id, change))

    def clear(self, scope: Scope, conversation_id: str | None = None) -> int:
        index = self._index(scope)

        def op() -> int:
            if conversation_id is not None:
                pipe = self.client.pipeline(transaction=True)
                pipe.delete(self._key(scope, conversation_id))
                pipe.srem(index, conversation_id)
                return int(pipe.execute()[0])
            keys = [self._key(scope, _text(c)) for c in self.client.smembers(index)]
            pipe = self.client.pipeline(transaction=True)
            if keys:
                pipe.delete(*keys)
            pipe.delete(index)
            return int(pipe.execute()[0]) if keys else 0

        return self._guard.call(op, lambda: 0) + self._local.clear(scope, conversation_id)

    def close(self) -> None:
        self.client.close()


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Take memstrata's own options (``fallback``, ``ttl``, ``prefix``) out of a Redis URL's query."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k in ("fallback", "ttl", "prefix", "cluster"):
            ours[k] = v
        else:
            theirs.append((k, v))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def short_term_from_url(
    url: str,
    *,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    fallback: bool = False,
    max_turns: int = 50,
) -> tuple[RedisShortTerm, RedisWorking]:
    """Short-term and working tiers sharing one client: ``redis://host:6379/0[?fallback=1&ttl=3600]``;
    ``?cluster=1`` opens a Redis Cluster from the node named."""
    clean, opts = _split_url(url)
    if "fallback" in opts:
        fallback = opts["fallback"].lower() in ("1", "true", "yes", "on")
    if "ttl" in opts:
        try:
            ttl_seconds = float(opts["ttl"])
        except ValueError:
            raise ConfigurationError(f"cache: ttl={opts['ttl']!r} in {url!r} is not a number of seconds") from None
    prefix = opts.get("prefix", DEFAULT_PREFIX)
    cluster = opts.get("cluster", "").lower() in ("1", "true", "yes", "on")
    try:
        client = connect(clean, cluster=cluster)
    except ValueError as exc:
        raise ConfigurationError(f"cache: {url!r} is not a Redis URL: {exc}") from exc
    return (
        RedisShortTerm(client, ttl_seconds=ttl_seconds, max_turns=max_turns, prefix=prefix, fallback=fallback),
        RedisWorking(client, ttl_seconds=ttl_seconds, prefix=prefix, fallback=fallback),
    )
