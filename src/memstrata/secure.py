"""Turning the privacy features on without touching ``Memory``: an encrypted store, an audited facade, and
the facade seen through an API key.

    >>> from memstrata.secure import secure_memory
    >>> m = secure_memory("sqlite:///data/memory.db", master_key=os.environ["MEMSTRATA_MASTER_KEY"])
    >>> m.add("I moved to Lisbon", user_id="alice")   # sealed with alice's data key, and audited

``secure_memory`` builds the store named by the URL (SQLite or PostgreSQL) with
``codec=EncryptingCodec(...)`` and hands the store object to ``Memory(store=...)``. Two guards
(:class:`~memstrata.guard.Guard`: Memory's own methods, each through one hook) carry the rules of
``memstrata.privacy`` to the facade: ``AuditedMemory`` writes one audit entry per public call, and
``SecuredMemory`` checks every call against an API key's principal before it runs. REST, MCP and the UI
serve every request through a ``SecuredMemory``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from memstrata.config import default_store_url, parse_store_url
from memstrata.errors import ConfigurationError, MemstrataError
from memstrata.guard import Guard
from memstrata.memory import Memory, open_store
from memstrata.models import DEFAULT_ORG, Scope
from memstrata.privacy import gdpr
from memstrata.privacy.access import Principal, admit, resolve_scope
from memstrata.privacy.audit import SUMMARIES, Auditor, read_audit
from memstrata.privacy.crypto import EncryptingCodec, KeyProvider, LocalKeyProvider, load_key_provider
from memstrata.providers.embedders import Embedder, resolve_embedder
from memstrata.tiers.base import Store
from memstrata.tiers.privacy import privacy_tier

T = TypeVar("T")


class AuditedMemory(Guard):
    """A Memory whose public calls are each written to the audit log: actor, org, scope, operation, the
    ids read or written, and when (failed calls too, with the error's type). Same methods as Memory;
    other attributes (``store``, ``embedder``) pass through to the wrapped one."""

    memory: Memory

    def __init__(self, memory: Memory, actor: str | None = None) -> None:
        super().__init__(memory)
        self.actor = actor or memory.actor
        self._auditor = Auditor(memory.store, self.actor)

    def as_actor(self, actor: str) -> AuditedMemory:
        """The same memory, audited under another actor (e.g. the API key id of a request)."""
        return AuditedMemory(self.memory, actor)

    def _scope_of(self, arguments: dict[str, Any]) -> tuple[Scope | None, str]:
        default = self.memory._default_scope
        org = arguments.get("org_id") or default["org_id"] or DEFAULT_ORG
        ids = (arguments.get("user_id"), arguments.get("agent_id"), arguments.get("run_id"), arguments.get("org_id"))
        try:
            if "memory_id" in arguments:  # a by-id call may name no scope: the one holding the id is recorded
                found = self.memory._id_scope(arguments["memory_id"], *ids)
                return found, found.org_id
            return self.memory._scope(*ids), org
        except MemstrataError:
            return None, org

    def _call(self, name: str, method: Callable[..., T], /, **arguments: Any) -> T:
        if name in _SELF_AUDITED:  # these write their own, richer entry, under this guard's actor
            return _SELF_AUDITED[name](self, **arguments)  # type: ignore[no-any-return]
        summarize = SUMMARIES.get(name)
        if summarize is None:
            return method(**arguments)
        scope, org = self._scope_of(arguments)
        try:
            result = method(**arguments)
        except MemstrataError as exc:
            self._auditor.record(name, scope=scope, org_id=org, details={"error": type(exc).__name__})
            raise
        ids, details = summarize(arguments, result)
        self._auditor.record(name, scope=scope, org_id=org, memory_ids=ids, details=details)
        return result

    def _audit_log(self, *, org_id: str | None, user_id: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        rows = read_audit(self.memory.store, org_id=org_id, user_id=user_id, after=after, limit=limit)
        self._auditor.record("audit_log", org_id=org_id or DEFAULT_ORG,
                             details={"user_id": user_id, "returned": len(rows)})
        return rows

    def __getattr__(self, name: str) -> Any:
        if name == "memory":  # not set yet (a half-built copy): never recurse
            raise AttributeError(name)
        return getattr(self.memory, name)

    def __enter__(self) -> AuditedMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditedMemory({self.memory!r}, actor={self.actor!r})"


_SELF_AUDITED: dict[str, Callable[..., Any]] = {
    "forget_user": lambda a, user_id, org_id: gdpr.forget_user(a.memory, user_id, org_id=org_id, actor=a.actor),
    "export_user": lambda a, user_id, org_id: gdpr.export_user(a.memory, user_id, org_id=org_id, actor=a.actor),
    "import_user": lambda a, data, user_id, org_id: gdpr.import_user(
        a.memory, data, user_id=user_id, org_id=org_id, actor=a.actor),
    "audit_log": AuditedMemory._audit_log,
}


class SecuredMemory(Guard):
    """A Memory seen through one principal: the same methods, every call's scope checked before it runs
    (the rules: :func:`memstrata.privacy.access.admit`).

    When the key is bound to exactly one user (or agent) and the call names none, that id is used; an id
    outside the binding raises AccessDeniedError. The org defaults to the key's org. Store-wide operations
    (``reset``, ``import_user``) need an unrestricted admin principal.
    """

    def __init__(self, memory: Memory | Guard, principal: Principal) -> None:
        as_actor = getattr(memory, "as_actor", None)
        if principal.key_id is not None and callable(as_actor):
            memory = as_actor(principal.key_id)  # an audited memory records the key, not the server, as actor
        super().__init__(memory)
        self.principal = principal

    def resolve_scope(
        self,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        org_id: str | None = None,
    ) -> Scope:
        """The scope a call would act on after applying the key's defaults (not yet checked)."""
        return resolve_scope(self.principal, self.base, user_id, agent_id, run_id, org_id)

    def supports(self, name: str) -> bool:
        """Whether the wrapped Memory has ``name`` (user export/erasure and audit come from optional modules)."""
        return callable(getattr(self.memory, name, None))

    def _call(self, name: str, method: Callable[..., T], /, **arguments: Any) -> T:
        params = _parameters(method)
        admitted = admit(self.principal, name, arguments, self.base, lambda p: params is None or p in params)
        if params is not None:  # a narrower memory: leave out what it does not take, unless it was asked for
            defaults = _memory_defaults(name)
            for key in [k for k in admitted if k not in params]:
                if key in defaults and admitted[key] != defaults[key]:
                    raise ConfigurationError(f"{name}: this memory does not take {key}")
                del admitted[key]
        return method(**admitted)

    def export_user(self, user_id: str | None = None, *, org_id: str | None = None) -> dict[str, Any]:
        """Everything stored about a user (needs ``read`` on that user; a key bound to one user may omit it)."""
        return self._call("export_user", self.memory.export_user, user_id=user_id, org_id=org_id)

    def forget_user(self, user_id: str | None = None, *, org_id: str | None = None) -> dict[str, Any]:
        """Erase a user everywhere and return the deletion receipt (needs ``admin`` on that user)."""
        return self._call("forget_user", self.memory.forget_user, user_id=user_id, org_id=org_id)

    def verify_audit(self, *, org_id: str | None = None) -> dict[str, Any]:
        """Check the audit log's hash chain (needs ``admin`` on the org, from a key bound to no user or agent)."""
        return self._call("verify_audit", self.memory.verify_audit, org_id=org_id)

    def __repr__(self) -> str:
        return f"SecuredMemory({self.memory!r}, {self.principal.label})"


def _parameters(method: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword names ``method`` takes; None when it takes any."""
    owner = getattr(method, "__self__", None)
    if owner is None or isinstance(owner, type):
        return _names_taken(method)
    key = (type(owner), method.__name__)  # a bound method: its class's answer, computed once
    if key not in _PARAMETERS:
        names = _names_taken(getattr(key[0], key[1]))
        _PARAMETERS[key] = None if names is None else names - {"self"}
    return _PARAMETERS[key]


_PARAMETERS: dict[tuple[type, str], frozenset[str] | None] = {}


@functools.lru_cache(maxsize=64)
def _memory_defaults(name: str) -> dict[str, Any]:
    return {k: p.default for k, p in inspect.signature(getattr(Memory, name)).parameters.items()}


def _names_taken(fn: Callable[..., Any]) -> frozenset[str] | None:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)


def _holds_data(store: Store) -> bool:
    counts = store.stats(None)
    return bool(counts.get("episodes") or counts.get("memories") or counts.get("history"))


def open_secure_store(
    url: str | None,
    dim: int,
    *,
    provider: KeyProvider | None,
    keyword_index: bool = True,
    **store_options: Any,
) -> Store:
    """A store (SQLite or PostgreSQL) that seals with ``provider`` (None: plaintext), refusing a mix of
    the two modes: a plain open of an encrypted store, and encryption switched on over plaintext."""
    target = url or default_store_url()
    if provider is None:
        return open_store(target, dim, **store_options)  # refuses an encrypted store by itself
    scheme = parse_store_url(target).scheme
    if scheme not in ("sqlite", "postgresql"):
        raise ConfigurationError(f"store: encryption is available on sqlite and postgresql stores, not {scheme}")
    codec = EncryptingCodec(provider, keyword_index=keyword_index)
    store = open_store(target, dim, codec=codec, **store_options)
    try:
        codec.bind(store)
        tier = privacy_tier(store)
        if not tier.holds_data_keys() and _holds_data(store):
            raise ConfigurationError(
                "store: it holds unencrypted data, and encryption must be on from the first write; "
                "export each user (export_user) and import them into a new encrypted store")
        codec.check()
    except BaseException:
        store.close()
        raise
    return store


def secure_memory(
    store: str | None = None,
    *,
    master_key: str | bytes | None = None,
    key_provider: KeyProvider | None = None,
    encrypt: bool = True,
    keyword_index: bool = True,
    audit: bool = True,
    actor: str = "library",
    embedder: str | Embedder | None = None,
    store_options: Mapping[str, Any] | None = None,
    **memory_options: Any,
) -> Memory | AuditedMemory:
    """A Memory on an encrypted store (SQLite or PostgreSQL), audited: the one call that turns the privacy
    features on.

    The master key is ``master_key`` (base64 text or 32 bytes) or ``key_provider`` (a KMS); with neither,
    ``MEMSTRATA_MASTER_KEY`` / ``MEMSTRATA_MASTER_KEY_FILE``. ``keyword_index=False`` turns the (hashed)
    keyword index off for encrypted scopes. Other keyword arguments go to ``Memory``."""
    emb = resolve_embedder(embedder)
    provider: KeyProvider | None = None
    if encrypt:
        provider = key_provider or (LocalKeyProvider.from_text(master_key) if master_key is not None
                                    else load_key_provider())
        if provider is None:
            raise ConfigurationError(
                "encryption: no master key; pass master_key= or key_provider=, or set MEMSTRATA_MASTER_KEY")
    backing = open_secure_store(store, emb.dim, provider=provider, keyword_index=keyword_index,
                                **dict(store_options or {}))
    memory = Memory(store=backing, embedder=emb, actor=actor, **memory_options)
    return AuditedMemory(memory, actor) if audit else memory


def memory_from_env(
    store: str | None,
    *,
    embedder: str | Embedder | None = None,
    audit: bool = False,
    actor: str = "cli",
    environ: Mapping[str, str] | None = None,
    **memory_options: Any,
) -> Memory | AuditedMemory:
    """For the CLI and server: encrypted when ``MEMSTRATA_MASTER_KEY(_FILE)`` is set, plain otherwise, and
    never a plain Memory over an encrypted store (that would hand out ciphertext as text). Other keyword
    arguments (cache, vectors, ingest, extractor) go to ``Memory``."""
    provider = load_key_provider(environ)
    return secure_memory(store, key_provider=provider, encrypt=provider is not None, audit=audit,
                         actor=actor, embedder=embedder, **memory_options)
