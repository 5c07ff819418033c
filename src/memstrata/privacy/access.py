"""API keys and the rules they carry: which operations, in which org, for which users and agents.

A key is ``ms_`` followed by 43 random URL-safe characters. The store keeps only a keyed hash of it
(HMAC-SHA256 with a server-side pepper): the key has 256 bits of entropy, so a slow password hash would add
cost and no safety. ``authenticate`` turns a presented key into a :class:`Principal`; :func:`admit` decides
whether that principal may make one ``Memory`` call, and with which scope. ``memstrata.secure.SecuredMemory``
runs every call of a ``Memory`` through ``admit``; REST, MCP and the UI all go through it, so the rules live
here once (and this module never imports the facade).

Scopes: ``read`` (search, list, export), ``write`` (add, update, delete), ``admin`` (implies both, plus erasure
and the audit log).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from memstrata.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidInputError,
    MemstrataError,
    NotFoundError,
)
from memstrata.models import DEFAULT_ORG, Scope, check_id, iso
from memstrata.tiers.base import Capability, Store
from memstrata.tiers.keys import KeyRecord, KeyTier

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "ms_"
MAX_KEY_LENGTH = 200
_DEFAULT_PEPPER = b"memstrata-api-key-v1"
# last_used_at is a hint for operators, not an audit trail: writing it on every request would turn reads into writes.
TOUCH_INTERVAL_SECONDS = 60.0


def hash_key(key: str, pepper: bytes | str | None = None) -> str:
    """The stored form of a key: hex HMAC-SHA256 under the server's pepper."""
    secret = pepper.encode() if isinstance(pepper, str) else (pepper or _DEFAULT_PEPPER)
    return hmac.new(secret, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key after it was created: everything but the key and its hash."""

    id: str
    org_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    user_ids: tuple[str, ...] | None
    agent_ids: tuple[str, ...] | None
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    @classmethod
    def from_record(cls, rec: KeyRecord) -> KeyInfo:
        return cls(
            rec.id, rec.org_id, rec.name, rec.prefix, rec.scopes, rec.user_ids, rec.agent_ids,
            rec.created_at, rec.revoked_at, rec.last_used_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org_id": self.org_id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "user_ids": None if self.user_ids is None else list(self.user_ids),
            "agent_ids": None if self.agent_ids is None else list(self.agent_ids),
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may touch. ``org_id=None`` means any org (a local, unrestricted caller)."""

    key_id: str | None
    name: str
    org_id: str | None
    scopes: frozenset[str]
    user_ids: frozenset[str] | None = None
    agent_ids: frozenset[str] | None = None

    @classmethod
    def local(cls, name: str = "local") -> Principal:
        """An unrestricted principal: the library itself, a server started without auth, stdio MCP."""
        return cls(None, name, None, frozenset(SCOPES))

    @property
    def label(self) -> str:
        return f"API key {self.key_id}" if self.key_id else self.name

    def allows(self, operation: str) -> bool:
        """Whether the key's scopes cover ``operation`` (admin implies read and write)."""
        if operation not in SCOPES:
            raise InvalidInputError("operation", f"must be one of {', '.join(SCOPES)}, got {operation!r}")
        return operation in self.scopes or "admin" in self.scopes

    def _need(self, operation: str) -> None:
        if not self.allows(operation):
            have = ", ".join(sorted(self.scopes)) or "none"
            raise AccessDeniedError(f"{self.label} lacks the '{operation}' scope (it has: {have})")

    def _org(self, org_id: str) -> None:
        if self.org_id is not None and org_id != self.org_id:
            raise AccessDeniedError(f"{self.label} is bound to org_id {self.org_id!r}, not {org_id!r}")

    def check(self, operation: str, scope: Scope | None) -> None:
        """Raise AccessDeniedError unless this principal may run ``operation`` on ``scope``.

        ``scope=None`` means the whole store (every org), which only an unrestricted principal may touch.
        """
        self._need(operation)
        if scope is None:
            if self.org_id is not None or self.user_ids is not None or self.agent_ids is not None:
                raise AccessDeniedError(f"{self.label} cannot run store-wide operations; name a scope")
            return
        self._org(scope.org_id)
        if self.user_ids is not None and scope.user_id not in self.user_ids:
            who = "no user_id" if scope.user_id is None else f"user_id {scope.user_id!r}"
            raise AccessDeniedError(f"{self.label} is not bound to {who}")
        if self.agent_ids is not None and scope.agent_id not in self.agent_ids:
            who = "no agent_id" if scope.agent_id is None else f"agent_id {scope.agent_id!r}"
            raise AccessDeniedError(f"{self.label} is not bound to {who}")

    def check_org(self, operation: str, org_id: str) -> None:
        """Raise unless this principal may run ``operation`` on a whole org (needs a key bound to no user/agent)."""
        self._need(operation)
        self._org(org_id)
        if self.user_ids is not None or self.agent_ids is not None:
            raise AccessDeniedError(f"{self.label} is bound to users or agents; org-wide operations need an org key")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "org_id": self.org_id,
            "scopes": sorted(self.scopes),
            "user_ids": None if self.user_ids is None else sorted(self.user_ids),
            "agent_ids": None if self.agent_ids is None else sorted(self.agent_ids),
        }


