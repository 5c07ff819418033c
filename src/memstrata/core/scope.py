"""Which scope a call is about, decided in one place for every method of the facade.

A call names its scope with ``user_id`` / ``agent_id`` / ``run_id`` (and ``org_id``); one that names none
of the three takes the constructor's defaults. A by-id call that names no scope anywhere asks the store
which scope holds the id: memory ids are unique, so ``get(id)`` needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memstrata.errors import InvalidInputError, NotFoundError
from memstrata.models import Scope


class ScopeResolver:
    """The constructor's default scope, and ``scope_of``: which scope holds a memory id (None: none)."""

    def __init__(self, scope_of: Callable[[str], Scope | None], *, user_id: str | None = None,
                 agent_id: str | None = None, run_id: str | None = None, org_id: str | None = None) -> None:
        self.scope_of = scope_of
        self.defaults: dict[str, str | None] = dict(user_id=user_id, agent_id=agent_id, run_id=run_id,
                                                    org_id=org_id)
        if any(v is not None for v in self.defaults.values()):
            Scope.of(**self.defaults)  # validate now, not on first use
        self._bound = any(self.defaults[k] is not None for k in ("user_id", "agent_id", "run_id"))

    def resolve(self, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                org_id: str | None = None) -> Scope:
        org = org_id or self.defaults["org_id"]
        if user_id is None and agent_id is None and run_id is None:
            d = self.defaults
            return Scope.of(user_id=d["user_id"], agent_id=d["agent_id"], run_id=d["run_id"], org_id=org)
        return Scope.of(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org)

    def for_id(self, memory_id: Any, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, org_id: str | None = None) -> Scope:
        """The scope of a by-id call: the named (or default) one, else the one that holds the id."""
        if self._bound or any(v is not None for v in (user_id, agent_id, run_id)):
            return self.resolve(user_id, agent_id, run_id, org_id)
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "must be a non-empty string")
        found = self.scope_of(memory_id)
        org = org_id or self.defaults["org_id"]
        if found is None or (org is not None and found.org_id != org):
            raise NotFoundError("memory", memory_id)
        return found
