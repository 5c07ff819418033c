"""Typed configuration values and the store URL parser.

The faces read their settings once, into ``memstrata.settings.Settings``; the one variable read here is the
documented fallback of ``Memory()`` without a store (``default_store_url``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from memstrata.errors import ConfigurationError

DEFAULT_STORE = "sqlite:///~/.memstrata/memory.db"
EXTRACTION_MODES = ("rules", "llm")
CONFLICT_POLICIES = ("latest_wins", "keep_both", "manual")


@dataclass(frozen=True)
class StoreURL:
    scheme: str
    path: str
    url: str


def default_store_url() -> str:
    """``MEMSTRATA_STORE`` if set, else the per-user SQLite file: where ``Memory()`` and ``secure_memory()``
    go when they are given no store (the faces always pass one)."""
    return os.environ.get("MEMSTRATA_STORE") or DEFAULT_STORE


def parse_store_url(url: str) -> StoreURL:
    """Validate a store URL: ``sqlite:///abs/path.db``, ``sqlite:///~/rel.db``, ``sqlite://:memory:``, a path."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("store: expected a URL such as sqlite:///path/to/memory.db")
    if "://" not in url:
        return StoreURL("sqlite", str(Path(url).expanduser()), url)
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        raw = unquote(url.split("://", 1)[1])
        if raw in (":memory:", "/:memory:"):
            return StoreURL("sqlite", ":memory:", url)
        if not raw.startswith("/"):
            raise ConfigurationError(f"store: {url!r} needs three slashes: sqlite:///path/to/memory.db")
        rest = raw.lstrip("/")
        # sqlite:///~/x.db and sqlite:///./x.db are home- and cwd-relative; any other path is absolute.
        path = rest if rest.startswith(("~", "./", "../")) else "/" + rest
        return StoreURL("sqlite", str(Path(path).expanduser()), url)
    if scheme in ("postgresql", "postgres"):
        return StoreURL("postgresql", url, url)
    raise ConfigurationError(f"store: unknown scheme {scheme!r} in {url!r} (supported: sqlite, postgresql)")


@dataclass(frozen=True)
class IngestConfig:
    """How ``add`` decides. ``importance_threshold`` only applies to inferred memories."""

    mode: str = "rules"
    importance_threshold: float = 0.5
    conflict_policy: str = "latest_wins"
    near_duplicate: bool = True
    # A statement no attribute family names may replace the user's nearest statement of the same frame that
    # gives another number or name (a guess, always with a conflict record). Off by default: on unseen
    # conversations it ranked more new values first but also superseded statements it should have kept
    # (bench/RESULTS.md, "updates-heldout3").
    reframe_updates: bool = False
    # A user statement that no family settles replaces the user's nearest statement of the same attribute
    # template (its values masked) that gives another value (ingest/template_updates.py). Off by default:
    # it ranked more new values first on every update set but raised conflict records for changes that
    # were none on some (bench/RESULTS.md, "updates-heldout4").
    template_updates: bool = False
    # Each sentence of a long message also gets a vector, stored beside the message's memory, so retrieval can
    # find a one-sentence aside inside a message about something else (``Preset.sentence_weight``).
    sentence_vectors: bool = True
    # A user statement that seems to give one of the user's earlier statements a new value without saying so
    # ("I'm 66 kg and feeling fitter" after "about 71 kg") raises an open conflict record; nothing is
    # superseded (ingest/implicit_changes.py). Rules mode only: in "llm" mode the model judges each pair.
    implicit_conflicts: bool = True

    def __post_init__(self) -> None:
        if self.mode not in EXTRACTION_MODES:
            raise ConfigurationError(f"extraction mode: {self.mode!r} is not one of {EXTRACTION_MODES}")
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise ConfigurationError(
                f"conflict_policy: {self.conflict_policy!r} is not one of {CONFLICT_POLICIES}"
            )
        if not 0.0 <= self.importance_threshold <= 1.0:
            raise ConfigurationError("importance_threshold: must be between 0 and 1")


@dataclass(frozen=True)
class CacheLayers:
    """The read cache in front of the database: in process, then a shared Redis (``url``), then the database
    or the embedder. Without ``url`` only the in-process query-vector LRU runs: scope entries need the shared
    versions that tell every process about a write, so they are never cached by one process alone.

    ``query_vectors`` / ``scopes`` turn each kind off; ``query_ttl`` and ``scope_ttl`` are the shared entries'
    lifetimes, ``local_ttl`` the longest a process keeps a scope entry of its own, ``local_size`` how many
    query vectors and ``local_scope_entries`` how many scope entries a process keeps."""

    url: str | None = None
    query_vectors: bool = True
    scopes: bool = True
    query_ttl: float = 24 * 3600.0
    scope_ttl: float = 600.0
    local_ttl: float = 60.0
    local_size: int = 1024
    local_scope_entries: int = 2048

    def __post_init__(self) -> None:
        for name in ("query_ttl", "scope_ttl", "local_ttl"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ConfigurationError(f"cache layers: {name} must be a positive number of seconds, got {value!r}")
        for name in ("local_size", "local_scope_entries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"cache layers: {name} must be a positive whole number, got {value!r}")
        if self.url is not None and (not isinstance(self.url, str) or "://" not in self.url):
            raise ConfigurationError(f"cache layers: url must be a Redis URL such as redis://host:6379/0, "
                                     f"got {self.url!r}")
