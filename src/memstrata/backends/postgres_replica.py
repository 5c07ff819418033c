"""Read replicas for the PostgreSQL store: which reads may go to a streaming standby, and when they must not.

Only reads that serve a caller go to a standby: searches (kNN, keyword, episodes), lookups and listings,
history, the graph, conflicts and stats (``REPLICA_READS``). Reads that decide a write stay on the primary:
dedup by hash and slot, the scope listing erasure walks, keys, data keys, audit, retention.

A read goes to a standby only when all of these hold, else it runs on the primary:

* read-your-writes: after this process commits a write, the primary's WAL insert position is taken
  (``pg_current_wal_insert_lsn()``, read after COMMIT returned, so it lies past the commit record) and kept
  as a fence for the written scope (for the whole store when the write names no scope). A read of that
  scope goes to a standby only once the standby's ``pg_last_wal_replay_lsn()`` has reached the fence. The
  guarantee holds for the process that wrote; another process (another server behind a load balancer) sees
  the write on a standby within the lag bound. Access bookkeeping (``touch``, the audit append, key use)
  sets no fence: a client never reads it back as its own write.
* the standby streams (its WAL receiver runs) and its lag is inside the bound: seconds since the last
  replayed commit while WAL received is still unreplayed (zero when replay has caught up with what
  arrived), and bytes received but not replayed.
* the standby answers: a connection error marks it down for ``retry_seconds``; the read runs on the
  primary, and after that time the standby is tried again.

A standby's position is read at most every ``check_seconds`` (0 = before every read). The cached replay
position only ever trails the real one, so the fence check stays sound; the lag bound is checked on a
value at most that old.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from memstrata.backends.postgres_pool import Pool, direct, masked
from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError, NotFoundError
from memstrata.models import Scope

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: store methods whose reads may be served by a standby
REPLICA_READS = (
    "search_episodes", "vector_search", "vector_search_and_sentences", "keyword_search", "search_candidates", "vectors",
    "memories_and_vectors", "get_episodes", "list_episodes", "get_memories", "list_memories", "count", "history",
    "entities", "memories_of_entities", "neighbours", "conflicts", "scope_of_memory", "stats",
)
#: writes to one scope: they fence that scope only (the scope is the first argument)
SCOPED_WRITES = ("apply", "delete_scope", "resolve_conflict", "add_episodes")
#: writes no caller reads back as its own: they set no fence
BOOKKEEPING_WRITES = ("touch", "touch_key", "append_audit")

# What the running store call is: ("read", scope key or None) may use a standby; ("write", key) fences
# that key and keeps nested reads on the primary; ("bookkeeping", None) writes without a fence.
_CALL: ContextVar[tuple[str, str | None] | None] = ContextVar("memstrata_pg_call", default=None)

_STATUS = """
SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE coalesce(status, 'streaming') = 'streaming')
"""
_MAX_FENCES = 10_000
_UNKNOWN = 1 << 64  # a fence no standby passes: a write committed whose WAL position could not be read
_URL_OPTIONS = {"replica": "replicas", "replica_max_lag": "max_lag_seconds",
                "replica_max_lag_bytes": "max_lag_bytes", "replica_retry": "retry_seconds",
                "replica_check": "check_seconds"}


def _one(conn: Any, statement: str) -> tuple[Any, ...]:
    row = conn.execute(statement).fetchone()
    if row is None:  # pragma: no cover - these statements always return a row
        raise BackendError(f"postgres store: no row from {statement.split()[1]}")
    return tuple(row)


def lsn(text: str) -> int:
    """``'16/B374D848'`` as a number, for comparing WAL positions."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class ReplicaOptions:
    """Standby URLs and the rules for using them (see the module docstring)."""

    replicas: tuple[str, ...] = ()
    max_lag_seconds: float = 5.0
    max_lag_bytes: int = 16 * 1024 * 1024
    retry_seconds: float = 5.0
    check_seconds: float = 0.05

    def __post_init__(self) -> None:
        for name in ("max_lag_seconds", "max_lag_bytes", "retry_seconds", "check_seconds"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"postgres store: {name} must not be negative")
        for url in self.replicas:
            if not url.startswith(("postgresql://", "postgres://")):
                raise ConfigurationError(f"postgres store: a replica must be a postgresql:// URL, got {masked(url)!r}")


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """The store URL without memstrata's replica options (libpq refuses unknown ones), and those options.

    ``?replica=`` may repeat or hold several URLs separated by commas; the URLs inside are percent-encoded.
    """
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        option = _URL_OPTIONS.get(name)
        if option is None:
            kept.append((name, value))
        elif option == "replicas":
            options["replicas"] = (*options.get("replicas", ()), *(u.strip() for u in value.split(",") if u.strip()))
        else:
            try:
                options[option] = int(value) if option == "max_lag_bytes" else float(value)
            except ValueError:
                raise ConfigurationError(f"postgres store: {name}={value!r} is not a number") from None
    return urlunsplit(parts._replace(query=urlencode(kept))), options


