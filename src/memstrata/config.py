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
    # Each sentence of a long message also gets a vector, stored beside the message's memory, so retrieval can
    # find a one-sentence aside inside a message about something else (``Preset.sentence_weight``).
    sentence_vectors: bool = True

    def __post_init__(self) -> None:
        if self.mode not in EXTRACTION_MODES:
            raise ConfigurationError(f"extraction mode: {self.mode!r} is not one of {EXTRACTION_MODES}")
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise ConfigurationError(
                f"conflict_policy: {self.conflict_policy!r} is not one of {CONFLICT_POLICIES}"
            )
        if not 0.0 <= self.importance_threshold <= 1.0:
            raise ConfigurationError("importance_threshold: must be between 0 and 1")
