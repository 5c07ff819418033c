"""The PostgreSQL store's connections: a psycopg pool with bounded timeouts and error translation.

A read that meets a dead connection (the server restarted) checks the pool and retries once; a write is
retried only when it failed before COMMIT was sent, so it is applied exactly once or reported. A pool
stuck in psycopg_pool's reconnection backoff after an outage is replaced once the server answers again.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from memstrata.errors import BackendError, BackendUnavailableError, ConfigurationError

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "postgres store: the driver is not installed; pip install 'memstrata[postgres]' (psycopg[binary], psycopg-pool)"
    ) from exc

T = TypeVar("T")


def masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class Pool:
    """Pooled connections to one database (autocommit; ``run`` opens a transaction for a write)."""

    def __init__(self, url: str, *, pool_min: int, pool_max: int, connect_timeout: float, pool_timeout: float,
                 application_name: str) -> None:
        self.url = url
        self._connect_timeout = max(1, int(round(connect_timeout)))  # libpq takes whole seconds
        self._pool_timeout = pool_timeout
        self._pool_min, self._pool_max = pool_min, max(pool_min, pool_max)
        self._conn_kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": self._connect_timeout,
            "application_name": application_name,
        }
        self.closed = False
        self._down = False
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        try:
            self._pool.wait(timeout=pool_timeout + self._connect_timeout)
        except PoolTimeout as exc:
            self._pool.close(timeout=1)
            raise BackendUnavailableError(
                f"postgres store: cannot reach {masked(url)} (open): {self._probe() or 'no connection'}"
            ) from exc

    def _new_pool(self) -> ConnectionPool:
        pool = ConnectionPool(
            self.url,
            min_size=self._pool_min,
            max_size=self._pool_max,
            kwargs=self._conn_kwargs,
            open=False,
            timeout=self._pool_timeout,
            name="memstrata",
        )
        pool.open(wait=False)
        return pool

    def _probe(self) -> str | None:
        """Connect once outside the pool (bounded by connect_timeout): None if the server answers, else why not."""
        try:
            psycopg.connect(self.url, **self._conn_kwargs).close()
            return None
        except psycopg.Error as exc:
            lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            return lines[0] if lines else type(exc).__name__

    def _pool_timed_out(self, pool: ConnectionPool, what: str) -> BackendUnavailableError | None:
        """After a pool timeout: the error to raise, or None when a fresh pool was put in place to retry with.

        psycopg_pool reconnects with an exponential backoff; after an outage of a few seconds its next
        attempt may be many seconds away although the server is back. A pool that is not simply busy
        is then replaced, so the first call after a restart succeeds.
        """
        reason = self._probe()
        if reason is not None:
            self._down = True
            return BackendUnavailableError(f"postgres store: cannot reach {masked(self.url)} ({what}): {reason}")
        stats = pool.get_stats()
        if stats.get("pool_size", 0) >= self._pool_max and not stats.get("pool_available", 0):
            return BackendUnavailableError(
                f"postgres store: {what}: all {self._pool_max} connections stayed busy for {self._pool_timeout:g} s;"
                " raise pool_max or pool_timeout"
            )
        self._replace_pool(pool)
        return None

    def _replace_pool(self, pool: ConnectionPool) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = self._new_pool()
                pool.close(timeout=0)

    def _check_back(self, what: str) -> None:
        """While the server was last found down, probe it instead of waiting out a pool timeout per call."""
        reason = self._probe()
        if reason is not None:
            raise BackendUnavailableError(f"postgres store: cannot reach {masked(self.url)} ({what}): {reason}")
        with self._lock:
            if not self._down:
                return  # another thread already brought it back
            self._down = False
            stale, self._pool = self._pool, self._new_pool()  # the old one may be deep in its reconnection backoff
        stale.close(timeout=0)

    def _wrap(self, exc: psycopg.Error, what: str, conn: psycopg.Connection | None) -> BackendError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.OperationalError) and (conn is None or conn.broken or conn.closed):
            return BackendUnavailableError(f"postgres store: {what}: lost the connection to {masked(self.url)}: {text}")
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return BackendError(f"postgres store: {what}: the statement timed out: {text}")
        return BackendError(f"postgres store: {what}: {text}")

    def run(self, fn: Callable[[psycopg.Connection], T], what: str, *, write: bool = False) -> T:
        """Run ``fn`` on a pooled connection (in one transaction when ``write``), translating errors.

        A dead connection met before COMMIT is replaced and the call runs once more: nothing of a
        failed transaction was applied, so repeating it cannot apply it twice.
        """
        if self.closed:
            raise BackendUnavailableError("postgres store: closed")
        if self._down:
            self._check_back(what)
        for attempt in (0, 1):
            conn: psycopg.Connection | None = None
            pool = self._pool
            try:
                with pool.connection(timeout=self._pool_timeout) as conn:
                    return self._transaction(conn, fn, what) if write else fn(conn)
            except PoolTimeout as exc:
                error = self._pool_timed_out(pool, what)
                if error is None and attempt == 0:
                    continue
                raise (error or BackendUnavailableError(f"postgres store: {what}: no connection")) from exc
            except psycopg.OperationalError as exc:
                dead = conn is None or conn.broken or conn.closed
                if attempt == 0 and (dead or isinstance(exc, psycopg.errors.TransactionRollback)):
                    self._recover()
                    continue
                raise self._wrap(exc, what, conn) from exc
            except psycopg.Error as exc:
                raise self._wrap(exc, what, conn) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def spare(self) -> bool:
        """Whether a call now finds a connection without waiting for another call to give one back: one is idle
        and nobody queues for it, or the pool may still open one."""
        stats = self._pool.get_stats()
        if stats.get("requests_waiting", 0):
            return False
        return stats.get("pool_available", 0) > 0 or stats.get("pool_size", 0) < self._pool_max

    def _transaction(self, conn: psycopg.Connection, fn: Callable[[psycopg.Connection], T], what: str) -> T:
        conn.execute("BEGIN")
        try:
            result = fn(conn)
        except BaseException:
            if not (conn.broken or conn.closed):
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass
            raise
        try:
            conn.execute("COMMIT")
        except psycopg.OperationalError as exc:
            if conn.broken or conn.closed:
                raise BackendUnavailableError(
                    f"postgres store: {what}: the connection to {masked(self.url)} broke while committing;"
                    f" the write may or may not have been applied: {exc}"
                ) from exc
            raise
        return result

    def _recover(self) -> None:
        try:
            self._pool.check()  # drop every idle connection the restart killed, not just this one
        except psycopg.Error:  # pragma: no cover - check() handles its own failures
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pool.close(timeout=5)


def direct(url: str, connect_timeout: float, what: str, fn: Callable[[psycopg.Connection], T]) -> T:
    """Run ``fn`` on a connection of its own (autocommit), with the store's error translation."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(round(connect_timeout))),
                               application_name="memstrata")
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(f"postgres store: cannot reach {masked(url)}: {str(exc).strip()}") from exc
    except psycopg.Error as exc:
        raise BackendError(f"postgres store: cannot connect to {masked(url)}: {str(exc).strip()}") from exc
    try:
        with conn:
            return fn(conn)
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if conn.broken:
            raise BackendUnavailableError(
                f"postgres store: {what}: lost the connection to {masked(url)}: {text}"
            ) from exc
        raise BackendError(f"postgres store: {what} failed: {text}") from exc
