"""Turning the privacy features on without touching ``Memory``: an encrypted store and an audited facade.

    >>> from memstrata.secure import secure_memory
    >>> m = secure_memory("sqlite:///data/memory.db", master_key=os.environ["MEMSTRATA_MASTER_KEY"])
    >>> m.add("I moved to Lisbon", user_id="alice")   # sealed with alice's data key, and audited

``secure_memory`` builds the store named by the URL (SQLite or PostgreSQL) with
``codec=EncryptingCodec(...)`` and hands the store object to ``Memory(store=...)``; ``AuditedMemory``
wraps any Memory and writes one audit entry per public call.
"""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from memstrata.config import default_store_url, parse_store_url
from memstrata.errors import ConfigurationError, MemstrataError
from memstrata.memory import Memory, open_store
from memstrata.models import DEFAULT_ORG, Scope
from memstrata.privacy.audit import Auditor, read_audit, verify_audit
from memstrata.privacy.crypto import EncryptingCodec, KeyProvider, LocalKeyProvider, load_key_provider
from memstrata.providers.embedders import Embedder, resolve_embedder
from memstrata.tiers.base import Store
from memstrata.tiers.privacy import privacy_tier

Summary = tuple[list[str], dict[str, Any]]


def _ids(rows: Any, key: str = "id") -> list[str]:
    return [r[key] for r in rows]


# What each audited call records besides who/scope/when: record ids and counts, never content.
_SUMMARIES: dict[str, Callable[[dict[str, Any], Any], Summary]] = {
    "add": lambda a, r: (_ids(r["results"]), {
        "episode_ids": r["episodes"], "events": dict(Counter(x["event"] for x in r["results"])),
        "failed": "failed" in r}),
    "search": lambda a, r: (_ids(r["results"]), {"returned": len(r["results"]), "limit": a.get("limit", 10)}),
    "context": lambda a, r: (_ids(r["items"]), {"tokens": r["tokens"]}),
    "get": lambda a, r: ([a["memory_id"]], {}),
    "get_all": lambda a, r: (_ids(r["results"]), {"returned": len(r["results"]), "more": bool(r["next_cursor"])}),
    "update": lambda a, r: ([a["memory_id"]], {"text": a.get("text") is not None,
                                               "metadata": a.get("metadata") is not None}),
    "delete": lambda a, r: ([a["memory_id"]], {}),
    "delete_all": lambda a, r: ([], {"deleted": r["deleted"]}),
    "history": lambda a, r: ([a["memory_id"]], {"events": len(r)}),
    "reset": lambda a, r: ([], {}),
    "conflicts": lambda a, r: ([], {"conflict_ids": _ids(r["results"])}),
    "resolve_conflict": lambda a, r: ([r["new_memory_id"], r["old_memory_id"]],
                                      {"conflict_id": r["id"], "keep": a.get("keep", "new")}),
    "episodes": lambda a, r: ([], {"episode_ids": _ids(r["results"]), "full_text": a.get("query") is not None}),
    "entities": lambda a, r: ([], {"entity_ids": _ids(r["results"])}),
    "neighbours": lambda a, r: (list(r["memories"]), {"entity_id": r["entity"]["id"],
                                                      "neighbour_ids": _ids(r["neighbours"])}),
    "retry_failed": lambda a, r: (_ids(r["results"]), {"retried": r["retried"], "still_failed": r["still_failed"]}),
    "stats": lambda a, r: ([], {}),
    "working_state": lambda a, r: ([], {"conversation_id": a.get("conversation_id")}),
    "update_working_state": lambda a, r: ([], {"conversation_id": a.get("conversation_id"),
                                               "op": (a.get("edit") or {}).get("op")}),
}


def _audited(name: str, summarize: Callable[[dict[str, Any], Any], Summary]) -> Callable[..., Any]:
    method = getattr(Memory, name)
    signature = inspect.signature(method)

    @functools.wraps(method)
    def call(self: AuditedMemory, *args: Any, **kwargs: Any) -> Any:
        try:
            arguments = signature.bind(self.memory, *args, **kwargs).arguments
        except TypeError:
            arguments = {}  # the call itself raises the TypeError below
        scope, org = self._scope_of(arguments)
        try:
            result = method(self.memory, *args, **kwargs)
        except MemstrataError as exc:
            self._auditor.record(name, scope=scope, org_id=org, details={"error": type(exc).__name__})
            raise
        ids, details = summarize(arguments, result)
        self._auditor.record(name, scope=scope, org_id=org, memory_ids=ids, details=details)
        return result

    return call


class AuditedMemory:
    """A Memory whose public calls are each written to the audit log: actor, org, scope, operation, the
    ids read or written, and when (failed calls too, with the error's type). Same methods as Memory;
    anything else (``store``, ``embedder``, ``flush_usage``) passes through to the wrapped one."""

    def __init__(self, memory: Memory, actor: str | None = None) -> None:
        self.memory = memory
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self.memory, name)

    # -- privacy operations (each audits itself) ---------------------------------------------------

    def forget_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Erase a user everywhere and destroy their data key; returns the deletion receipt."""
        from memstrata.privacy.gdpr import forget_user

        return forget_user(self.memory, user_id, org_id=org_id, actor=self.actor)

    def export_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Everything stored about a user, from every tier, as portable JSON."""
        from memstrata.privacy.gdpr import export_user

        return export_user(self.memory, user_id, org_id=org_id, actor=self.actor)

    def import_user(
        self, data: dict[str, Any], *, user_id: str | None = None, org_id: str | None = None
    ) -> dict[str, Any]:
        """Load an ``export_user`` document (optionally as another user or org)."""
        from memstrata.privacy.gdpr import import_user

        return import_user(self.memory, data, user_id=user_id, org_id=org_id, actor=self.actor)

    def audit_log(
        self, *, org_id: str | None = None, user_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Audit entries, oldest first (reading the log is itself audited)."""
        rows = read_audit(self.memory.store, org_id=org_id, user_id=user_id, after=after, limit=limit)
        self._auditor.record("audit_log", org_id=org_id or DEFAULT_ORG,
                             details={"user_id": user_id, "returned": len(rows)})
        return rows

    def verify_audit(self) -> dict[str, Any]:
        """Check the audit chain; ``{"ok": True, ...}`` when intact."""
        return verify_audit(self.memory.store).to_dict()

    def close(self) -> None:
        self.memory.close()

    def __enter__(self) -> AuditedMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditedMemory({self.memory!r}, actor={self.actor!r})"


for _name, _summary in _SUMMARIES.items():
    setattr(AuditedMemory, _name, _audited(_name, _summary))


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
