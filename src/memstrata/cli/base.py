"""The ``memstrata`` command group and what its commands share: the settings, the opened Memory, output,
scope options and the mapping of memstrata errors to exit codes."""

from __future__ import annotations

import json
from typing import Any

import click

from memstrata.errors import ConfigurationError, InvalidInputError, MemstrataError, NotFoundError
from memstrata.settings import Settings

EXIT_INPUT, EXIT_NOT_FOUND, EXIT_CONFIG, EXIT_OTHER = 2, 3, 4, 1


def root_obj(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, dict) else {}


def settings(ctx: click.Context) -> Settings:
    """The settings of this run: ``MEMSTRATA_*`` variables under the global flags, read once, on first use
    (so that ``--help`` works whatever the environment holds)."""
    obj = root_obj(ctx)
    if "settings" not in obj:
        obj["settings"] = Settings.from_env(**obj.get("flags", {}))
    found: Settings = obj["settings"]
    return found


def open_memory(ctx: click.Context) -> Any:
    """The Memory this run works on, opened once (encrypted when a master key is configured) and closed
    when the command ends."""
    obj = root_obj(ctx)
    if "memory" not in obj:
        obj["memory"] = settings(ctx).open_memory(actor="cli")
        ctx.find_root().call_on_close(obj["memory"].close)
    return obj["memory"]


def wants_json(ctx: click.Context) -> bool:
    return bool(root_obj(ctx).get("json"))


def emit(ctx: click.Context, data: Any, human: str | None = None) -> None:
    """Print ``data`` as JSON with ``--json`` (or when there is no text form), else ``human``."""
    if wants_json(ctx) or human is None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(human)


def pop_scope(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw.pop(k) for k in ("user_id", "agent_id", "run_id", "org_id")}


def scope_options(f):  # type: ignore[no-untyped-def]
    for opt in reversed(
        [
            click.option("--user", "user_id", help="user id of the scope"),
            click.option("--agent", "agent_id", help="agent id of the scope"),
            click.option("--run", "run_id", help="run id of the scope"),
            click.option("--org", "org_id", help="organisation id (default: 'default')"),
        ]
    ):
        f = opt(f)
    return f


org_option = click.option("--org", "org_id", default=None, help="organisation id (default: 'default')")


def json_arg(name: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed: dict[str, Any] = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(name, f"is not JSON: {exc.msg}") from None
    return parsed


def split_values(values: tuple[str, ...]) -> list[str]:
    """Repeatable, comma-separated option values as one list."""
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


class _Group(click.Group):
    """Maps memstrata errors to one clean line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_INPUT)
        except NotFoundError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_NOT_FOUND)
        except ConfigurationError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
        except MemstrataError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_OTHER)


@click.group(cls=_Group)
@click.option(
    "--store",
    default=None,
    help="store URL, e.g. sqlite:///path/memory.db (default ~/.memstrata/memory.db)",
)
@click.option("--embedder", default=None,
              help="'minilm' (default), 'hash', or openai[+http|+https]://host/v1?model=NAME")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")
@click.version_option(package_name="memstrata")
@click.pass_context
def main(ctx: click.Context, store: str | None, embedder: str | None, as_json: bool) -> None:
    """memstrata: long-term memory for AI agents, on an embedded SQLite store."""
    ctx.obj = {"flags": {"store": store, "embedder": embedder}, "json": as_json}
