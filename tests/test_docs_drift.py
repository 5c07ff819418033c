"""docs/cli.md and docs/configuration.md are generated; regenerate them with `memstrata docs cli -o docs/cli.md`
and `memstrata docs config -o docs/configuration.md`."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from click.testing import CliRunner

from memstrata.cli import main
from memstrata.cli.reference import render_cli, walk
from memstrata.settings import Settings, render_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "memstrata"

# The only modules that may read the process environment, and why.
ENVIRONMENT_READERS = {
    "settings.py": "the one settings object: every MEMSTRATA_* variable, read at the edges",
    "cli/server.py": "the environment of the uvicorn process serve starts (inherited, minus the settings)",
    "cli/encryption.py": "rotate --new-key-env VAR names a variable to read the new key from",
    "config.py": "Memory() without a store opens MEMSTRATA_STORE (a documented library fallback)",
    "privacy/crypto.py": "secure_memory() without a key reads MEMSTRATA_MASTER_KEY(_FILE)",
    "providers/llm/factory.py": "OPENAI_API_KEY / ANTHROPIC_API_KEY, sent only to their vendor's own host",
    "providers/embedders.py": "sets ORT_DISABLE_TELEMETRY before onnxruntime is imported",
}


def test_cli_reference_matches_the_commands() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert text == render_cli(main), "docs/cli.md is out of date: run `memstrata docs cli -o docs/cli.md`"


def test_configuration_table_matches_the_settings() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert text == render_table(), (
        "docs/configuration.md is out of date: run `memstrata docs config -o docs/configuration.md`")


def test_the_docs_command_writes_what_the_tests_compare(tmp_path: Path) -> None:
    runner = CliRunner()
    for kind, expected in (("cli", render_cli(main)), ("config", render_table())):
        out = tmp_path / f"{kind}.md"
        result = runner.invoke(main, ["docs", kind, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_text(encoding="utf-8") == expected


def test_every_command_and_every_setting_is_in_the_reference() -> None:
    import click

    cli_md = (DOCS / "cli.md").read_text(encoding="utf-8")
    root = click.Context(main, info_name="memstrata")
    paths = [ctx.command_path for _, ctx in walk(main, root)]
    assert len(paths) > 30 and "memstrata docs" not in paths  # the renderer itself stays hidden
    for path in paths:
        assert f"\n## {path}\n" in cli_md, path
    table = (DOCS / "configuration.md").read_text(encoding="utf-8")
    names = [f.metadata["env"] for f in fields(Settings)]
    assert len(names) == len(set(names))
    for f in fields(Settings):
        assert f.metadata["help"], f.name
        assert f"| `{f.metadata['env']}` |" in table
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/cli.md" in readme and "docs/configuration.md" in readme


def _reads_environment(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv"):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in ("environ", "getenv") for a in node.names):
            return True
    return False


def test_only_the_edges_read_the_environment() -> None:
    readers = {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if _reads_environment(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert readers <= set(ENVIRONMENT_READERS), sorted(readers - set(ENVIRONMENT_READERS))
    assert "settings.py" in readers
