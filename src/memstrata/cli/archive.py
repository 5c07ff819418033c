"""The ``memstrata archive`` commands: archival policies, the archiving job, listing, restoring and reading
archived episodes (docs/scaling.md, "Archival")."""

from __future__ import annotations

from typing import Any

import click

from memstrata.cli.base import emit, open_memory, org_option, pop_scope, root_obj, scope_options


def _memory(ctx: click.Context) -> Any:
    mem = open_memory(ctx)
    return getattr(mem, "memory", mem)


@click.group()
@click.option("--to", "url", default=None, help="the archive: a directory or s3://bucket/prefix (MEMSTRATA_ARCHIVE)")
@click.pass_context
def archive(ctx: click.Context, url: str | None) -> None:
    """Move old episodes out of the store into Parquet files, and back."""
    if url is not None:
        root_obj(ctx).setdefault("flags", {})["archive"] = url


@archive.command(name="policy")
@click.argument("after", required=False)
@org_option
@click.option("--remove", is_flag=True, help="remove the org's (or the global) policy")
@click.pass_context
def archive_policy(ctx: click.Context, after: str | None, org_id: str | None, remove: bool) -> None:
    """Archive episodes older than AFTER (e.g. 180d, 1y) in an org, or in every org without --org."""
    from memstrata.errors import InvalidInputError
    from memstrata.privacy.archive import remove_policy, set_policy

    if remove:
        removed = remove_policy(_memory(ctx), org_id=org_id)
        emit(ctx, {"removed": removed}, "removed" if removed else "(no such policy)")
        return
    if after is None:
        raise InvalidInputError("after", "give an age such as 180d, or --remove")
    p = set_policy(_memory(ctx), after, org_id=org_id)
    emit(ctx, p, f"{p['org_id']}: archive after {p['archive_after_seconds'] / 86400:g} days")


@archive.command(name="run")
@org_option
@click.option("--older-than", default=None, help="an age (e.g. 90d) instead of the policies")
@click.option("--now", default=None, help="reference time (ISO 8601); default: now")
@click.pass_context
def archive_run(ctx: click.Context, org_id: str | None, older_than: str | None, now: str | None) -> None:
    """Move episodes older than the policy into the archive (safe to run again after a crash)."""
    from memstrata.privacy.archive import run_archive

    report = run_archive(_memory(ctx), now, older_than=older_than, org_id=org_id, actor="cli")
    lines = [f"{org}  archived {r['episodes']} episodes" for org, r in report["orgs"].items()]
    emit(ctx, report, "\n".join(lines) or "(no policy applies)")


@archive.command(name="list")
@org_option
@click.pass_context
def archive_list(ctx: click.Context, org_id: str | None) -> None:
    """Show the archive's policies and files (from its manifest)."""
    from memstrata.privacy.archive import describe

    data = describe(_memory(ctx), org_id)
    lines = [f"policy  {org}  {secs / 86400:g} days" for org, secs in sorted(data["policies"].items())]
    lines += [f"{f['path']}  {f['rows']} episodes  {len(f['scopes'])} scopes  {f['bytes']} bytes"
              for f in data["files"]]
    emit(ctx, data, "\n".join(lines) or f"(empty archive at {data['url']})")


@archive.command(name="restore")
@scope_options
@click.option("--start", default=None, help="only episodes at or after this time (ISO 8601)")
@click.option("--end", default=None, help="only episodes before this time (ISO 8601)")
@click.pass_context
def archive_restore(ctx: click.Context, start: str | None, end: str | None, **kw: Any) -> None:
    """Move archived episodes of a scope (or of every scope of --org) back into the store."""
    from memstrata.models import Scope
    from memstrata.privacy.archive import restore

    ids = pop_scope(kw)
    scope = None if not (ids["user_id"] or ids["agent_id"] or ids["run_id"]) else Scope.of(**ids)
    out = restore(_memory(ctx), org_id=ids["org_id"], scope=scope, start=start, end=end, actor="cli")
    emit(ctx, out, f"restored {out['restored']} episodes")


@archive.command(name="search")
@scope_options
@click.option("--start", default=None, help="only episodes at or after this time (ISO 8601)")
@click.option("--end", default=None, help="only episodes before this time (ISO 8601)")
@click.option("--conversation", "conversation_id", default=None)
@click.option("--query", default=None, help="a phrase the text contains")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def archive_search(ctx: click.Context, start: str | None, end: str | None, conversation_id: str | None,
                   query: str | None, limit: int, **kw: Any) -> None:
    """Read a scope's archived episodes by time range."""
    out = open_memory(ctx).archived_episodes(**pop_scope(kw), start=start, end=end, conversation_id=conversation_id,
                                             query=query, limit=limit)
    lines = [f"{e['occurred_at']}  {e['role']}: {e['content']}" for e in out["results"]]
    emit(ctx, out, "\n".join(lines) or "(nothing archived in that range)")


COMMANDS = (archive,)
