"""Audit log, data keys, retention and legal holds for the SQLite store (a mixin of SQLiteStore)."""

from __future__ import annotations


class SQLitePrivacyMixin:
    """Implements memstrata.tiers.privacy.PrivacyTier on the store's connections."""
