"""Retention: per-org policies by tier and category, legal holds, and the purge job that enforces them.

A policy says "delete ``tier`` data of this org older than N days", optionally only for one category (a
record's metadata ``category``, or a tag in its ``tags``). A record covered by category policies goes
when the shortest of them expires; the tier-wide policy applies only to records no category policy
covers, so "legal: 7 years" is not cut short by "everything: 1 year". Age is time since a record was
last written (episodes: stored; memories: last updated). Short-term retention clears conversations
idle for longer than the age. A legal hold on a user suspends every purge of their data.

``run_retention`` is idempotent (a second run deletes nothing new) and audited.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from typing import Any

from memstrata.core.validate import parse_time
from memstrata.errors import InvalidInputError
from memstrata.models import DEFAULT_ORG, Scope, check_id
from memstrata.privacy.archive import purge as archive_purge
from memstrata.privacy.audit import Auditor
from memstrata.tiers.base import Capability
from memstrata.tiers.privacy import TIERS, LegalHold, PurgeResult, RetentionPolicy, privacy_tier

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*$", re.IGNORECASE)
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_age(value: Any) -> float:
    """Seconds from a number of seconds, a timedelta, or text such as ``"90d"``, ``"12h"``, ``"1y"``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _AGE.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2).lower()]
    else:
        raise InvalidInputError("max_age", "must be seconds, a timedelta, or text like '90d', '12h', '1y'")
    if seconds <= 0:
        raise InvalidInputError("max_age", "must be positive")
    return seconds


def _check_tier(tier: str, category: str | None) -> None:
    if tier not in TIERS:
        raise InvalidInputError("tier", f"must be one of {', '.join(TIERS)}")
    if category is not None and (not isinstance(category, str) or not category.strip()):
        raise InvalidInputError("category", "must be a non-empty string or None")
    if tier == "short_term" and category is not None:
        raise InvalidInputError("category", "short-term turns carry no metadata; set a tier-wide policy")


def _store(target: Any) -> Any:
    return getattr(target, "store", target)


def _actor(target: Any, actor: str | None) -> str:
    return actor or str(getattr(target, "actor", "library"))