@dataclass
class _Standby:
    url: str
    pool: Pool | None = None
    down_until: float = 0.0
    checked_at: float = float("-inf")
    replay: int = -1
    usable: bool = False
    why: str = "unchecked"


@dataclass
class _Counts:
    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, target: str, reason: str) -> None:
        with self.lock:
            self.values[(target, reason)] = self.values.get((target, reason), 0) + 1


class ReplicaRouter:
    """Sends the store's calls to the primary pool or a standby's, by the rules in the module docstring."""

    def __init__(self, primary: Pool, options: ReplicaOptions, pool_args: dict[str, Any]) -> None:
        self.primary = primary
        self.options = options
        self._pool_args = pool_args
        self._standbys = [_Standby(url) for url in options.replicas]
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._fences: dict[str | None, int] = {}
        self._unsettled = 0  # writes with an unknown position since the fences were last settled
        self.counts = _Counts()

    # -- writes --------------------------------------------------------------------------------------

    def run(self, fn: Callable[[Any], T], what: str, *, write: bool = False, primary: bool = False) -> T:
        """Run ``fn`` on the primary or a standby. ``primary``: a read that decides a write (inside a write
        section) always goes to the primary."""
        call = _CALL.get()
        if write:
            result = self.primary.run(fn, what, write=True)
            if call is None or call[0] != "bookkeeping":
                self._fence(call[1] if call is not None and call[0] == "write" else None)
            return result
        if primary:
            self.counts.add("primary", "write section")
            return self.primary.run(fn, what)
        if call is None or call[0] != "read":
            self.counts.add("primary", "not routed")
            return self.primary.run(fn, what)
        return self._read(fn, what, call[1])

    def _primary_position(self) -> int:
        text: str = self.primary.run(lambda conn: _one(conn, "SELECT pg_current_wal_insert_lsn()::text")[0],
                                     "read the WAL position")
        return lsn(text)

    def _fence(self, key: str | None) -> None:
        try:
            at = self._primary_position()
        except BackendError:
            at = _UNKNOWN  # committed, but where is not known: settled by the next read that needs it
        with self._lock:
            self._unsettled += at == _UNKNOWN
            if key not in self._fences and len(self._fences) >= _MAX_FENCES:
                # Many scopes written while a standby lags or is away: one fence for all is as safe.
                self._fences = {None: max(at, *self._fences.values())}
                return
            self._fences[key] = max(at, self._fences.get(key, 0))

    def _fence_for(self, key: str | None) -> int:
        if self._unsettled:
            self._settle()
        with self._lock:
            if key is None:
                return max(self._fences.values(), default=0)
            return max(self._fences.get(key, 0), self._fences.get(None, 0))

    def _settle(self) -> None:
        """Give unknown fences the primary's position now, which lies past every commit made before."""
        seen = self._unsettled
        try:
            now = self._primary_position()
        except BackendError:
            return  # the fences stay unpassable: reads go to the primary
        with self._lock:
            if self._unsettled != seen:
                return  # another such write came meanwhile, perhaps after ``now``: settle on a later read
            self._fences = {k: now if v == _UNKNOWN else v for k, v in self._fences.items()}
            self._unsettled = 0

    # -- reads ---------------------------------------------------------------------------------------

    def _read(self, fn: Callable[[Any], T], what: str, key: str | None) -> T:
        reason = "down"
        n = len(self._standbys)
        start = next(self._turn)
        for standby in (self._standbys[(start + i) % n] for i in range(n)):
            if not self._usable(standby):
                reason = standby.why
                continue
            if standby.replay < self._fence_for(key):
                reason = "own write"
                continue
            try:
                assert standby.pool is not None
                result = standby.pool.run(fn, what)
            except NotFoundError:
                raise
            except BackendUnavailableError as exc:
                self._mark_down(standby, str(exc))
                reason = "down"
                continue
            except BackendError:
                reason = "error"  # e.g. a query cancelled by a conflict with recovery: the primary answers it
                continue
            self.counts.add("replica", "read")
            return result
        self.counts.add("primary", reason)
        return self.primary.run(fn, what)

    def _usable(self, standby: _Standby) -> bool:
        now = time.monotonic()
        if now < standby.down_until:
            return False
        if now - standby.checked_at < self.options.check_seconds:
            return standby.usable
        try:
            if standby.pool is None:
                self._open(standby)
            assert standby.pool is not None
            row: tuple[Any, ...] = standby.pool.run(lambda conn: _one(conn, _STATUS),
                                                    "read the replica's position")
        except BackendError as exc:
            self._mark_down(standby, str(exc))
            return False
        in_recovery, replay, lag_bytes, lag_seconds, streaming = row
        o = self.options
        if not in_recovery or replay is None:
            usable, why = False, "not a standby"
        elif not streaming:
            usable, why = False, "not streaming"
        elif lag_seconds is None or lag_seconds > o.max_lag_seconds or lag_bytes > o.max_lag_bytes:
            usable, why = False, "lag"
        else:
            usable, why = True, "ok"
        standby.replay = lsn(replay) if replay else -1
        standby.usable, standby.why, standby.checked_at = usable, why, time.monotonic()
        self._prune(standby.replay)
        return usable

    def _open(self, standby: _Standby) -> None:
        """The standby's pool, once one connection succeeds: a pool opened on a dead server would wait out
        its whole timeout retrying, and the read waiting for it would too."""
        with self._open_lock:
            if standby.pool is not None:
                return
            direct(standby.url, self._pool_args["connect_timeout"], "open", lambda conn: None)
            # A standby waits at most a second for a free connection: a busy one sends its reads to the primary.
            args = {**self._pool_args, "pool_timeout": min(self._pool_args["pool_timeout"], 1.0)}
            standby.pool = Pool(standby.url, **args)

    def _prune(self, replay: int) -> None:
        """Forget fences every standby has passed (with one standby: that one)."""
        floor = min((s.replay for s in self._standbys), default=replay)
        with self._lock:
            for key in [k for k, at in self._fences.items() if at <= floor]:
                del self._fences[key]

    def _mark_down(self, standby: _Standby, why: str) -> None:
        standby.down_until = time.monotonic() + self.options.retry_seconds
        standby.usable, standby.why, standby.checked_at = False, "down", float("-inf")

    # -- the rest ------------------------------------------------------------------------------------

    def read_counts(self) -> dict[str, dict[str, int]]:
        """Reads served so far: ``{"replica": {"read": n}, "primary": {reason: n}}``."""
        out: dict[str, dict[str, int]] = {"replica": {}, "primary": {}}
        with self.counts.lock:
            for (target, reason), n in self.counts.values.items():
                out[target][reason] = n
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"url": masked(s.url), "state": s.why} for s in self._standbys]

    def close(self) -> None:
        for standby in self._standbys:
            if standby.pool is not None:
                standby.pool.close()


