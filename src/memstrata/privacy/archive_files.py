"""Where archived episodes live: Parquet files and one JSON manifest under a root, on a local path or an
S3-compatible bucket (``s3://bucket/prefix?endpoint_override=http://host:9000&region=us-east-1``).

One file per (org, month of ``occurred_at``): ``org=<org>/<YYYY-MM>.parquet``. The manifest lists every file
with its row count, time ranges, scope keys and SHA-256, plus the archive policies; a reader opens only the
files whose manifest entry overlaps what it asks for, and checks the checksum before it trusts a file.

Every change writes a new file beside the old one and moves it into place, then rewrites the manifest the
same way, so a reader sees the old file or the new one, never half of one. Writers of one local archive are
serialised by a lock file; an S3 archive has no such lock, so run one archiving job at a time on it.

The rows hold the store's columns as stored: an encrypting store's text, name, error and metadata stay
sealed with the subject's data key, so destroying the key makes every archived copy unreadable too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from memstrata.errors import BackendError, ConfigurationError

MANIFEST = "manifest.json"
FORMAT = "memstrata.episode-archive"
VERSION = 1
# The columns of an archived episode, as the store holds them (sealed ones marked).
COLUMNS = ("id", "scope_key", "org_id", "user_id", "agent_id", "run_id", "conversation_id", "role", "name",
           "content", "metadata", "position", "occurred_at", "created_at", "extraction_status", "extraction_error")
SEALED = frozenset({"name", "content", "metadata", "extraction_error"})
_FLOATS = frozenset({"occurred_at", "created_at"})


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401 - loads pa.parquet
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("archive: needs pyarrow; install memstrata[archive]") from None
    return pa


def schema() -> Any:
    pa = _pa()
    return pa.schema([(c, pa.float64() if c in _FLOATS else pa.int64() if c == "position" else pa.string())
                      for c in COLUMNS])


@dataclass
class FileEntry:
    """One archive file as the manifest describes it."""

    path: str
    org_id: str
    month: str
    rows: int
    min_occurred_at: float
    max_occurred_at: float
    min_created_at: float
    max_created_at: float
    scopes: list[str]
    sha256: str
    bytes: int
    sealed: bool
    written_at: float = field(default_factory=time.time)

    def overlaps(self, start: float | None, end: float | None) -> bool:
        return (start is None or self.max_occurred_at >= start) and (end is None or self.min_occurred_at < end)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Manifest:
    files: dict[str, FileEntry] = field(default_factory=dict)
    policies: dict[str, float] = field(default_factory=dict)  # org id ("*": every org) -> seconds
    updated_at: float = 0.0

    def to_json(self) -> bytes:
        doc = {"format": FORMAT, "version": VERSION, "updated_at": self.updated_at, "policies": self.policies,
               "files": [f.to_dict() for f in sorted(self.files.values(), key=lambda f: f.path)]}
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise BackendError(f"archive: {MANIFEST} is not a {FORMAT} v{VERSION} manifest")
        files = {f["path"]: FileEntry(**f) for f in doc.get("files", [])}
        return cls(files, {k: float(v) for k, v in doc.get("policies", {}).items()}, float(doc["updated_at"]))


def month_of(ts: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(ts))


def file_path(org_id: str, month: str) -> str:
    """A fresh name for the (org, month) file: each version gets its own, so the manifest switches to it."""
    return f"org={quote(org_id, safe='')}/{month}-{uuid.uuid4().hex[:12]}.parquet"


class ArchiveFiles:
    """The files and manifest of one archive root; ``url`` is a directory path, ``file://`` or ``s3://``."""

    def __init__(self, url: str, *, compression: str = "zstd") -> None:
        pa = _pa()
        import pyarrow.fs as pafs

        self.url = url
        self.compression = compression
        parts = urlsplit(url)
        self.local = parts.scheme in ("", "file")
        if self.local:
            root = parts.path if parts.scheme == "file" else url
            self.fs: Any = pafs.LocalFileSystem()
            self.root = os.path.abspath(root)
            self.fs.create_dir(self.root, recursive=True)
        elif parts.scheme == "s3":
            options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            endpoint = options.pop("endpoint_override", None)
            kwargs: dict[str, Any] = {"region": options.pop("region", None) or "us-east-1"}
            if endpoint:
                ep = urlsplit(endpoint)
                kwargs.update(endpoint_override=ep.netloc or ep.path, scheme=ep.scheme or "https")
            if options:
                raise ConfigurationError(f"archive: unknown s3 options {sorted(options)}")
            self.fs = pafs.S3FileSystem(**kwargs)
            self.root = (parts.netloc + parts.path).rstrip("/")
        else:
            raise ConfigurationError(f"archive: {url!r} is not a path, file:// or s3:// URL")
        self._pa = pa
        self._lock = threading.RLock()

    def _full(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    # -- raw bytes ---------------------------------------------------------------------------------

    def _read(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self._full(rel)) as f:
                data: bytes = f.read()
                return data
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not exist" in str(exc).lower() or "not found" in str(exc).lower():
                return None
            raise BackendError(f"archive: reading {rel}: {exc}") from exc

    def _write(self, rel: str, data: bytes) -> None:
        """Write ``data`` beside ``rel`` and move it into place: readers see the old bytes or the new ones."""
        full = self._full(rel)
        parent = full.rpartition("/")[0]
        # An object store replaces an object whole on PUT; a file system needs the write-then-rename.
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}" if self.local else full
        try:
            self.fs.create_dir(parent, recursive=True)
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            if tmp != full:
                self.fs.move(tmp, full)
        except OSError as exc:
            raise BackendError(f"archive: writing {rel}: {exc}") from exc

    # -- the manifest ------------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        raw = self._read(MANIFEST)
        if raw is None:
            self._check_bucket()
            return Manifest()
        return Manifest.from_json(raw)

    def _check_bucket(self) -> None:
        """No manifest is a new, empty archive only where the bucket exists: S3 answers a missing bucket as
        a missing object, and a mistyped bucket must not read as an empty archive (an erasure would then
        report nothing archived instead of failing)."""
        if self.local:
            return
        import pyarrow.fs as pafs

        bucket = self.root.partition("/")[0]
        try:
            found = self.fs.get_file_info(bucket).type != pafs.FileType.NotFound
        except OSError as exc:
            raise BackendError(f"archive: reaching the bucket {bucket!r} of {self.url}: {exc}") from exc
        if not found:
            raise BackendError(f"archive: the bucket {bucket!r} of {self.url} does not exist; create it first "
                               "(memstrata does not create buckets)")

    @contextlib.contextmanager
    def changing(self) -> Iterator[Manifest]:
        """The manifest to change, under the archive's lock; written back when the block succeeds.

        A new version of a file is written under a new name and the manifest switched to it; only then
        are files the manifest no longer lists deleted (the versions replaced, and any left by a process
        that died before or after its manifest write), so a crash never leaves the manifest pointing at a
        file that does not match it, and erased rows do not outlive the next change in a stray file."""
        with self._lock, self._file_lock():
            manifest = self.manifest()
            yield manifest
            manifest.updated_at = time.time()
            self._write(MANIFEST, manifest.to_json())
            self._sweep(manifest)

    def _sweep(self, manifest: Manifest) -> None:
        import pyarrow.fs as pafs

        listed = {self._full(rel) for rel in manifest.files}
        try:
            found = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True))
        except OSError as exc:
            raise BackendError(f"archive: listing {self.url}: {exc}") from exc
        for info in found:
            name = info.path.rpartition("/")[2]
            stray = name.endswith(".parquet") or name.startswith(".tmp-")
            if info.type == pafs.FileType.File and stray and info.path not in listed:
                self.fs.delete_file(info.path)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if not self.local:
            yield
            return
        import fcntl

        with open(self._full(".lock"), "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- files -------------------------------------------------------------------------------------

    def read_rows(self, entry: FileEntry, scope_keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The rows of a file (only those of ``scope_keys``, when given), after checking its checksum."""
        raw = self._read(entry.path)
        if raw is None:
            raise BackendError(f"archive: {entry.path} is in the manifest but missing")
        if hashlib.sha256(raw).hexdigest() != entry.sha256:
            raise BackendError(f"archive: {entry.path} does not match its checksum; it was changed or damaged")
        import pyarrow.parquet as pq

        filters = [("scope_key", "in", list(scope_keys))] if scope_keys is not None else None
        table = pq.read_table(io.BytesIO(raw), filters=filters, schema=schema())
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows

    def write_rows(self, manifest: Manifest, org_id: str, month: str, rows: Sequence[dict[str, Any]],
                   sealed: bool) -> FileEntry | None:
        """Replace the (org, month) file with ``rows`` (none: drop it) in ``manifest``; the old version is
        deleted once the manifest no longer lists it (``changing``)."""
        for old in [f.path for f in manifest.files.values() if f.org_id == org_id and f.month == month]:
            del manifest.files[old]
        if not rows:
            return None
        rel = file_path(org_id, month)
        import pyarrow.parquet as pq

        ordered = sorted(rows, key=lambda r: (r["scope_key"], r["occurred_at"], r["position"], r["id"]))
        table = self._pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in ordered], schema=schema())
        sink = io.BytesIO()
        pq.write_table(table, sink, compression=self.compression)
        data = sink.getvalue()
        self._write(rel, data)
        occurred = [r["occurred_at"] for r in ordered]
        created = [r["created_at"] for r in ordered]
        entry = FileEntry(
            path=rel, org_id=org_id, month=month, rows=len(ordered), min_occurred_at=min(occurred),
            max_occurred_at=max(occurred), min_created_at=min(created), max_created_at=max(created),
            scopes=sorted({r["scope_key"] for r in ordered}), sha256=hashlib.sha256(data).hexdigest(),
            bytes=len(data), sealed=sealed,
        )
        manifest.files[rel] = entry
        return entry
