"""The layers point one way. Every module's imports (module level, function level and TYPE_CHECKING ones alike)
are read with ``ast`` and checked against the rules below; each violation prints as
``module -> imported (rule)``.

Layers, bottom to top (a module may import its own layer and the ones below it):

    foundation  core/, errors, models, config
    tiers       tiers/ (the contracts)
    backends    backends/
    providers   providers/
    domain      ingest/, retrieve/, working/, privacy/, cache_guard
    facade      the package root, memory (with queued, rights), aio, guard, secure, settings, maintenance, inputs
    faces       server/, ui/, mcp (mcp/ or mcp_server), cli (cli/ or cli*.py), integrations/, importers/,
                evaluation/, demo

Within a layer: ingest and retrieve never import each other, and privacy imports neither. Faces use the public
API only: the facade, errors, models, config, and the contracts and tools users hand to it (tiers/, providers/,
privacy/), never the machinery under it (core/, backends/, ingest/, retrieve/, working/, cache_guard). A face
imports no other face, except that the CLI may start any of them and the three faces served together (server,
ui, mcp) may use each other's plumbing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "memstrata"

# Violations still present, each to be removed by the change named beside it. The list must shrink to empty:
# an entry that no longer matches a violation fails the test too, so remove it when its import goes.
ALLOWED: set[tuple[str, str]] = set()  # every import keeps to the rules; an entry here must say why

FOUNDATION, TIERS, BACKENDS, PROVIDERS, DOMAIN, FACADE, FACES = range(7)
LAYER_NAMES = ("foundation", "tiers", "backends", "providers", "domain", "facade", "faces")
_TOP: dict[str, int] = {
    "core": FOUNDATION, "errors": FOUNDATION, "models": FOUNDATION, "config": FOUNDATION,
    "tiers": TIERS,
    "backends": BACKENDS,
    "providers": PROVIDERS,
    "ingest": DOMAIN, "retrieve": DOMAIN, "working": DOMAIN, "privacy": DOMAIN, "cache_guard": DOMAIN,
    "memory": FACADE, "aio": FACADE, "guard": FACADE, "secure": FACADE, "settings": FACADE,
    "maintenance": FACADE, "inputs": FACADE, "queued": FACADE, "rights": FACADE,
    "server": FACES, "ui": FACES, "mcp": FACES, "mcp_server": FACES, "cli": FACES, "integrations": FACES,
    "importers": FACES, "evaluation": FACES, "demo": FACES,
}
# What a face may use: the facade and the public contracts and tools, never the machinery under them.
PUBLIC_FOR_FACES = frozenset({
    "memstrata", "memory", "aio", "guard", "secure", "settings", "maintenance", "inputs", "errors", "models", "config",
    "tiers", "providers", "privacy",
})
SERVED_TOGETHER = frozenset({"server", "ui", "mcp"})
NEVER_BETWEEN = {("ingest", "retrieve"), ("retrieve", "ingest"), ("privacy", "ingest"), ("privacy", "retrieve")}


class Violation(NamedTuple):
    module: str
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module} -> {self.imported} ({self.rule})"


def top(module: str) -> str:
    """The part of the package a module belongs to: ``memstrata.ingest.rules`` -> ``ingest``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "memstrata"


def face(module: str) -> str:
    """Which face a face module belongs to (cli_server.py is the CLI's, mcp_server.py the MCP face's)."""
    part = top(module)
    if part.startswith("cli"):
        return "cli"
    return "mcp" if part.startswith("mcp") else part


def layer(module: str) -> int:
    part = top(module)
    if part == "memstrata":
        return FACADE  # the package root re-exports the facade
    if part.startswith("cli_"):
        return FACES
    if part not in _TOP:
        raise KeyError(f"{module}: place memstrata.{part} in a layer (tests/test_layers.py)")
    return _TOP[part]


def check(module: str, imported: str) -> str | None:
    """The rule ``module`` breaks by importing ``imported``; None when the import is fine."""
    mine, theirs = layer(module), layer(imported)
    if theirs > mine:
        return f"{LAYER_NAMES[mine]} never imports {LAYER_NAMES[theirs]}"
    if (top(module), top(imported)) in NEVER_BETWEEN:
        return f"{top(module)} never imports {top(imported)}"
    if mine == FACES:
        if theirs < FACES and top(imported) not in PUBLIC_FOR_FACES:
            return "faces use the public API"
        if theirs == FACES and face(module) != face(imported) and face(module) != "cli" and not (
            face(module) in SERVED_TOGETHER and face(imported) in SERVED_TOGETHER
        ):
            return "a face imports no other face"
    return None


