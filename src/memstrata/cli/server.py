"""``memstrata serve`` (REST, MCP over HTTP and the web UI under uvicorn) and ``memstrata openapi``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from memstrata.cli.base import settings as cli_settings
from memstrata.cli.base import split_values
from memstrata.settings import Settings

LOOPBACK = "127.0.0.1"
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


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
@click.option("--cors", multiple=True, help="allowed browser origin, repeatable or comma-separated [MEMSTRATA_CORS]")
@click.option("--rate-limit", default=None, type=float,
              help="requests/s per key; 0 = off  [default: 50; MEMSTRATA_RATE_LIMIT]")
@click.option("--burst", default=None, type=click.IntRange(1),
              help="rate-limit burst size  [default: 100; MEMSTRATA_RATE_BURST]")
@click.option("--max-body-bytes", default=None, type=click.IntRange(1),
              help="largest request body  [default: 2097152; MEMSTRATA_MAX_BODY_BYTES]")
@click.option("--keep-alive", default=75, show_default=True, type=click.IntRange(1),
              help="seconds an idle connection stays open (keep it above your load balancer's idle timeout)")
@click.option("--audit/--no-audit", default=None,
              help="write every call to the audit log  [default: audit; MEMSTRATA_AUDIT]")
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
    rate_limit: float | None,
    burst: int | None,
    max_body_bytes: int | None,
    keep_alive: int,
    audit: bool | None,
    log_level: str,
) -> None:
    """Run the REST API, the MCP endpoint (/mcp) and the web UI (/ui) under uvicorn."""
    import uvicorn  # noqa: F401 - the server extra must be installed before anything starts

    settings = cli_settings(ctx).with_flags(
        store=store_url, cache=cache, vectors=vectors, embedder=embedder, llm=llm, conflict_policy=conflict_policy,
        cors=tuple(split_values(cors)) or None, rate_limit=rate_limit, rate_burst=burst,
        max_body_bytes=max_body_bytes, audit=audit,
    )
    no_auth = no_auth or not settings.auth
    if no_auth and host != LOOPBACK:
        click.echo(f"warning: --no-auth binds to {LOOPBACK} only (not {host}): anyone who can connect could "
                   "read and erase every memory", err=True)
        host = LOOPBACK
    elif no_auth:
        click.echo("warning: authentication is off; every local process can read and change every memory", err=True)
    if no_auth:
        settings = settings.with_flags(auth=False, allowed_hosts=(LOOPBACK, "localhost"))
    base = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}"
    auth = "" if no_auth else ' -H "Authorization: Bearer $MEMSTRATA_KEY"'
    click.echo(f"memstrata serving on {base}  (UI: {base}/ui, API docs: {base}/docs, MCP: {base}/mcp)", err=True)
    click.echo("  stack:       " + "  ".join(f"{k}={v}" for k, v in settings.describe().items()), err=True)
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
    env = worker_environment(settings, os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        # A fresh interpreter, so that the thread settings hold before numpy is first imported.
        os.execve(sys.executable, argv, env)
    ctx.exit(subprocess.call(argv, env=env))


def worker_environment(settings: Settings, inherited: dict[str, str] | Any) -> dict[str, str]:
    """The environment of the uvicorn process: the inherited one without any setting's variable, then the
    settings (the app factory in each worker reads them back with ``Settings.from_env()``) and one BLAS/OpenMP
    thread unless set: concurrent requests are the parallelism, and per-request pools only fight over the
    cores (a 10k-vector kNN took 14 ms with two OpenBLAS threads on a busy 2-core box, 1.2 ms with one)."""
    own = {f.metadata["env"] for f in fields(Settings)}
    env = {k: v for k, v in inherited.items() if k not in own}
    env.update(settings.to_env())
    for var in BLAS_VARIABLES:
        env.setdefault(var, "1")
    return env


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


COMMANDS = (serve, openapi_command)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