def key_store(source: Any) -> KeyTier:
    """The KeyTier behind a Memory or a store (a wrapper that passes attributes through counts)."""
    store = getattr(source, "store", source)
    if isinstance(store, Store) and store.supports(Capability.KEYS):
        return store  # type: ignore[return-value]  # a store declaring KEYS implements KeyTier
    if isinstance(store, KeyTier):
        return store
    raise ConfigurationError(f"store: {type(store).__name__} keeps no API keys")


def _check_scopes(scopes: Any) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [s.strip() for s in scopes.split(",") if s.strip()]
    if not isinstance(scopes, Iterable) or isinstance(scopes, bytes | dict):
        raise InvalidInputError("scopes", "must be a list of 'read', 'write', 'admin'")
    out = tuple(dict.fromkeys(scopes))
    if not out:
        raise InvalidInputError("scopes", "must name at least one of read, write, admin")
    for s in out:
        if s not in SCOPES:
            raise InvalidInputError("scopes", f"must be among read, write, admin; got {s!r}")
    return out


def _check_binding(field: str, ids: Any) -> tuple[str, ...] | None:
    if ids is None:
        return None
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, Iterable) or isinstance(ids, bytes | dict):
        raise InvalidInputError(field, "must be a list of ids")
    out = tuple(dict.fromkeys(check_id(field, i, required=True) or "" for i in ids))
    if not out:
        raise InvalidInputError(field, "must not be empty (leave it out to bind no ids)")
    return out


def create_key(
    store: Any,
    org_id: str | None,
    scopes: Iterable[str] | str,
    user_ids: Iterable[str] | None = None,
    agent_ids: Iterable[str] | None = None,
    *,
    name: str = "",
    pepper: bytes | str | None = None,
) -> tuple[str, KeyInfo]:
    """Make a key and store its hash. Returns ``(plaintext_key, info)``: the plaintext exists only in this result."""
    org = check_id("org_id", org_id) or DEFAULT_ORG
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidInputError("name", "must be a string of at most 200 characters")
    checked_scopes = _check_scopes(scopes)
    users = _check_binding("user_ids", user_ids)
    agents = _check_binding("agent_ids", agent_ids)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    rec = KeyRecord(
        id="key_" + uuid.uuid4().hex[:16],
        org_id=org,
        name=name,
        key_hash=hash_key(key, pepper),
        prefix=key[:11],
        scopes=checked_scopes,
        user_ids=users,
        agent_ids=agents,
        created_at=time.time(),
    )
    key_store(store).put_key(rec)
    return key, KeyInfo.from_record(rec)


def authenticate(store: Any, presented_key: Any, *, pepper: bytes | str | None = None) -> Principal:
    """The principal of a presented key; AccessDeniedError when it is malformed, unknown or revoked."""
    if (
        not isinstance(presented_key, str)
        or not presented_key.startswith(KEY_PREFIX)
        or len(presented_key) > MAX_KEY_LENGTH
    ):
        raise AccessDeniedError("invalid API key")
    tier = key_store(store)
    digest = hash_key(presented_key, pepper)
    rec = tier.find_key_by_hash(digest)
    # The lookup is by hash, so timing reveals nothing about the key; the compare guards a backend that
    # matches loosely (collations, prefixes).
    if rec is None or not hmac.compare_digest(rec.key_hash, digest):
        raise AccessDeniedError("unknown API key")
    if rec.revoked_at is not None:
        raise AccessDeniedError(f"API key {rec.id} was revoked")
    now = time.time()
    if rec.last_used_at is None or now - rec.last_used_at > TOUCH_INTERVAL_SECONDS:
        try:
            tier.touch_key(rec.id, now)
        except MemstrataError:
            pass  # a usage timestamp must never turn away a valid key
    return Principal(
        key_id=rec.id,
        name=rec.name or rec.id,
        org_id=rec.org_id,
        scopes=frozenset(rec.scopes),
        user_ids=None if rec.user_ids is None else frozenset(rec.user_ids),
        agent_ids=None if rec.agent_ids is None else frozenset(rec.agent_ids),
    )


