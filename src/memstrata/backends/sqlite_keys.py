"""API key storage for the SQLite store (a mixin of SQLiteStore)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from memstrata.errors import NotFoundError
from memstrata.tiers.keys import KeyRecord, KeyTier

_COLUMNS = "id, org_id, name, key_hash, prefix, scopes, user_ids, agent_ids, created_at, revoked_at, last_used_at"


def _ids(value: tuple[str, ...] | None) -> str | None:
    return None if value is None else json.dumps(list(value))


def _record(row: tuple[Any, ...]) -> KeyRecord:
    def tup(raw: str | None) -> tuple[str, ...] | None:
        return None if raw is None else tuple(json.loads(raw))

    return KeyRecord(
        id=row[0],
        org_id=row[1],
        name=row[2],
        key_hash=row[3],
        prefix=row[4],
        scopes=tuple(json.loads(row[5])),
        user_ids=tup(row[6]),
        agent_ids=tup(row[7]),
        created_at=row[8],
        revoked_at=row[9],
        last_used_at=row[10],
    )


class SQLiteKeysMixin(KeyTier):
    """Implements memstrata.tiers.keys.KeyTier on the store's connections."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def put_key(self, record: KeyRecord) -> None:
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.org_id,
                    record.name,
                    record.key_hash,
                    record.prefix,
                    json.dumps(list(record.scopes)),
                    _ids(record.user_ids),
                    _ids(record.agent_ids),
                    record.created_at,
                    record.revoked_at,
                    record.last_used_at,
                ),
            )

    def find_key_by_hash(self, key_hash: str) -> KeyRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return None if row is None else _record(row)

    def list_keys(self, org_id: str | None) -> list[KeyRecord]:
        with self._read() as conn:
            if org_id is None:
                rows: Iterator[tuple[Any, ...]] = conn.execute(
                    f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id"
                )
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM api_keys WHERE org_id = ? ORDER BY created_at, id", (org_id,)
                )
            return [_record(r) for r in rows]

    def revoke_key(self, org_id: str, key_id: str, at: float) -> KeyRecord:
        with self._tx() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND org_id = ?",
                (at, key_id, org_id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? AND org_id = ?", (key_id, org_id)
            ).fetchone()
        if row is None:
            raise NotFoundError("api key", key_id)
        return _record(row)

    def touch_key(self, key_id: str, at: float) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (at, key_id))
