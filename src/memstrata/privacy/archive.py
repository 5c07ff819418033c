"""Archival: episodes older than a policy move out of the database into Parquet files (see
``archive_files``), stay readable by time range on request, and can be restored.

The policy is an age per org (or ``"*"``, every org without its own), kept in the archive's manifest; an
archive run moves the org's episodes whose ``occurred_at`` is older than the age, ``pending`` ones (still
waiting for extraction) and those of users under legal hold excepted. A run writes the files first, then
deletes the rows it wrote from the database, so a crash in between leaves a row in both places, never in
neither; the next run merges by episode id. Restoring is the same in the other direction, idempotent by id.

Privacy reaches the archive too: ``erase_user`` (``forget_user``), ``delete_scope`` (``delete_all``) and
``purge`` (retention) rewrite the affected files without the rows and update the manifest. Text stays sealed
as the store seals it, with the subject's data key.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from memstrata.core.validate import parse_time
from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.models import DEFAULT_ORG, EpisodeRecord, Scope, check_id
from memstrata.privacy.archive_files import ArchiveFiles, FileEntry, Manifest, month_of
from memstrata.privacy.audit import Auditor
from memstrata.tiers.base import Codec
from memstrata.tiers.privacy import in_category, parse_scope_key, privacy_tier, user_key_range

ALL_ORGS = "*"
_ALL = 2**62
_FLUSH_ROWS = 20_000  # rows gathered before a run writes them out and deletes them from the database
_MOVABLE = frozenset({"done", "failed", "skipped"})  # pending episodes still wait for extraction


class Archive:
    """An episode archive at ``url``: a directory, ``file://`` path or ``s3://`` bucket prefix."""

    def __init__(self, url: str, *, compression: str = "zstd") -> None:
        self.url = url
        self.files = ArchiveFiles(url, compression=compression)

    def __repr__(self) -> str:
        return f"Archive({self.url!r})"


def open_archive(archive: str | Archive | None) -> Archive | None:
    if archive is None or isinstance(archive, Archive):
        return archive
    if not isinstance(archive, str) or not archive.strip():
        raise ConfigurationError("archive: must be a path, file:// or s3:// URL")
    return Archive(archive)


def _archive(memory: Any) -> Archive:
    found = getattr(memory, "archive", None)
    if not isinstance(found, Archive):
        raise ConfigurationError("archive: this Memory has no archive; open it with archive=PATH_OR_URL "
                                 "(MEMSTRATA_ARCHIVE)")
    return found


# -- rows <-> records ------------------------------------------------------------------------------


def _seal_opt(codec: Codec, scope: Scope, value: str | None) -> str | None:
    return None if value is None else codec.seal(scope, value)


def _open_opt(codec: Codec, scope: Scope, value: str | None) -> str | None:
    return None if value is None else codec.open(scope, value)


def to_row(codec: Codec, e: EpisodeRecord) -> dict[str, Any]:
    s = e.scope
    codec.prepare(s)
    return {
        "id": e.id, "scope_key": s.key, "org_id": s.org_id, "user_id": s.user_id, "agent_id": s.agent_id,
        "run_id": s.run_id, "conversation_id": e.conversation_id, "role": e.role, "name": _seal_opt(codec, s, e.name),
        "content": codec.seal(s, e.content), "metadata": codec.seal(s, json.dumps(e.metadata, sort_keys=True)),
        "position": e.position, "occurred_at": e.occurred_at, "created_at": e.created_at,
        "extraction_status": e.extraction_status, "extraction_error": _seal_opt(codec, s, e.extraction_error),
    }


def _scope(row: dict[str, Any]) -> Scope:
    return Scope(row["org_id"], row["user_id"], row["agent_id"], row["run_id"])


def to_record(codec: Codec, row: dict[str, Any]) -> EpisodeRecord:
    s = _scope(row)
    return EpisodeRecord(
        id=row["id"], scope=s, conversation_id=row["conversation_id"], role=row["role"],
        content=codec.open(s, row["content"]), occurred_at=row["occurred_at"], created_at=row["created_at"],
        name=_open_opt(codec, s, row["name"]), metadata=json.loads(codec.open(s, row["metadata"])),
        position=int(row["position"]), extraction_status=row["extraction_status"],
        extraction_error=_open_opt(codec, s, row["extraction_error"]),
    )


