"""API keys (``memstrata keys create|list|revoke``) and the MCP tools on stdio (``memstrata mcp``)."""

from __future__ import annotations

import json

import click

from memstrata.cli.base import open_memory, settings, split_values, wants_json
from memstrata.errors import AccessDeniedError, ConfigurationError


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (only their hashes are stored)."""


@keys.command(name="create")
@click.option("--scope", "scopes", required=True, help="comma-separated: read, write, admin")
@click.option("--user", "users", multiple=True, help="bind to this user id (repeatable)")
@click.option("--agent", "agents", multiple=True, help="bind to this agent id (repeatable)")
@click.option("--org", "org_id", default=None, help="organisation (default: 'default')")
@click.option("--name", default="", help="a label for people")
@click.option("--quiet", is_flag=True, help="print only the key")
@click.pass_context
def keys_create(
    ctx: click.Context, scopes: str, users: tuple[str, ...], agents: tuple[str, ...], org_id: str | None,
    name: str, quiet: bool,
) -> None:
    """Make a key. It is printed once and cannot be shown again."""
    from memstrata.privacy.access import create_key

    key, info = create_key(open_memory(ctx), org_id, scopes, split_values(users) or None,
                           split_values(agents) or None, name=name, pepper=settings(ctx).key_pepper)
    if quiet:
        click.echo(key)
    elif wants_json(ctx):
        click.echo(json.dumps({"key": key, **info.to_dict()}, indent=2))
    else:
        click.echo(key)
        click.echo(f"id {info.id}  org {info.org_id}  scopes {','.join(info.scopes)}"
                   f"  users {','.join(info.user_ids or ['*'])}  agents {','.join(info.agent_ids or ['*'])}", err=True)
        click.echo("store it now: memstrata keeps only a hash and cannot show it again", err=True)


@keys.command(name="list")
@click.option("--org", "org_id", default=None, help="only this org (default: every org)")
@click.pass_context
def keys_list(ctx: click.Context, org_id: str | None) -> None:
    """List keys (prefix, scopes, bindings, last use); never the keys themselves."""
    from memstrata.privacy.access import list_keys

    infos = list_keys(open_memory(ctx), org_id)
    if wants_json(ctx):
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    if not infos:
        click.echo("(no keys)")
    for i in infos:
        state = "revoked" if i.revoked_at else "active"
        d = i.to_dict()
        click.echo(f"{i.id}  {i.prefix}…  {state:7}  org={i.org_id}  scopes={','.join(i.scopes)}"
                   f"  users={','.join(i.user_ids or ['*'])}  agents={','.join(i.agent_ids or ['*'])}"
                   f"  last_used={d['last_used_at'] or '-'}  {i.name}")


@keys.command(name="revoke")
@click.argument("key_id")
@click.option("--org", "org_id", default=None, help="the key's org (default: 'default')")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str, org_id: str | None) -> None:
    """Revoke a key by id; requests with it get 401 from then on."""
    from memstrata.privacy.access import revoke_key

    info = revoke_key(open_memory(ctx), key_id, org_id)
    click.echo(f"revoked {info.id}")


@click.command(name="mcp")
@click.option("--key", default=None,
              help="act as this API key [MEMSTRATA_API_KEY] (default: unrestricted local access)")
@click.pass_context
def mcp_command(ctx: click.Context, key: str | None) -> None:
    """Serve the MCP tools on stdin/stdout (for Claude Desktop, IDEs and other local MCP clients)."""
    from memstrata.mcp import run_stdio
    from memstrata.privacy.access import Principal, authenticate

    key = settings(ctx).with_flags(api_key=key).api_key
    memory = open_memory(ctx)
    if key:
        try:
            principal = authenticate(memory, key, pepper=settings(ctx).key_pepper)
        except AccessDeniedError as exc:
            raise ConfigurationError(f"--key: {exc}") from None
    else:
        principal = Principal.local("stdio")
    run_stdio(memory, principal)


COMMANDS = (keys, mcp_command)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
