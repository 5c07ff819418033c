"""The data subject's rights and the audit trail on ``Memory``: erasure, export and import of a user,
archived episodes, and the audit log. A part of the facade kept in its own module; ``Memory`` inherits it.
The privacy modules load on first use: most callers never need them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memstrata.core.paging import check_limit

if TYPE_CHECKING:
    from memstrata.models import Scope


class PrivacyMethods:
    """``Memory``'s privacy methods."""

    store: Any  # the durable tiers (a property on Memory)
    archive: Any

    def _open(self, user_id: str | None, agent_id: str | None, run_id: str | None, org_id: str | None) -> Scope:
        raise NotImplementedError

    def archived_episodes(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        org_id: str | None = None, start: Any = None, end: Any = None, conversation_id: str | None = None,
        query: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:
        """Raw messages of a scope that archival moved out of the database (``start <= occurred_at < end``,
        in time order; ``query``: a phrase the text contains). Reads only the archive files whose time
        ranges overlap and that hold the scope."""
        from memstrata.privacy import archive

        return archive.archived_page(self, self._open(user_id, agent_id, run_id, org_id), start=start, end=end,
                                     conversation_id=conversation_id, query=query, limit=check_limit(limit))

    def forget_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Erase a user from every tier and scope, destroy their data key, compact storage; returns a receipt."""
        from memstrata.privacy import gdpr  # loaded on first use: most callers never need it
        return gdpr.forget_user(self, user_id, org_id)

    def export_user(self, user_id: str, *, org_id: str | None = None) -> dict[str, Any]:
        """Everything stored about a user, every tier and scope, as portable JSON."""
        from memstrata.privacy import gdpr
        return gdpr.export_user(self, user_id, org_id)

    def import_user(self, data: dict[str, Any], *, user_id: str | None = None,
                    org_id: str | None = None) -> dict[str, Any]:
        """Load an export_user document (optionally as another user or org)."""
        from memstrata.privacy import gdpr
        return gdpr.import_user(self, data, user_id=user_id, org_id=org_id)

    def audit_log(self, *, org_id: str | None = None, user_id: str | None = None, after: int = 0,
                  limit: int = 100) -> list[dict[str, Any]]:
        """Audit entries, oldest first."""
        from memstrata.privacy import audit
        return audit.read_audit(self.store, org_id=org_id, user_id=user_id, after=after, limit=limit)

    def verify_audit(self) -> dict[str, Any]:
        """Check the audit hash chain; {"ok": True, ...} when intact."""
        from memstrata.privacy import audit
        return audit.verify_audit(self.store).to_dict()