def list_keys(store: Any, org_id: str | None = None) -> list[KeyInfo]:
    """Keys of an org (every org when None), without their hashes."""
    return [KeyInfo.from_record(r) for r in key_store(store).list_keys(check_id("org_id", org_id))]


def revoke_key(store: Any, key_id: str, org_id: str | None = None) -> KeyInfo:
    """Revoke a key of ``org_id`` (default org when None); later ``authenticate`` calls refuse it."""
    check_id("key_id", key_id, required=True)
    org = check_id("org_id", org_id) or DEFAULT_ORG
    return KeyInfo.from_record(key_store(store).revoke_key(org, key_id, time.time()))


# Which scope each scoped Memory method needs; every one takes user_id/agent_id/run_id/org_id keywords.
SCOPED_METHODS: dict[str, str] = {
    "add": "write",
    "update": "write",
    "delete": "write",
    "delete_all": "write",
    "resolve_conflict": "write",
    "retry_failed": "write",
    "requeue": "write",
    "ingestion": "read",
    "ingestions": "read",
    "search": "read",
    "context": "read",
    "get": "read",
    "get_all": "read",
    "history": "read",
    "conflicts": "read",
    "episodes": "read",
    "archived_episodes": "read",
    "entities": "read",
    "neighbours": "read",
    "working_state": "read",
    "update_working_state": "write",
}
# By-id calls that may name no scope at all: the memory id alone finds it (as in Mem0).
BY_ID_METHODS = frozenset({"get", "update", "delete", "history"})
# Whole-user operations (every agent and run of a user) that another module may add to Memory.
USER_METHODS: dict[str, str] = {"export_user": "read", "forget_user": "admin"}
ORG_METHODS: dict[str, str] = {"audit_log": "admin", "verify_audit": "admin"}
# The audit chain is one chain for the whole store: whether it is intact is no org's secret.
STORE_WIDE_FACTS = frozenset({"verify_audit"})


# Store-wide operations: only an unrestricted admin (the library itself, a server without auth) may run them.
STORE_METHODS: dict[str, str] = {"reset": "admin", "import_user": "admin", "process_queue": "admin"}
# Calls that touch no scope's data.
FREE_METHODS = frozenset({"flush_usage", "close"})
SCOPE_IDS = ("user_id", "agent_id", "run_id", "org_id")


class ScopeSource(Protocol):
    """How a memory turns a call's ids into a scope (``Memory`` provides both, with its constructor defaults)."""

    def _scope(self, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None) -> Scope: ...

    def _id_scope(
        self, memory_id: Any, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None
    ) -> Scope: ...


def resolve_scope(
    principal: Principal,
    source: Any,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    org_id: str | None = None,
) -> Scope:
    """The scope a call would act on after applying the key's defaults (not yet checked): a key bound to exactly
    one user (or agent) fills in that id, and the org defaults to the key's."""
    p = principal
    if user_id is None and p.user_ids is not None and len(p.user_ids) == 1:
        (user_id,) = p.user_ids
    if agent_id is None and p.agent_ids is not None and len(p.agent_ids) == 1:
        (agent_id,) = p.agent_ids
    if org_id is None and p.org_id is not None:
        org_id = p.org_id
    resolve = getattr(source, "_scope", None)
    if resolve is not None:  # honours the Memory's constructor defaults exactly as the call would
        return resolve(user_id, agent_id, run_id, org_id)  # type: ignore[no-any-return]
    return Scope.of(user_id=user_id, agent_id=agent_id, run_id=run_id, org_id=org_id)


def admit(
    principal: Principal,
    name: str,
    arguments: dict[str, Any],
    source: ScopeSource,
    accepts: Callable[[str], bool],
) -> dict[str, Any]:
    """Check that ``principal`` may make the Memory call ``name`` with ``arguments`` and return the arguments
    to make it with (scope ids filled in from the key). Raises AccessDeniedError, or NotFoundError for a by-id
    call on a memory outside the key's bindings. ``accepts(param)`` says whether the target takes ``param``."""
    args = dict(arguments)
    if name in SCOPED_METHODS:
        operation = SCOPED_METHODS[name]
        ids = {k: args.pop(k, None) for k in SCOPE_IDS}
        if name in BY_ID_METHODS and all(ids[k] is None for k in ("user_id", "agent_id", "run_id")):
            scope = _by_id_scope(principal, operation, args.get("memory_id"), ids["org_id"], source)
        else:
            scope = resolve_scope(principal, source, **ids)
            principal.check(operation, scope)
        return {**args, **scope.as_dict()}
    if name == "stats":
        return _stats(principal, args, source)
    if name == "scopes":
        return _scopes(principal, args)
    if name in USER_METHODS:
        return _user_call(principal, name, args, accepts)
    if name in ORG_METHODS:
        return _org_call(principal, name, args, accepts)
    if name in STORE_METHODS:
        principal.check(STORE_METHODS[name], None)
        return args
    if name in FREE_METHODS:
        return args
    raise AccessDeniedError(f"{principal.label}: {name} has no access rule, so no key may call it")


