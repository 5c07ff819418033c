"""The audit log: an append-only, hash-chained record of reads and writes, and its verification.

Each entry says who (actor: a library name or an API key id), which org and scope, which operation,
which record ids and when, plus small non-content details (counts, limits). It never holds memory
text, queries or metadata. Entry ``n`` stores the hash of entry ``n-1``, so changing, removing or
reordering an entry breaks the chain at that point. With encryption on the chain is an HMAC under a
key wrapped by the master key, so someone who can write the database but lacks the master key cannot
rebuild a consistent chain after editing it; without it the hash is a plain SHA-256, and only a head
hash kept elsewhere (``VerifyResult.head_hash``) protects the log against a rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memstrata.errors import InvalidInputError
from memstrata.models import DEFAULT_ORG, Scope
from memstrata.tiers.privacy import GENESIS_HASH, AuditEntry, AuditEvent, privacy_tier

KEYED, PLAIN = "k:", "h:"
_PAGE = 5000


def _audit_key(codec: Any) -> bytes | None:
    get = getattr(codec, "audit_key", None)
    return get() if callable(get) else None


def entry_hash(event: AuditEvent, seq: int, prev_hash: str, key: bytes | None) -> str:
    """The hash of ``event`` at position ``seq`` after ``prev_hash``: HMAC-SHA256 with ``key``, else SHA-256."""
    data = event.chain_input(seq, prev_hash)
    if key is not None:
        return KEYED + hmac.new(key, data, hashlib.sha256).hexdigest()
    return PLAIN + hashlib.sha256(data).hexdigest()


class Auditor:
    """Appends entries to a store's audit log as ``actor``. Keyed when the store's codec encrypts."""

    def __init__(self, store: Any, actor: str = "library", *, codec: Any = None) -> None:
        self.tier = privacy_tier(store)
        self.actor = actor
        self._codec = codec if codec is not None else getattr(store, "codec", None)

    def record(
        self,
        operation: str,
        *,
        scope: Scope | None = None,
        org_id: str | None = None,
        memory_ids: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry. ``details`` must hold identifiers and counts only, never content."""
        event = AuditEvent(
            at=time.time(),
            actor=self.actor,
            org_id=org_id if org_id is not None else scope.org_id if scope is not None else DEFAULT_ORG,
            scope_key=None if scope is None else scope.key,
            operation=operation,
            memory_ids=tuple(str(i) for i in memory_ids),
            # Round-tripped through JSON now, so the hash covers exactly what verification will read back.
            details=json.loads(json.dumps(details or {}, default=str)),
        )
        key = _audit_key(self._codec)
        return self.tier.append_audit(event, lambda seq, prev: entry_hash(event, seq, prev, key))


@dataclass
class VerifyResult:
    """The outcome of ``verify_audit``: ``ok`` when every entry checked and no problem was found."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    keyed: int = 0
    unauthenticated: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "head_seq": self.head_seq, "head_hash": self.head_hash,
            "keyed": self.keyed, "unauthenticated": self.unauthenticated,
            "problems": [{"seq": s, "problem": p} for s, p in self.problems],
        }


def verify_audit(
    store: Any, *, codec: Any = None, expected_head: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk the whole chain and report every entry that was changed, removed, inserted or reordered.

    Keyed entries are authenticated with the store's audit key (from its codec); without it they are
    counted as ``unauthenticated`` (linkage still checked). An unkeyed entry after a keyed one is a
    downgrade and a problem. Deleting the newest entries leaves a valid shorter chain: pass the head
    recorded earlier as ``expected_head`` (seq, hash) to catch that."""
    tier = privacy_tier(store)
    key = _audit_key(codec if codec is not None else getattr(store, "codec", None))
    problems: list[tuple[int, str]] = []
    prev, want_seq, count, keyed, unauth = GENESIS_HASH, 1, 0, 0, 0
    at_head: str | None = None
    after = 0
    while True:
        page = tier.audit_entries(after_seq=after, limit=_PAGE)
        for e in page:
            count += 1
            if e.seq != want_seq:
                problems.append((e.seq, f"expected entry {want_seq} here: entries were removed or renumbered"))
            if e.prev_hash != prev:
                problems.append((e.seq, "prev_hash is not the previous entry's hash: an entry before it was "
                                        "removed, inserted or reordered"))
            if e.hash.startswith(KEYED):
                keyed += 1
                if key is None:
                    unauth += 1
                elif not hmac.compare_digest(e.hash, entry_hash(e.event, e.seq, e.prev_hash, key)):
                    problems.append((e.seq, "hash does not match the entry: it was changed"))
            elif e.hash.startswith(PLAIN):
                if keyed:
                    problems.append((e.seq, "unkeyed entry after keyed ones: the chain was rewritten"))
                elif e.hash != entry_hash(e.event, e.seq, e.prev_hash, None):
                    problems.append((e.seq, "hash does not match the entry: it was changed"))
            else:
                problems.append((e.seq, "hash has an unknown format"))
            if expected_head is not None and e.seq == expected_head[0]:
                at_head = e.hash
            prev, want_seq = e.hash, e.seq + 1
        if len(page) < _PAGE:
            break
        after = page[-1].seq
    if expected_head is not None and at_head != expected_head[1]:
        problems.append((expected_head[0], "the recorded head is missing or differs: the log was cut or rewritten"))
    return VerifyResult(not problems, count, want_seq - 1, prev, keyed, unauth, problems)


def read_audit(
    store: Any, *, org_id: str | None = None, user_id: str | None = None, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    """Audit entries as dicts, oldest first; one org's, one user's (in ``org_id``, default org), or all."""
    for name, value, low, high in (("after", after, 0, None), ("limit", limit, 1, 1000)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
            bound = f"from {low} to {high}" if high else f"of at least {low}"
            raise InvalidInputError(name, f"must be an integer {bound}, got {value!r}")
    if user_id is not None and org_id is None:
        org_id = DEFAULT_ORG
    return [e.to_dict() for e in privacy_tier(store).audit_entries(
        after_seq=after, limit=limit, org_id=org_id, user_id=user_id)]


# -- what an audited Memory call records ------------------------------------------------------------

Summary = tuple[list[str], dict[str, Any]]


def _ids(rows: Any, key: str = "id") -> list[str]:
    return [r[key] for r in rows]


# Per audited call, from its arguments and result: the record ids it touched and small details (counts,
# limits, flags) — never content.
SUMMARIES: dict[str, Callable[[dict[str, Any], Any], Summary]] = {
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
    "requeue": lambda a, r: ([], {"ingestion_id": r["ingestion_id"]}),
    "process_queue": lambda a, r: ([], dict(r)),
    "retry_failed": lambda a, r: (_ids(r["results"]), {"retried": r["retried"], "still_failed": r["still_failed"]}),
    "stats": lambda a, r: ([], {}),
    "working_state": lambda a, r: ([], {"conversation_id": a.get("conversation_id")}),
    "update_working_state": lambda a, r: ([], {"conversation_id": a.get("conversation_id"),
                                               "op": (a.get("edit") or {}).get("op")}),
}
