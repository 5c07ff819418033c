"""Privacy commands of the ``memstrata`` CLI: audit, retention, forget, export-user, import-user.

The store is opened encrypted when ``MEMSTRATA_MASTER_KEY`` (or ``MEMSTRATA_MASTER_KEY_FILE``) is set.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from memstrata.cli.base import emit, open_memory, org_option
from memstrata.errors import InvalidInputError

# -- audit -----------------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """The hash-chained audit log of reads and writes."""


@audit.command(name="verify")
@click.option("--head", default=None, help="SEQ:HASH recorded earlier; also catches a cut-off log")
@click.pass_context
def audit_verify(ctx: click.Context, head: str | None) -> None:
    """Check that no audit entry was changed, removed or reordered (exit 1 if one was)."""
    from memstrata.privacy.audit import verify_audit

    expected = None
    if head is not None:
        seq, _, digest = head.partition(":")
        if not seq.isdigit() or not digest:
            raise InvalidInputError("--head", "must be SEQ:HASH as printed by a previous verify")
        expected = (int(seq), digest)
    result = verify_audit(open_memory(ctx).store, expected_head=expected)
    verdict = "ok" if result.ok else "TAMPERED"
    lines = [f"{verdict}: {result.entries} entries, head {result.head_seq}:{result.head_hash}"]
    if result.unauthenticated:
        lines.append(f"{result.unauthenticated} keyed entries not authenticated (no master key configured)")
    lines += [f"  entry {seq}: {problem}" for seq, problem in result.problems]
    emit(ctx, result.to_dict(), "\n".join(lines))
    if not result.ok:
        ctx.exit(1)


@audit.command(name="show")
@org_option
@click.option("--user", "user_id", default=None, help="only entries about this user's scopes")
@click.option("--after", default=0, show_default=True, help="only entries after this sequence number")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def audit_show(ctx: click.Context, org_id: str | None, user_id: str | None, after: int, limit: int) -> None:
    """List audit entries, oldest first."""
    from memstrata.privacy.audit import read_audit

    rows = read_audit(open_memory(ctx).store, org_id=org_id, user_id=user_id, after=after, limit=limit)
    lines = []
    for r in rows:
        scope = r["scope"] or {}
        who = "/".join(f"{k[0]}={v}" for k, v in scope.items() if v is not None and k != "org_id")
        shown = ",".join(r["memory_ids"][:3]) + ("…" if len(r["memory_ids"]) > 3 else "")
        ids = f" ids={shown}" if shown else ""
        lines.append(f"{r['seq']:>6}  {r['at']}  {r['actor']:<12} {r['org_id'] or '(system)'}  {who or '-'}  "
                     f"{r['operation']}{ids}")
    emit(ctx, rows, "\n".join(lines) or "(no entries)")


# -- retention -------------------------------------------------------------------------------------


@click.group()
def retention() -> None:
    """Retention policies, legal holds and the purge job."""


@retention.command(name="set")
@click.argument("tier", type=click.Choice(["short_term", "episodic", "long_term"]))
@click.argument("max_age")
@org_option
@click.option("--category", default=None, help="only records whose metadata category/tags include it")
@click.pass_context
def retention_set(ctx: click.Context, tier: str, max_age: str, org_id: str | None, category: str | None) -> None:
    """Delete TIER data older than MAX_AGE (e.g. 365d, 12h, 1y) in an org."""
    from memstrata.privacy.retention import set_policy

    p = set_policy(open_memory(ctx), tier, max_age, org_id=org_id, category=category)
    emit(ctx, p, f"{p['org_id']}: {p['tier']}{' [' + p['category'] + ']' if p['category'] else ''} "
                  f"kept {p['max_age_days']} days")


@retention.command(name="unset")
@click.argument("tier", type=click.Choice(["short_term", "episodic", "long_term"]))
@org_option
@click.option("--category", default=None)
@click.pass_context
def retention_unset(ctx: click.Context, tier: str, org_id: str | None, category: str | None) -> None:
    """Remove a retention policy."""
    from memstrata.privacy.retention import remove_policy

    removed = remove_policy(open_memory(ctx), tier, org_id=org_id, category=category)
    emit(ctx, {"removed": removed}, "removed" if removed else "(no such policy)")


@retention.command(name="list")
@org_option
@click.pass_context
def retention_list(ctx: click.Context, org_id: str | None) -> None:
    """Show the policies and legal holds."""
    from memstrata.privacy.retention import holds, policies

    mem = open_memory(ctx)
    data = {"policies": policies(mem, org_id), "holds": holds(mem, org_id)}
    lines = [f"policy  {p['org_id']}  {p['tier']}{' [' + p['category'] + ']' if p['category'] else ''}  "
             f"{p['max_age_days']} days" for p in data["policies"]]
    lines += [f"hold    {h['org_id']}  {h['user_id']}  since {h['created_at']}: {h['reason']}" for h in data["holds"]]
    emit(ctx, data, "\n".join(lines) or "(no policies, no holds)")


@retention.command(name="run")
@org_option
@click.option("--now", default=None, help="reference time (ISO 8601); default: now")
@click.pass_context
def retention_run(ctx: click.Context, org_id: str | None, now: str | None) -> None:
    """Purge what the policies say has expired (idempotent; users on hold are kept)."""
    from memstrata.privacy.retention import run_retention

    report = run_retention(open_memory(ctx), now, org_id=org_id)
    lines = [f"{org}  {tier}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
             for org, tiers in report["orgs"].items() for tier, counts in tiers.items()]
    emit(ctx, report, "\n".join(lines) or "(no policies)")


@retention.command(name="hold")
@click.argument("user")
@org_option
@click.option("--reason", required=True, help="why (a case or ticket reference)")
@click.pass_context
def retention_hold(ctx: click.Context, user: str, org_id: str | None, reason: str) -> None:
    """Place a legal hold on USER: nothing of theirs is purged or erased until released."""
    from memstrata.privacy.retention import hold_user

    h = hold_user(open_memory(ctx), user, reason=reason, org_id=org_id)
    emit(ctx, h, f"hold placed on {h['user_id']} in {h['org_id']}")


@retention.command(name="release")
@click.argument("user")
@org_option
@click.pass_context
def retention_release(ctx: click.Context, user: str, org_id: str | None) -> None:
    """Release USER's legal hold."""
    from memstrata.privacy.retention import release_user

    released = release_user(open_memory(ctx), user, org_id=org_id)
    emit(ctx, {"released": released}, "released" if released else "(no hold)")


