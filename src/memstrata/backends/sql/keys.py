"""API keys (the KeyTier) on the SQL stores, one statement set for both engines."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from memstrata.backends.sql.rows import KEY_COLUMNS, marks
from memstrata.errors import NotFoundError
from memstrata.tiers.keys import KeyRecord, KeyTier

if TYPE_CHECKING:
    from memstrata.backends.sql.dialect import Dialect

T = TypeVar("T")


def _ids(value: tuple[str, ...] | None) -> str | None:
    return None if value is None else json.dumps(list(value))


def _tuple(raw: Any) -> tuple[str, ...] | None:
    """A JSON list column as read: text (SQLite) or decoded (jsonb)."""
    if raw is None:
        return None
    return tuple(raw) if isinstance(raw, list) else tuple(json.loads(raw))


def key_record(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        id=row[0], org_id=row[1], name=row[2], key_hash=row[3], prefix=row[4], scopes=_tuple(row[5]) or (),
        user_ids=_tuple(row[6]), agent_ids=_tuple(row[7]), created_at=row[8], revoked_at=row[9],
        last_used_at=row[10],
    )


class SQLKeys(KeyTier):
    """Implements memstrata.tiers.keys.KeyTier on an SQL store's connections."""

    if TYPE_CHECKING:  # provided by SQLStore
        d: ClassVar[Dialect]

        def _run(self, fn: Callable[[Any], T], what: str, *, write: bool = False) -> T: ...
        def _all(self, what: str, statement: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def put_key(self, record: KeyRecord) -> None:
        statement = self.d.q(f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({marks(self.d, KEY_COLUMNS)})")
        values = (
            record.id, record.org_id, record.name, record.key_hash, record.prefix, json.dumps(list(record.scopes)),
            _ids(record.user_ids), _ids(record.agent_ids), record.created_at, record.revoked_at, record.last_used_at,
        )
        self._run(lambda conn: conn.execute(statement, values), "put key", write=True)

    def find_key_by_hash(self, key_hash: str) -> KeyRecord | None:
        rows = self._all("find key", f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
        return key_record(rows[0]) if rows else None

    def list_keys(self, org_id: str | None) -> list[KeyRecord]:
        where, args = (" WHERE org_id = ?", [org_id]) if org_id is not None else ("", [])
        rows = self._all("list keys", f"SELECT {KEY_COLUMNS} FROM api_keys{where} ORDER BY created_at, id", args)
        return [key_record(r) for r in rows]

    def revoke_key(self, org_id: str, key_id: str, at: float) -> KeyRecord:
        q = self.d.q

        def write(conn: Any) -> Sequence[Any] | None:
            conn.execute(q("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND org_id = ?"),
                         (at, key_id, org_id))
            row: Sequence[Any] | None = conn.execute(
                q(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ? AND org_id = ?"), (key_id, org_id)
            ).fetchone()
            return row

        row = self._run(write, "revoke key", write=True)
        if row is None:
            raise NotFoundError("api key", key_id)
        return key_record(row)

    def touch_key(self, key_id: str, at: float) -> None:
        statement = self.d.q("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
        self._run(lambda conn: conn.execute(statement, (at, key_id)), "touch key", write=True)
