"""The generated references: docs/cli.md from every command's ``--help`` and docs/configuration.md from
``memstrata.settings.Settings``, both written by the hidden ``memstrata docs`` command and checked for drift
by tests/test_docs_drift.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

WIDTH = 100


def walk(command: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """Every visible command under ``command`` (itself first), each with a context named by its path."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def render_cli(group: click.Group, name: str = "memstrata") -> str:
    """The whole command reference as Markdown: an index, then each command's help text."""
    root = click.Context(group, info_name=name, terminal_width=WIDTH, max_content_width=WIDTH)
    commands = list(walk(group, root))
    lines = [
        "# Command-line reference",
        "",
        "<!-- Rendered from the commands' --help by `memstrata docs cli -o docs/cli.md`;",
        "     tests/test_docs_drift.py fails when it is out of date. -->",
        "",
        "Every command prints the same text with `--help`. Settings that also come from the environment are in",
        "[configuration.md](configuration.md).",
        "",
    ]
    for command, ctx in commands[1:]:
        path = ctx.command_path
        lines.append(f"- [`{path}`](#{_anchor(path)}): {command.get_short_help_str(limit=90)}")
    for command, ctx in commands:
        lines += ["", f"## {ctx.command_path}", "", "```text", command.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _write(text: str, output: str) -> None:
    if output == "-":
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@click.group(hidden=True)
def docs() -> None:
    """Render the generated reference documents."""


@docs.command(name="cli")
@click.option("--output", "-o", default="-", show_default=True, help="file to write (docs/cli.md)")
@click.pass_context
def docs_cli(ctx: click.Context, output: str) -> None:
    """The command reference, from every command's --help."""
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    _write(render_cli(root), output)


@docs.command(name="config")
@click.option("--output", "-o", default="-", show_default=True, help="file to write (docs/configuration.md)")
def docs_config(output: str) -> None:
    """The settings table, from memstrata.settings.Settings."""
    from memstrata.settings import render_table

    _write(render_table(), output)


COMMANDS = (docs,)
