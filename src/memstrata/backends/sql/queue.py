"""The ingestion queue on the SQL stores' own database (``tiers.queue.IngestQueue``).

PostgreSQL claims with ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``: concurrent workers
skip each other's rows instead of waiting. SQLite has one writer at a time, so the same statement inside its
``BEGIN IMMEDIATE`` transaction is already exclusive. On both, a claim is a lease (``lease_until``): a
worker killed mid-batch holds nothing once its lease has passed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memstrata.backends.sql.store import SQLStore
from memstrata.tiers.queue import Ingestion, IngestQueue

COLUMNS = ("id, scope_key, idempotency_key, episode_ids, infer, conversation_id, state, attempts, leased_by,"
           " lease_until, next_at, error, report, created_at, updated_at")
_READY = ("state IN ('new', 'queued') AND next_at <= ? AND (lease_until IS NULL OR lease_until < ?)")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _row(r: Sequence[Any]) -> Ingestion:
    return Ingestion(id=r[0], scope_key=r[1], idempotency_key=r[2], episode_ids=list(_json(r[3])),
                     infer=bool(r[4]), conversation_id=r[5], state=r[6], attempts=int(r[7]),
                     lease_until=None if r[9] is None else float(r[9]), next_at=float(r[10]), error=r[11],
                     report=_json(r[12]) if r[12] is not None else None, created_at=float(r[13]),
                     updated_at=float(r[14]))


class SQLQueue(IngestQueue):
    def __init__(self, store: SQLStore) -> None:
        self.store, self.d = store, store.d

    def _exec(self, what: str, statement: str, args: Sequence[Any], *, write: bool = True) -> list[Any]:
        def run(conn: Any) -> list[Any]:
            cur = conn.execute(self.d.q(statement), args)
            return list(cur.fetchall()) if cur.description else [cur.rowcount]

        return self.store._run(run, f"ingestions: {what}", write=write)

    def create(self, ing: Ingestion, lease: float) -> Ingestion:
        j = self.d.json
        inserted = self._exec(
            "create",
            f"INSERT INTO ingestions ({COLUMNS}) VALUES (?,?,?,{j},?,?,'new',0,NULL,?,?,NULL,NULL,?,?)"
            " ON CONFLICT DO NOTHING",
            (ing.id, ing.scope_key, ing.idempotency_key, json.dumps(ing.episode_ids), ing.infer,
             ing.conversation_id, ing.created_at + lease, ing.created_at, ing.created_at, ing.created_at),
        )
        if inserted and inserted[0] == 1:
            return self.get(ing.scope_key, ing.id) or ing
        rows = self._exec("find by key", f"SELECT {COLUMNS} FROM ingestions WHERE scope_key = ?"
                          " AND idempotency_key = ?", (ing.scope_key, ing.idempotency_key), write=False)
        if not rows:  # the id itself collided: ids are uuid4, so this is a caller passing one twice
            found = self.get(ing.scope_key, ing.id)
            if found is None:
                raise KeyError(ing.id)
            return found
        return _row(rows[0])

    def publish(self, ingestion_id: str, at: float) -> None:
        self._exec("publish", "UPDATE ingestions SET state = 'queued', lease_until = NULL, next_at = ?,"
                   " updated_at = ? WHERE id = ? AND state = 'new'", (at, at, ingestion_id))

    def claim(self, worker: str, limit: int, lease: float, now: float) -> list[Ingestion]:
        lock = " FOR UPDATE SKIP LOCKED" if self.d.name == "postgres" else ""
        rows = self._exec(
            "claim",
            "UPDATE ingestions SET leased_by = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?"
            f" WHERE id IN (SELECT id FROM ingestions WHERE {_READY} ORDER BY next_at, id LIMIT ?{lock})"
            f" RETURNING {COLUMNS}",
            (worker, now + lease, now, now, now, limit),
        )
        return sorted((_row(r) for r in rows), key=lambda i: (i.next_at, i.id))

    def extend(self, ids: Sequence[str], worker: str, lease: float, now: float) -> None:
        if ids:
            clause, args = self.d.in_list("id", list(ids))
            self._exec("extend lease", f"UPDATE ingestions SET lease_until = ? WHERE leased_by = ? AND {clause}"
                       " AND state IN ('new', 'queued')", [now + lease, worker, *args])

    def finish(self, ingestion_id: str, worker: str, report: dict[str, Any], now: float) -> None:
        self._exec("finish", f"UPDATE ingestions SET state = 'done', report = {self.d.json}, lease_until = NULL,"
                   " error = NULL, updated_at = ? WHERE id = ? AND leased_by = ? AND state IN ('new', 'queued')",
                   (json.dumps(report), now, ingestion_id, worker))

    def retry_later(self, ingestion_id: str, worker: str, error: str, next_at: float, dead: bool,
                    now: float) -> None:
        self._exec("retry later", "UPDATE ingestions SET state = ?, error = ?, next_at = ?, lease_until = NULL,"
                   " updated_at = ? WHERE id = ? AND leased_by = ? AND state IN ('new', 'queued')",
                   ("dead" if dead else "queued", error[:2000], next_at, now, ingestion_id, worker))

    def get(self, scope_key: str, ingestion_id: str) -> Ingestion | None:
        rows = self._exec("get", f"SELECT {COLUMNS} FROM ingestions WHERE scope_key = ? AND id = ?",
                          (scope_key, ingestion_id), write=False)
        return _row(rows[0]) if rows else None

    def list(self, scope_key: str, states: Sequence[str] | None, limit: int) -> list[Ingestion]:
        statement, args = f"SELECT {COLUMNS} FROM ingestions WHERE scope_key = ?", [scope_key]
        if states:
            clause, more = self.d.in_list("state", list(states))
            statement, args = f"{statement} AND {clause}", [*args, *more]
        rows = self._exec("list", f"{statement} ORDER BY created_at DESC, id LIMIT ?", [*args, limit], write=False)
        return [_row(r) for r in rows]

    def requeue(self, scope_key: str, ingestion_id: str, now: float) -> Ingestion | None:
        self._exec("requeue", "UPDATE ingestions SET state = 'queued', attempts = 0, error = NULL, next_at = ?,"
                   " lease_until = NULL, leased_by = NULL, updated_at = ?"
                   " WHERE scope_key = ? AND id = ? AND state IN ('queued', 'dead')",
                   (now, now, scope_key, ingestion_id))
        return self.get(scope_key, ingestion_id)

    def counts(self) -> dict[str, int]:
        rows = self._exec("counts", "SELECT state, count(*) FROM ingestions GROUP BY state", (), write=False)
        return {str(r[0]): int(r[1]) for r in rows}


def queue_of(store: Any) -> IngestQueue | None:
    """The store's ingestion queue, when its engine keeps one (the SQL stores do)."""
    return SQLQueue(store) if isinstance(store, SQLStore) else None
