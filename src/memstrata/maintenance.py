"""Store upkeep the faces ask for by URL: creating or upgrading a production store's schema.

SQLite stores migrate themselves when opened; a PostgreSQL store is migrated here (``memstrata migrate``)
so that an operator can run it once before starting many servers.
"""

from __future__ import annotations

from memstrata.config import parse_store_url
from memstrata.errors import ConfigurationError


def migrate_store(url: str, *, dim: int | None = None, connect_timeout: float = 5.0) -> tuple[int, int]:
    """Bring the schema at ``url`` up to date; returns (version before, version after)."""
    parsed = parse_store_url(url)
    if parsed.scheme != "postgresql":
        raise ConfigurationError(
            f"migrate: {parsed.scheme} stores migrate themselves when opened; this command is for postgresql://"
        )
    from memstrata.backends.postgres import migrate, schema_status

    before = schema_status(parsed.url, connect_timeout=connect_timeout)
    return before, migrate(parsed.url, dim=dim, connect_timeout=connect_timeout)