def set_policy(
    target: Any, tier: str, max_age: Any, *, org_id: str | None = None, category: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Set (or replace) the retention of ``tier`` (and ``category``) in an org. ``target``: a Memory or store."""
    org = check_id("org_id", org_id) or DEFAULT_ORG
    _check_tier(tier, category)
    cat = category.strip().casefold() if category else None
    policy = privacy_tier(_store(target)).put_retention_policy(
        RetentionPolicy(str(uuid.uuid4()), org, tier, cat, parse_age(max_age), time.time()))
    Auditor(_store(target), _actor(target, actor)).record(
        "retention.set", org_id=org, details={"tier": tier, "category": cat, "max_age_seconds": policy.max_age_seconds})
    return policy.to_dict()


def remove_policy(
    target: Any, tier: str, *, org_id: str | None = None, category: str | None = None, actor: str | None = None
) -> bool:
    """Remove a policy; False when there was none."""
    org = check_id("org_id", org_id) or DEFAULT_ORG
    _check_tier(tier, category)
    cat = category.strip().casefold() if category else None
    removed = privacy_tier(_store(target)).delete_retention_policy(org, tier, cat)
    Auditor(_store(target), _actor(target, actor)).record(
        "retention.remove", org_id=org, details={"tier": tier, "category": cat, "removed": removed})
    return removed


def policies(target: Any, org_id: str | None = None) -> list[dict[str, Any]]:
    """Every policy (of one org, when given)."""
    return [p.to_dict() for p in privacy_tier(_store(target)).retention_policies(org_id)]


def hold_user(
    target: Any, user_id: str, *, reason: str, org_id: str | None = None, actor: str | None = None
) -> dict[str, Any]:
    """Place a legal hold on a user: no purge and no erasure touches their data until it is released."""
    check_id("user_id", user_id, required=True)
    org = check_id("org_id", org_id) or DEFAULT_ORG
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("reason", "a legal hold needs a reason")
    hold = privacy_tier(_store(target)).put_legal_hold(LegalHold(org, user_id, reason.strip(), time.time()))
    Auditor(_store(target), _actor(target, actor)).record("retention.hold", scope=Scope(org, user_id))
    return hold.to_dict()


def release_user(target: Any, user_id: str, *, org_id: str | None = None, actor: str | None = None) -> bool:
    """Release a user's legal hold; False when there was none."""
    check_id("user_id", user_id, required=True)
    org = check_id("org_id", org_id) or DEFAULT_ORG
    released = privacy_tier(_store(target)).delete_legal_hold(org, user_id)
    Auditor(_store(target), _actor(target, actor)).record(
        "retention.release", scope=Scope(org, user_id), details={"released": released})
    return released


def holds(target: Any, org_id: str | None = None) -> list[dict[str, Any]]:
    """Every legal hold (of one org, when given)."""
    return [h.to_dict() for h in privacy_tier(_store(target)).legal_holds(org_id)]


def _now(now: Any) -> float:
    return time.time() if now is None else parse_time("now", now).timestamp()


def run_retention(memory: Any, now: Any = None, *, org_id: str | None = None, actor: str | None = None
                  ) -> dict[str, Any]:
    """Enforce every policy (of one org, when given) as of ``now``; returns rows deleted per tier and table.

    Short-term first (it finds idle conversations through their episodes), then episodic, then long-term.
    Each purged scope gets an audit entry with the purged ids, and the run one with the counts."""
    at = _now(now)
    store = memory.store
    tier = privacy_tier(store)
    auditor = Auditor(store, _actor(memory, actor))
    tiers = memory.tiers
    vectors = tiers.vectors if tiers.supports(Capability.EXTERNAL_VECTORS) else None
    report: dict[str, Any] = {"now": at, "orgs": {}}
    by_org: dict[str, list[RetentionPolicy]] = {}
    for policy in tier.retention_policies(org_id):
        by_org.setdefault(policy.org_id, []).append(policy)
    for org, org_policies in sorted(by_org.items()):
        counts: dict[str, dict[str, int]] = {}
        for tier_name in TIERS:
            selected = [p for p in org_policies if p.tier == tier_name]
            if not selected:
                continue
            if tier_name == "short_term":
                counts[tier_name] = _short_term(memory, tier.idle_conversations(org, at - selected[0].max_age_seconds))
                continue
            purge = tier.purge_episodes if tier_name == "episodic" else tier.purge_memories
            result = PurgeResult()
            categories = [p.category for p in selected if p.category is not None]
            for p in sorted(selected, key=lambda p: p.category is None):
                result.merge(purge(org, at - p.max_age_seconds, category=p.category,
                                   exclude_categories=categories if p.category is None else ()))
            archive = getattr(memory, "archive", None)
            if tier_name == "episodic" and archive is not None:
                held = [h.user_id for h in tier.legal_holds(org)]
                for p in sorted(selected, key=lambda p: p.category is None):
                    for scope, ids in archive_purge(
                            archive, store.codec, org, at - p.max_age_seconds, category=p.category,
                            exclude_categories=categories if p.category is None else (), held=held).items():
                        result.deleted.setdefault(scope, []).extend(ids)
                        result.counts["archived_episodes"] = result.counts.get("archived_episodes", 0) + len(ids)
            for scope, ids in result.deleted.items():
                if tier_name == "long_term" and vectors is not None:
                    vectors.delete(scope, ids)  # an external index mirrors the store; keep it in step
                auditor.record("retention.purge", scope=scope, memory_ids=ids, details={"tier": tier_name})
            memory.writer.purged(list(result.deleted))  # the read cache must not serve purged rows
            counts[tier_name] = dict(result.counts)
        auditor.record("retention.run", org_id=org, details={"now": at, "deleted": counts})
        report["orgs"][org] = counts
    return report


def _short_term(memory: Any, idle: list[tuple[Scope, str]]) -> dict[str, int]:
    cleared = working = 0
    for scope, conversation in idle:
        cleared += memory.short_term.clear(scope, conversation)
        working += memory.working.clear(scope, conversation)
    return {"conversations": cleared, "working_states": working}