@contextmanager
def _call(kind: str, key: str | None) -> Iterator[None]:
    token = _CALL.set((kind, key))
    try:
        yield
    finally:
        _CALL.reset(token)


def _scope_key(args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
    first = args[0] if args else kwargs.get("scope", kwargs.get("episodes"))
    if isinstance(first, Scope):
        return first.key
    if isinstance(first, list | tuple):  # add_episodes: one scope when all the episodes share it
        keys = {getattr(getattr(e, "scope", None), "key", None) for e in first}
        return keys.pop() if len(keys) == 1 else None
    return None


def _wrap(method: F, kind: str) -> F:
    @functools.wraps(method)
    def routed(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.router is None:
            return method(self, *args, **kwargs)
        outer = _CALL.get()
        if kind == "read" and outer is not None and outer[0] != "read":
            return method(self, *args, **kwargs)  # a read inside a write stays on the primary
        with _call(kind, None if kind == "bookkeeping" else _scope_key(args, kwargs)):
            return method(self, *args, **kwargs)

    return routed  # type: ignore[return-value]


def route_calls(cls: type[T]) -> type[T]:
    """Class decorator: mark the store's reads, scoped writes and bookkeeping writes for the router."""
    for kind, names in (("read", REPLICA_READS), ("write", SCOPED_WRITES), ("bookkeeping", BOOKKEEPING_WRITES)):
        for name in names:
            setattr(cls, name, _wrap(getattr(cls, name), kind))
    return cls