def violations(imports: Mapping[str, Iterable[str]]) -> list[Violation]:
    found = []
    for module, targets in sorted(imports.items()):
        for imported in sorted(set(targets)):
            rule = check(module, imported)
            if rule is not None:
                found.append(Violation(module, imported, rule))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = PACKAGE.parent.joinpath(*name.split("."))
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def _imports_of(path: Path) -> set[str]:
    """The memstrata modules ``path`` imports, anywhere in the file; ``from pkg import mod`` counts as ``pkg.mod``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if _is_module(sub) else base)
    return {m for m in found if m == "memstrata" or m.startswith("memstrata.")} - {name}


def package_imports() -> dict[str, set[str]]:
    return {_module_name(p): _imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_sits_in_a_layer() -> None:
    unplaced = []
    for module in package_imports():
        try:
            layer(module)
        except KeyError as exc:
            unplaced.append(str(exc))
    assert not unplaced, "\n".join(unplaced)


def test_imports_point_one_way() -> None:
    found = violations(package_imports())
    for v in found:  # shown with -s; the allowed ones too, so the list of what is left stays visible
        print(v, "[allowed for now]" if (v.module, v.imported) in ALLOWED else "")
    new = [str(v) for v in found if (v.module, v.imported) not in ALLOWED]
    stale = sorted(ALLOWED - {(v.module, v.imported) for v in found})
    assert not new, "imports against the layer rules:\n" + "\n".join(new)
    assert not stale, "ALLOWED entries that no longer happen (remove them):\n" + "\n".join(map(str, stale))


def test_the_import_reader_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    imports = package_imports()
    assert "memstrata.privacy.gdpr" in imports["memstrata.rights"]  # imported inside forget_user()
    assert "memstrata.privacy.gdpr" in imports["memstrata.secure"]  # `from memstrata.privacy import gdpr`
    assert "memstrata.ingest.candidate" in imports["memstrata.ingest.pipeline"]


SYNTHETIC = {
    "memstrata.core.text": ["memstrata.errors", "memstrata.tiers.base"],
    "memstrata.models": ["memstrata.errors"],
    "memstrata.tiers.base": ["memstrata.models", "memstrata.backends.sqlite"],
    "memstrata.backends.sqlite": ["memstrata.core.text", "memstrata.tiers.base", "memstrata.ingest.dedup",
                                  "memstrata.retrieve.pipeline", "memstrata.privacy.audit", "memstrata.memory"],
    "memstrata.ingest.pipeline": ["memstrata.backends.sqlite", "memstrata.retrieve.filters", "memstrata.working"],
    "memstrata.retrieve.pipeline": ["memstrata.ingest.timing"],
    "memstrata.privacy.access": ["memstrata.memory", "memstrata.guard", "memstrata.ingest.pipeline"],
    "memstrata.working.keeper": ["memstrata.server.app", "memstrata"],
    "memstrata.memory": ["memstrata.ingest.pipeline", "memstrata.cli"],
    "memstrata.server.app": ["memstrata", "memstrata.secure", "memstrata.ui.routes", "memstrata.mcp.tools",
                             "memstrata.backends.redis"],
    "memstrata.integrations.langgraph": ["memstrata.memory", "memstrata.server.auth", "memstrata.ingest.messages"],
    "memstrata.cli.main": ["memstrata.server.app", "memstrata.evaluation.longmemeval", "memstrata.retrieve.presets"],
}


def test_the_rules_catch_what_they_forbid() -> None:
    found = {(v.module, v.imported): v.rule for v in violations(SYNTHETIC)}
    assert found == {
        ("memstrata.core.text", "memstrata.tiers.base"): "foundation never imports tiers",
        ("memstrata.tiers.base", "memstrata.backends.sqlite"): "tiers never imports backends",
        ("memstrata.backends.sqlite", "memstrata.ingest.dedup"): "backends never imports domain",
        ("memstrata.backends.sqlite", "memstrata.retrieve.pipeline"): "backends never imports domain",
        ("memstrata.backends.sqlite", "memstrata.privacy.audit"): "backends never imports domain",
        ("memstrata.backends.sqlite", "memstrata.memory"): "backends never imports facade",
        ("memstrata.ingest.pipeline", "memstrata.retrieve.filters"): "ingest never imports retrieve",
        ("memstrata.retrieve.pipeline", "memstrata.ingest.timing"): "retrieve never imports ingest",
        ("memstrata.privacy.access", "memstrata.memory"): "domain never imports facade",
        ("memstrata.privacy.access", "memstrata.guard"): "domain never imports facade",
        ("memstrata.privacy.access", "memstrata.ingest.pipeline"): "privacy never imports ingest",
        ("memstrata.working.keeper", "memstrata.server.app"): "domain never imports faces",
        ("memstrata.working.keeper", "memstrata"): "domain never imports facade",
        ("memstrata.memory", "memstrata.cli"): "facade never imports faces",
        ("memstrata.server.app", "memstrata.backends.redis"): "faces use the public API",
        ("memstrata.integrations.langgraph", "memstrata.server.auth"): "a face imports no other face",
        ("memstrata.integrations.langgraph", "memstrata.ingest.messages"): "faces use the public API",
        ("memstrata.cli.main", "memstrata.retrieve.presets"): "faces use the public API",
    }
    assert str(violations({"memstrata.ingest.x": ["memstrata.retrieve.y"]})[0]) == (
        "memstrata.ingest.x -> memstrata.retrieve.y (ingest never imports retrieve)")


def test_a_module_outside_every_layer_is_reported() -> None:
    with pytest.raises(KeyError, match="place memstrata.plugins in a layer"):
        violations({"memstrata.plugins.extra": ["memstrata.memory"]})
