"""CLI commands for the server faces: ``serve``, ``keys create|list|revoke``, ``mcp`` (stdio) and ``openapi``.

``register(main)`` adds them to the ``memstrata`` group.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from memstrata.errors import AccessDeniedError, ConfigurationError
from memstrata.settings import StackSettings

LOOPBACK = "127.0.0.1"


def _root(ctx: click.Context) -> dict[str, Any]:
    return ctx.find_root().obj or {}


def _memory(ctx: click.Context) -> Any:
    from memstrata.cli import _open

    return _open(ctx)


def _pepper() -> str | None:
    return os.environ.get("MEMSTRATA_KEY_PEPPER") or None


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command()
@click.option("--host", default=LOOPBACK, show_default=True, help="interface to bind")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="worker processes")
@click.option("--no-auth", is_flag=True, help="accept requests without an API key (binds to 127.0.0.1 only)")
@click.option("--store", "store_url", default=None, help="store URL (overrides the global --store)")
@click.option("--cache", default=None, help="short-term cache, e.g. redis://127.0.0.1:6379/0 [MEMSTRATA_CACHE]")
@click.option("--vectors", default=None,
              help="external vector index: qdrant:///path, qdrant+http://host:6333, chroma:///path, "
                   "chroma+http://host:8000 [MEMSTRATA_VECTORS]")
@click.option("--embedder", default=None,
              help="minilm (default), hash, or openai[+http|+https]://host/v1?model=NAME [MEMSTRATA_EMBEDDER]")
@click.option("--llm", default=None,
              help="LLM extraction, e.g. openai://?model=gpt-4o-mini or anthropic://?model=... [MEMSTRATA_LLM]")
@click.option("--conflict-policy", type=click.Choice(["latest_wins", "keep_both", "manual"]), default=None,
              help="what a new value does to an old one [MEMSTRATA_CONFLICT_POLICY]")
@click.option("--cors", multiple=True, help="allowed browser origin, repeatable or comma-separated")
@click.option("--rate-limit", default=50.0, show_default=True, type=float, help="requests/s per key; 0 = off")
@click.option("--burst", default=100, show_default=True, type=click.IntRange(1), help="rate-limit burst size")
@click.option("--max-body-bytes", default=2 * 1024 * 1024, show_default=True, type=click.IntRange(1))
@click.option("--keep-alive", default=75, show_default=True, type=click.IntRange(1),
              help="seconds an idle connection stays open (keep it above your load balancer's idle timeout)")
@click.option("--audit/--no-audit", default=True, show_default=True, help="write every call to the audit log")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    no_auth: bool,
    store_url: str | None,
    cache: str | None,
    vectors: str | None,
    embedder: str | None,
    llm: str | None,
    conflict_policy: str | None,
    cors: tuple[str, ...],
    rate_limit: float,
    burst: int,
    max_body_bytes: int,
    keep_alive: int,
    audit: bool,
    log_level: str,
) -> None:
    """Run the REST API, the MCP endpoint (/mcp) and the web UI (/ui) under uvicorn."""
    import uvicorn

    root = _root(ctx)
    if no_auth and host != LOOPBACK:
        click.echo(f"warning: --no-auth binds to {LOOPBACK} only (not {host}): anyone who can connect could "
                   "read and erase every memory", err=True)
        host = LOOPBACK
    elif no_auth:
        click.echo("warning: authentication is off; every local process can read and change every memory", err=True)
    env = {
        "MEMSTRATA_AUTH": "0" if no_auth else "1",
        "MEMSTRATA_CORS": ",".join(_split(cors)),
        "MEMSTRATA_RATE_LIMIT": str(rate_limit),
        "MEMSTRATA_RATE_BURST": str(burst),
        "MEMSTRATA_MAX_BODY_BYTES": str(max_body_bytes),
        "MEMSTRATA_ALLOWED_HOSTS": f"{LOOPBACK},localhost" if no_auth else "",
        "MEMSTRATA_AUDIT": "1" if audit else "0",
    }
    stack = StackSettings.from_env(
        store=store_url or root.get("store"), embedder=embedder or root.get("embedder"), cache=cache,
        vectors=vectors, llm=llm, conflict_policy=conflict_policy,
    )
    env.update(stack.to_env())
    # Concurrent requests are the parallelism: BLAS and ONNX pools per request only fight over the cores
    # (a 10k-vector kNN took 14 ms with two OpenBLAS threads on a busy 2-core box, 1.2 ms with one).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = os.environ.get(var, "1")
    os.environ.update(env)  # worker processes read their settings from the environment
    base = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}"
    auth = "" if no_auth else ' -H "Authorization: Bearer $MEMSTRATA_KEY"'
    click.echo(f"memstrata serving on {base}  (UI: {base}/ui, API docs: {base}/docs, MCP: {base}/mcp)", err=True)
    click.echo("  stack:       " + "  ".join(f"{k}={v}" for k, v in stack.describe().items()), err=True)
    if not no_auth:
        click.echo("  make a key:  export MEMSTRATA_KEY=$(memstrata keys create --scope read,write --user alice "
                   "--quiet)", err=True)
    click.echo(f"  try it:      curl -s{auth} -H 'Content-Type: application/json' "
               f"-d '{{\"messages\": \"I moved to Lisbon\", \"user_id\": \"alice\"}}' {base}/v1/memories", err=True)
    click.echo(f"               curl -s{auth} -H 'Content-Type: application/json' "
               f"-d '{{\"query\": \"where do I live?\", \"user_id\": \"alice\"}}' {base}/v1/memories/search", err=True)
    argv = [sys.executable, "-m", "uvicorn", "memstrata.server.app:app_from_env", "--factory", "--host", host,
            "--port", str(port), "--workers", str(workers), "--log-level", log_level, "--no-proxy-headers",
            "--timeout-keep-alive", str(keep_alive)]
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        # A fresh interpreter: numpy here was imported before the thread settings above existed.
        os.execv(sys.executable, argv)
    uvicorn.run("memstrata.server.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, proxy_headers=False, timeout_keep_alive=keep_alive)


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

    key, info = create_key(
        _memory(ctx), org_id, scopes, _split(users) or None, _split(agents) or None, name=name, pepper=_pepper()
    )
    if quiet:
        click.echo(key)
    elif _root(ctx).get("json"):
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

    infos = list_keys(_memory(ctx), org_id)
    if _root(ctx).get("json"):
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

    info = revoke_key(_memory(ctx), key_id, org_id)
    click.echo(f"revoked {info.id}")


@click.command(name="mcp")
@click.option("--key", envvar="MEMSTRATA_API_KEY", default=None,
              help="act as this API key (default: unrestricted local access)")
@click.pass_context
def mcp_command(ctx: click.Context, key: str | None) -> None:
    """Serve the MCP tools on stdin/stdout (for Claude Desktop, IDEs and other local MCP clients)."""
    from memstrata.mcp_server import run_stdio
    from memstrata.privacy.access import Principal, authenticate

    memory = _memory(ctx)
    if key:
        try:
            principal = authenticate(memory, key, pepper=_pepper())
        except AccessDeniedError as exc:
            raise ConfigurationError(f"--key: {exc}") from None
    else:
        principal = Principal.local("stdio")
    run_stdio(memory, principal)


@click.command(name="openapi")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True,
              help="file to write (e.g. docs/openapi.json)")
def openapi_command(output: str) -> None:
    """Print (or write) the REST API's OpenAPI document."""
    from memstrata.server.app import openapi_document

    text = openapi_text(openapi_document())
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


def openapi_text(document: dict[str, Any]) -> str:
    """The canonical text of an OpenAPI document, as checked into docs/openapi.json."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def register(main: click.Group) -> None:
    """Add ``serve``, ``keys``, ``mcp`` and ``openapi`` to the ``memstrata`` command group."""
    for command in (serve, keys, mcp_command, openapi_command):
        main.add_command(command)