# -- GDPR ------------------------------------------------------------------------------------------


@click.command()
@click.argument("user")
@org_option
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_context
def forget(ctx: click.Context, user: str, org_id: str | None, yes: bool) -> None:
    """Erase USER from every tier, destroy their data key, and print the deletion receipt."""
    from memstrata.privacy.gdpr import forget_user

    if not yes:
        click.confirm(f"Erase every record of user {user!r}? This cannot be undone", abort=True, err=True)
    mem = open_memory(ctx)
    receipt = forget_user(getattr(mem, "memory", mem), user, org_id=org_id, actor="cli")
    deleted = ", ".join(f"{k}={v}" for k, v in receipt["deleted"].items() if v)
    emit(ctx, receipt, f"erased {user} ({deleted or 'nothing stored'}); key destroyed: "
                        f"{receipt['data_key']['destroyed_at'] or 'none existed'}; audit entry "
                        f"{receipt['audit']['seq']} {receipt['audit']['hash']}")


@click.command(name="export-user")
@click.argument("user")
@org_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True)
@click.pass_context
def export_user_command(ctx: click.Context, user: str, org_id: str | None, output: str) -> None:
    """Write everything stored about USER (all tiers and scopes) as one JSON document."""
    from memstrata.privacy.gdpr import export_user

    mem = open_memory(ctx)
    data = export_user(getattr(mem, "memory", mem), user, org_id=org_id, actor="cli")
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output == "-":
        click.echo(text)
    else:
        Path(output).write_text(text + "\n", encoding="utf-8")
    n = sum(len(s["memories"]) for s in data["scopes"])
    click.echo(f"exported {n} memories in {len(data['scopes'])} scopes of {user}", err=True)


@click.command(name="import-user")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", "user_id", default=None, help="import as this user (default: the exported one)")
@org_option
@click.pass_context
def import_user_command(ctx: click.Context, path: str, user_id: str | None, org_id: str | None) -> None:
    """Load a document written by export-user."""
    from memstrata.privacy.gdpr import import_user

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(path, f"not JSON: {exc}") from None
    mem = open_memory(ctx)
    r = import_user(getattr(mem, "memory", mem), data, user_id=user_id, org_id=org_id, actor="cli")
    emit(ctx, r, f"imported {', '.join(f'{k}={v}' for k, v in r['imported'].items())} for {r['user_id']}")


COMMANDS = (audit, retention, forget, export_user_command, import_user_command)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
