"""API key storage for the SQLite store (a mixin of SQLiteStore)."""

from __future__ import annotations


class SQLiteKeysMixin:
    """Implements memstrata.tiers.keys.KeyTier on the store's connections."""