def _check_sealing(entry: FileEntry, codec: Codec) -> None:
    if entry.sealed != codec.encrypts:
        state = "encrypted" if entry.sealed else "plaintext"
        raise ConfigurationError(f"archive: {entry.path} holds {state} rows; open the store the way it was "
                                 "written (MEMSTRATA_MASTER_KEY)")


# -- policies --------------------------------------------------------------------------------------


def set_policy(memory: Any, after: Any, *, org_id: str | None = None) -> dict[str, Any]:
    """Archive the org's episodes (``org_id`` None: every org without its own policy) older than ``after``
    (seconds, a timedelta or text such as ``"180d"``)."""
    from memstrata.privacy.retention import parse_age

    org = check_id("org_id", org_id) or ALL_ORGS
    seconds = parse_age(after)
    with _archive(memory).files.changing() as manifest:
        manifest.policies[org] = seconds
    return {"org_id": org, "archive_after_seconds": seconds}


def remove_policy(memory: Any, *, org_id: str | None = None) -> bool:
    org = check_id("org_id", org_id) or ALL_ORGS
    with _archive(memory).files.changing() as manifest:
        return manifest.policies.pop(org, None) is not None


def describe(memory: Any, org_id: str | None = None) -> dict[str, Any]:
    """The archive's location, policies and files (of one org, when given), as the manifest holds them."""
    archive = _archive(memory)
    manifest = archive.files.manifest()
    files = [f.to_dict() for f in sorted(manifest.files.values(), key=lambda f: f.path)
             if org_id is None or f.org_id == org_id]
    return {"url": archive.url, "policies": dict(manifest.policies), "files": files,
            "rows": sum(f["rows"] for f in files), "bytes": sum(f["bytes"] for f in files)}


# -- moving episodes out ---------------------------------------------------------------------------


def _now(now: Any) -> float:
    return time.time() if now is None else parse_time("now", now).timestamp()


def _merge(files: ArchiveFiles, codec: Codec, org: str, rows: Sequence[dict[str, Any]]) -> None:
    """Add ``rows`` to the org's month files (a row already there by id is replaced)."""
    by_month: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_month.setdefault(month_of(row["occurred_at"]), []).append(row)
    with files.changing() as manifest:
        for month, new in by_month.items():
            merged: dict[str, dict[str, Any]] = {}
            entry = next((f for f in manifest.files.values() if f.org_id == org and f.month == month), None)
            if entry is not None:
                _check_sealing(entry, codec)
                merged = {r["id"]: r for r in files.read_rows(entry)}
            merged.update((r["id"], r) for r in new)
            files.write_rows(manifest, org, month, list(merged.values()), codec.encrypts)