def _by_id_scope(principal: Principal, operation: str, memory_id: Any, org_id: str | None,
                 source: ScopeSource) -> Scope:
    """A by-id call that names no scope: the store says which scope holds the id, and the key must cover it.
    A memory outside the key's bindings is reported as not found, so ids of other users' memories reveal
    nothing."""
    scope = source._id_scope(memory_id, None, None, None, org_id or principal.org_id)
    try:
        principal.check(operation, scope)
    except AccessDeniedError:
        if not principal.allows(operation):
            raise
        raise NotFoundError("memory", str(memory_id)) from None
    return scope


def _stats(p: Principal, args: dict[str, Any], source: ScopeSource) -> dict[str, Any]:
    """Counts for a scope; store-wide counts only for an unrestricted principal."""
    ids = {k: args.get(k) for k in SCOPE_IDS}
    if all(ids[k] is None for k in ("user_id", "agent_id", "run_id")) and not (p.user_ids or p.agent_ids):
        p.check("read", None)
        return {}
    scope = resolve_scope(p, source, **ids)
    p.check("read", scope)
    return dict(scope.as_dict())


def _narrowed(p: Principal, field: str, asked: Any, bound: frozenset[str] | None) -> list[str] | None:
    if bound is None:
        return None if asked is None else list(asked)
    if asked is None:
        return sorted(bound)
    outside = [i for i in asked if i not in bound]
    if outside:
        raise AccessDeniedError(f"{p.label} is not bound to {field} {outside[0]!r}")
    return list(asked)


def _scopes(p: Principal, args: dict[str, Any]) -> dict[str, Any]:
    """The scopes this key may read: only its org, only its bound users/agents."""
    p._need("read")
    org = check_id("org_id", args.get("org_id")) or p.org_id
    if org is not None:
        p._org(org)
    return {**args, "org_id": org,
            "user_ids": _narrowed(p, "user_id", args.get("user_ids"), p.user_ids),
            "agent_ids": _narrowed(p, "agent_id", args.get("agent_ids"), p.agent_ids)}


def _user_call(p: Principal, name: str, args: dict[str, Any], accepts: Callable[[str], bool]) -> dict[str, Any]:
    """A whole-user operation (every agent and run of the user)."""
    user_id = args.pop("user_id", None)
    org_id = args.pop("org_id", None)
    if user_id is None and p.user_ids is not None and len(p.user_ids) == 1:
        (user_id,) = p.user_ids
    check_id("user_id", user_id, required=True)
    scope = Scope.of(user_id=user_id, org_id=org_id or p.org_id)
    p.check(USER_METHODS[name], scope)
    if p.agent_ids is not None:
        raise AccessDeniedError(f"{p.label} is bound to agents; {name} covers every agent of the user")
    if accepts("org_id"):
        args["org_id"] = scope.org_id
    elif scope.org_id != DEFAULT_ORG:
        raise ConfigurationError(f"{name}: this build cannot act on org {scope.org_id!r}")
    return {"user_id": scope.user_id, **args}


def _org_call(p: Principal, name: str, args: dict[str, Any], accepts: Callable[[str], bool]) -> dict[str, Any]:
    """An org-wide operation (the audit log), or one user's part of it."""
    user_id = args.pop("user_id", None)
    org = check_id("org_id", args.pop("org_id", None)) or p.org_id or DEFAULT_ORG
    if name in STORE_WIDE_FACTS and (p.user_ids is not None or p.agent_ids is not None):
        raise AccessDeniedError(f"{p.label}: {name} checks the whole store's audit chain; it needs an admin key "
                                "bound to no user or agent")
    if user_id is not None or p.user_ids is not None:
        if user_id is None and p.user_ids is not None and len(p.user_ids) == 1:
            (user_id,) = p.user_ids
        p.check(ORG_METHODS[name], Scope.of(user_id=user_id, org_id=org))
        args["user_id"] = user_id
    else:
        p.check_org(ORG_METHODS[name], org)
    if accepts("org_id"):
        args["org_id"] = org
    elif p.org_id is not None and name not in STORE_WIDE_FACTS:
        raise ConfigurationError(f"{name}: this build cannot limit the audit log to org {org!r}")
    return args


__all__ = [
    "KeyInfo",
    "Principal",
    "SCOPES",
    "ScopeSource",
    "admit",
    "authenticate",
    "create_key",
    "hash_key",
    "list_keys",
    "resolve_scope",
    "revoke_key",
]
