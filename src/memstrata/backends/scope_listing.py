"""The scopes a store holds, most recently active first: one statement both SQL engines run alike.

Only the scope ids, row counts and the last write time are read, never content; the filters (org, bound users
or agents) are applied in the query itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memstrata.models import iso

_BODY = """
SELECT org_id, user_id, agent_id, run_id, sum(n_episodes), sum(n_memories), max(last_at) FROM (
    SELECT scope_key, org_id, user_id, agent_id, run_id, count(*) AS n_episodes, 0 AS n_memories,
           max(created_at) AS last_at FROM episodes {where} GROUP BY scope_key, org_id, user_id, agent_id, run_id
    UNION ALL
    SELECT scope_key, org_id, user_id, agent_id, run_id, 0, count(*), max(created_at)
           FROM memories {where} GROUP BY scope_key, org_id, user_id, agent_id, run_id
) AS activity
GROUP BY scope_key, org_id, user_id, agent_id, run_id
ORDER BY max(last_at) DESC, scope_key
LIMIT {mark}
"""


def scope_listing(
    mark: str, org_id: str | None, user_ids: Sequence[str] | None, agent_ids: Sequence[str] | None, limit: int
) -> tuple[str, list[Any]]:
    """The statement (with ``mark`` as the engine's placeholder) and its parameters."""
    conds: list[str] = []
    params: list[Any] = []
    if org_id is not None:
        conds.append(f"org_id = {mark}")
        params.append(org_id)
    for column, values in (("user_id", user_ids), ("agent_id", agent_ids)):
        if values is not None:
            if not values:
                conds.append("1 = 0")
                continue
            conds.append(f"{column} IN ({', '.join([mark] * len(values))})")
            params.extend(values)
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    return _BODY.format(where=where, mark=mark), [*params, *params, limit]


def scope_rows(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [
        {"org_id": r[0], "user_id": r[1], "agent_id": r[2], "run_id": r[3], "episodes": int(r[4] or 0),
         "memories": int(r[5] or 0), "last_active_at": iso(float(r[6])) if r[6] is not None else None}
        for r in rows
    ]