def _rewrite(files: ArchiveFiles, manifest: Manifest, entries: Iterable[FileEntry],
             drop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Rewrite each file without the rows ``drop`` selects; the rows dropped."""
    dropped: list[dict[str, Any]] = []
    for entry in list(entries):
        rows = files.read_rows(entry)
        keep = [r for r in rows if not drop(r)]
        if len(keep) != len(rows):
            dropped += [r for r in rows if drop(r)]
            files.write_rows(manifest, entry.org_id, entry.month, keep, entry.sealed)
    return dropped


def _cutoffs(policies: dict[str, float], orgs: Iterable[str], at: float, older_than: Any,
             org_id: str | None) -> dict[str, float]:
    from memstrata.privacy.retention import parse_age

    fixed = None if older_than is None else parse_age(older_than)
    out: dict[str, float] = {}
    for org in orgs:
        age = fixed if fixed is not None else policies.get(org, policies.get(ALL_ORGS))
        if age is not None and (org_id is None or org == org_id):
            out[org] = at - age
    return out


def run_archive(memory: Any, now: Any = None, *, older_than: Any = None, org_id: str | None = None,
                actor: str | None = None) -> dict[str, Any]:
    """Move episodes older than the policy (or ``older_than``, overriding it) into the archive, for every org
    (or one). Returns the episodes moved per org. Safe to run again after a crash."""
    archive = _archive(memory)
    check_id("org_id", org_id)
    store = memory.store
    tier = privacy_tier(store)
    codec: Codec = store.codec
    at = _now(now)
    scopes = [Scope(s["org_id"], s["user_id"], s["agent_id"], s["run_id"])
              for s in store.scopes(org_id, None, None, _ALL)]
    cutoffs = _cutoffs(archive.files.manifest().policies, {s.org_id for s in scopes}, at, older_than, org_id)
    report: dict[str, Any] = {"now": at, "orgs": {}}
    auditor = Auditor(store, actor or str(getattr(memory, "actor", "library")))
    for org, cutoff in sorted(cutoffs.items()):
        held = {h.user_id for h in tier.legal_holds(org)}
        pending: list[dict[str, Any]] = []
        moved = Counter[str]()

        def flush(org: str = org, pending: list[dict[str, Any]] = pending, moved: Counter[str] = moved) -> None:
            if not pending:
                return
            _merge(archive.files, codec, org, pending)
            result = tier.delete_episodes(org, [(r["scope_key"], r["id"]) for r in pending])
            gone = {i for ids in result.deleted.values() for i in ids}
            stayed = {r["id"] for r in pending} - gone  # a hold placed meanwhile: the database copy stays
            if stayed:
                with archive.files.changing() as manifest:
                    entries = [f for f in manifest.files.values() if f.org_id == org]
                    _rewrite(archive.files, manifest, entries, lambda r: r["id"] in stayed)
            moved.update(episodes=len(gone), files_written=len({month_of(r["occurred_at"]) for r in pending}))
            pending.clear()

        for scope in (s for s in scopes if s.org_id == org and s.user_id not in held):
            episodes = store.list_episodes(scope, end=cutoff, limit=_ALL)
            pending += [to_row(codec, e) for e in episodes if e.extraction_status in _MOVABLE]
            if len(pending) >= _FLUSH_ROWS:
                flush()
        flush()
        auditor.record("archive.run", org_id=org, details={"now": at, "before": cutoff, **moved})
        report["orgs"][org] = {"before": cutoff, "episodes": moved["episodes"]}
    return report


# -- reading and restoring -------------------------------------------------------------------------


def _matching(manifest: Manifest, org: str, keys: set[str] | None, start: float | None,
              end: float | None) -> list[FileEntry]:
    return [f for f in sorted(manifest.files.values(), key=lambda f: f.path)
            if f.org_id == org and f.overlaps(start, end) and (keys is None or keys & set(f.scopes))]


def _in_range(row: dict[str, Any], start: float | None, end: float | None) -> bool:
    return (start is None or row["occurred_at"] >= start) and (end is None or row["occurred_at"] < end)


def archived_episodes(
    memory: Any, scope: Scope, *, start: float | None = None, end: float | None = None,
    conversation_id: str | None = None, query: str | None = None, limit: int = 100,
) -> list[EpisodeRecord]:
    """Archived episodes of exactly ``scope`` with ``start <= occurred_at < end``, in time order; only the
    files whose manifest ranges overlap and that hold the scope are read. ``query``: a case-insensitive
    phrase the content must contain."""
    archive = _archive(memory)
    codec: Codec = memory.store.codec
    out: list[EpisodeRecord] = []
    needle = query.casefold() if query else None
    for entry in _matching(archive.files.manifest(), scope.org_id, {scope.key}, start, end):
        _check_sealing(entry, codec)
        for row in archive.files.read_rows(entry, [scope.key]):
            if row["scope_key"] != scope.key or not _in_range(row, start, end):
                continue
            if conversation_id is not None and row["conversation_id"] != conversation_id:
                continue
            record = to_record(codec, row)
            if needle is None or needle in record.content.casefold():
                out.append(record)
    out.sort(key=lambda e: (e.occurred_at, e.position, e.id))
    return out[:limit]


def restore(
    memory: Any, *, org_id: str | None = None, scope: Scope | None = None, start: Any = None, end: Any = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Move archived episodes of one scope (or every scope of ``org_id``) with ``start <= occurred_at < end``
    back into the database. Idempotent by episode id: one already there is not written again."""
    archive = _archive(memory)
    org = scope.org_id if scope is not None else (check_id("org_id", org_id) or DEFAULT_ORG)
    lo = None if start is None else parse_time("start", start).timestamp()
    hi = None if end is None else parse_time("end", end).timestamp()
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInputError("end", "must be after start")
    store = memory.store
    codec: Codec = store.codec
    keys = None if scope is None else {scope.key}

    def wanted(row: dict[str, Any]) -> bool:
        return (keys is None or row["scope_key"] in keys) and _in_range(row, lo, hi)

    restored = 0
    with archive.files.changing() as manifest:
        entries = _matching(manifest, org, keys, lo, hi)
        for entry in entries:
            _check_sealing(entry, codec)
        by_scope: dict[Scope, list[EpisodeRecord]] = {}
        for entry in entries:
            for row in archive.files.read_rows(entry, sorted(keys) if keys else None):
                if wanted(row):
                    by_scope.setdefault(_scope(row), []).append(to_record(codec, row))
        for sc, records in by_scope.items():
            there = {e.id for e in store.get_episodes(sc, [r.id for r in records])}
            missing = [r for r in records if r.id not in there]
            store.add_episodes(missing)  # written before the files lose them: a crash leaves both copies
            restored += len(missing)
        _rewrite(archive.files, manifest, entries, wanted)
    Auditor(store, actor or str(getattr(memory, "actor", "library"))).record(
        "archive.restore", scope=scope, org_id=org, details={"start": lo, "end": hi, "episodes": restored})
    return {"org_id": org, "scope": scope.as_dict() if scope else None, "restored": restored}


# -- privacy ---------------------------------------------------------------------------------------


def erase_user(archive: Archive, org_id: str, user_id: str) -> dict[str, int]:
    """Rewrite every file holding the user's rows without them; the manifest loses their scope keys."""
    low, high = user_key_range(org_id, user_id)
    with archive.files.changing() as manifest:
        entries = [f for f in manifest.files.values()
                   if f.org_id == org_id and any(low <= k < high for k in f.scopes)]
        dropped = _rewrite(archive.files, manifest, entries, lambda r: low <= r["scope_key"] < high)
    return {"episodes": len(dropped), "files": len(entries)}


def reset(archive: Archive) -> int:
    """Delete every archived file (``Memory.reset``); the policies stay. Returns the episodes deleted."""
    with archive.files.changing() as manifest:
        return len(_rewrite(archive.files, manifest, manifest.files.values(), lambda r: True))


def user_scopes(archive: Archive, org_id: str, user_id: str) -> list[Scope]:
    """The user's scopes with archived rows, from the manifest alone."""
    low, high = user_key_range(org_id, user_id)
    keys = {k for f in archive.files.manifest().files.values() if f.org_id == org_id for k in f.scopes}
    return [parse_scope_key(k) for k in sorted(keys) if low <= k < high]


def delete_scope(archive: Archive, scope: Scope) -> int:
    with archive.files.changing() as manifest:
        entries = [f for f in manifest.files.values() if f.org_id == scope.org_id and scope.key in f.scopes]
        return len(_rewrite(archive.files, manifest, entries, lambda r: r["scope_key"] == scope.key))


def purge(archive: Archive, codec: Codec, org_id: str, older_than: float, *, category: str | None = None,
          exclude_categories: Sequence[str] = (), held: Iterable[str] = ()) -> dict[Scope, list[str]]:
    """Retention in the archive: drop the org's archived episodes created before ``older_than`` that the
    category test selects, users in ``held`` left alone. Returns the ids dropped per scope."""
    on_hold = set(held)

    def drop(row: dict[str, Any]) -> bool:
        if row["created_at"] >= older_than or row["user_id"] in on_hold:
            return False
        if category is None and not exclude_categories:
            return True
        return in_category(json.loads(codec.open(_scope(row), row["metadata"])), category, exclude_categories)

    with archive.files.changing() as manifest:
        entries = [f for f in manifest.files.values() if f.org_id == org_id and f.min_created_at < older_than]
        dropped = _rewrite(archive.files, manifest, entries, drop)
    out: dict[Scope, list[str]] = {}
    for row in dropped:
        out.setdefault(parse_scope_key(row["scope_key"]), []).append(row["id"])
    return out


def archived_page(memory: Any, scope: Scope, *, start: Any, end: Any, conversation_id: str | None,
                  query: str | None, limit: int) -> dict[str, Any]:
    """``Memory.archived_episodes``: the arguments checked, then :func:`archived_episodes` as a page."""
    from memstrata.core.validate import parse_time
    from memstrata.models import check_id

    check_id("conversation_id", conversation_id)
    lo = None if start is None else parse_time("start", start).timestamp()
    hi = None if end is None else parse_time("end", end).timestamp()
    found = archived_episodes(memory, scope, start=lo, end=hi, conversation_id=conversation_id, query=query,
                              limit=limit)
    return {"results": [e.to_dict() for e in found]}
