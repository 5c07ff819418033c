"""Write the methods that mirror ``Memory``: ``AsyncMemory``'s coroutines (aio.py) and ``Guard``'s hooked
calls (guard.py).

Both classes must offer every public ``Memory`` method with the same parameters, defaults, return type and
docstring, so their method blocks are written from ``Memory`` itself rather than by hand. Each target file keeps
its hand-written parts; only the lines between the two marker comments are replaced. Run

    PYTHONPATH=src python scripts/gen_facades.py          # rewrite the blocks
    PYTHONPATH=src python scripts/gen_facades.py --check  # exit 1 when a block is out of date

after changing a public ``Memory`` method. tests/test_facade_parity.py fails when a block has drifted.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "memstrata"
BEGIN = "    # -- generated from Memory by scripts/gen_facades.py; edit the script or Memory, not this block --\n"
END = "    # -- end of generated block --\n"
WIDTH = 120
INDENT = " " * 4


@dataclass(frozen=True)
class Param:
    name: str
    kind: inspect._ParameterKind
    text: str  # as written in the signature: "user_id: str | None = None"


@dataclass(frozen=True)
class Method:
    """One public Memory method, as its source spells it."""

    name: str
    params: tuple[Param, ...]  # without self
    returns: str | None
    doc: str | None  # the docstring literal exactly as written, quotes included
    names: frozenset[str]  # names the parameters and return annotation refer to


def _names(*nodes: ast.AST | None) -> set[str]:
    return {n.id for node in nodes if node is not None for n in ast.walk(node) if isinstance(n, ast.Name)}


def _describe(name: str, fn: Callable[..., object]) -> Method:
    source = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(source).body[0]
    if not isinstance(node, ast.FunctionDef):
        raise SystemExit(f"Memory.{name}: only plain methods can be mirrored")
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if not positional or positional[0].arg != "self":
        raise SystemExit(f"Memory.{name}: only instance methods can be mirrored")
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    P = inspect.Parameter
    params: list[Param] = []
    refs: set[str] = _names(node.returns)

    def spelled(expr: ast.expr) -> str:  # as the source writes it, unless it spans lines
        text = ast.get_source_segment(source, expr)
        return text if text is not None and "\n" not in text else ast.unparse(expr)

    def render(a: ast.arg, default: ast.expr | None, prefix: str = "") -> str:
        refs.update(_names(a.annotation, default))
        text = prefix + a.arg
        if a.annotation is not None:
            text += ": " + spelled(a.annotation)
        if default is not None:
            text += (" = " if a.annotation is not None else "=") + spelled(default)
        return text

    for i, (a, d) in enumerate(zip(positional, defaults, strict=True)):
        if i == 0:
            continue
        kind = P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        params.append(Param(a.arg, kind, render(a, d)))
    if args.posonlyargs:
        params.insert(len(args.posonlyargs) - 1, Param("/", P.POSITIONAL_ONLY, "/"))
    if args.vararg is not None:
        params.append(Param(args.vararg.arg, P.VAR_POSITIONAL, render(args.vararg, None, "*")))
    elif args.kwonlyargs:
        params.append(Param("*", P.KEYWORD_ONLY, "*"))
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(Param(a.arg, P.KEYWORD_ONLY, render(a, d)))
    if args.kwarg is not None:
        params.append(Param(args.kwarg.arg, P.VAR_KEYWORD, render(args.kwarg, None, "**")))
    doc = None
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        doc = ast.get_source_segment(source, first)
    returns = spelled(node.returns) if node.returns is not None else None
    return Method(name, tuple(params), returns, doc, frozenset(refs))


def memory_methods() -> list[Method]:
    """Memory's constructor, then its public methods (inherited ones included), in the order they are defined."""
    from memstrata.memory import Memory

    found: dict[str, Callable[..., object]] = {"__init__": Memory.__init__}
    for cls in reversed(Memory.__mro__[:-1]):
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                found[name] = value
    return [_describe(name, fn) for name, fn in found.items()]


def _fill(head: str, items: list[str], tail: str, indent: str) -> list[str]:
    """``head + items + tail`` on one line when it fits, else the items packed onto continuation lines."""
    one = head + ", ".join(items) + tail
    if len(indent + one) <= WIDTH:
        return [indent + one]
    lines, inner = [indent + head], indent + INDENT
    current = ""
    for item in items:
        piece = item + ","
        if current and len(inner + current + " " + piece) > WIDTH:
            lines.append(inner + current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    lines.append(inner + current)
    lines.append(indent + tail.lstrip(","))
    return lines


def _signature(m: Method, prefix: str) -> list[str]:
    returns = f" -> {m.returns}:" if m.returns else ":"
    return _fill(f"{prefix}def {m.name}(", ["self", *(p.text for p in m.params)], ")" + returns, INDENT)


def _docstring(m: Method) -> list[str]:
    if m.doc is None:
        return []
    first, *rest = m.doc.split("\n")
    body = INDENT * 2
    return [body + first, *((INDENT + line if line.strip() else "") for line in rest)]


def _forward(m: Method) -> list[str]:
    """How to pass the method's own parameters on to the same method of another object."""
    P = inspect.Parameter
    out = []
    for p in m.params:
        if p.name in ("/", "*"):
            continue
        if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            out.append(p.name)
        elif p.kind is P.VAR_POSITIONAL:
            out.append("*" + p.name)
        elif p.kind is P.KEYWORD_ONLY:
            out.append(f"{p.name}={p.name}")
        else:
            out.append("**" + p.name)
    return out


def async_method(m: Method) -> list[str]:
    """``async def name(...)``: the sync method run on the bounded worker pool."""
    if m.name == "__init__":  # the constructor takes Memory's arguments and builds one
        doc = '"""Open a ``Memory`` with these (its own) arguments; calls run on ``DEFAULT_WORKERS`` threads."""'
        build = _fill("memory = Memory(", _forward(m), ")", INDENT * 2)
        return [*_signature(m, ""), INDENT * 2 + doc, *build, INDENT * 2 + "self._setup(memory, DEFAULT_WORKERS)"]
    call = "await " if m.returns == "None" else "return await "
    body = _fill(f"{call}self._run(", [f"self._sync.{m.name}", *_forward(m)], ")", INDENT * 2)
    return [*_signature(m, "async "), *_docstring(m), *body]


def guard_method(m: Method) -> list[str]:
    """``def name(...)``: the call handed to ``self._call`` with its arguments by name, for the hooks."""
    P = inspect.Parameter
    if any(p.kind in (P.POSITIONAL_ONLY, P.VAR_POSITIONAL) for p in m.params):
        raise SystemExit(f"Memory.{m.name}: a guard passes arguments by name; positional-only ones cannot be hooked")
    items = [f'"{m.name}"', f"self.memory.{m.name}"]
    items += [f"{p.name}={p.name}" if p.kind is not P.VAR_KEYWORD else f"**{p.name}"
              for p in m.params if p.name != "*"]
    call = "" if m.returns == "None" else "return "
    body = _fill(f"{call}self._call(", items, ")", INDENT * 2)
    return [*_signature(m, ""), *_docstring(m), *body]


@dataclass(frozen=True)
class Target:
    path: Path
    render: Callable[[Method], list[str]]
    skip: frozenset[str]  # methods the file writes by hand (still checked by the parity test)


TARGETS = (
    Target(PACKAGE / "aio.py", async_method, frozenset({"close"})),
    Target(PACKAGE / "guard.py", guard_method, frozenset({"__init__"})),
)


def block(target: Target, methods: list[Method]) -> str:
    lines: list[str] = []
    for m in methods:
        if m.name in target.skip:
            continue
        lines += ["", *target.render(m)]
    return BEGIN + "\n".join(lines[1:]) + "\n" + END


def regenerate(target: Target, text: str, methods: list[Method]) -> str:
    """``text`` (the target file) with its generated block written afresh."""
    try:
        start = text.index(BEGIN)
        stop = text.index(END, start) + len(END)
    except ValueError:
        raise SystemExit(f"{target.path.name}: the generated-block markers are missing") from None
    new = text[:start] + block(target, methods) + text[stop:]
    tree = ast.parse(new)
    known = {alias.asname or alias.name.split(".")[0]
             for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}
    known |= {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    builtins = set(dir(__builtins__)) if not isinstance(__builtins__, dict) else set(__builtins__)
    needed = set().union(*(m.names for m in methods if m.name not in target.skip)) - known - builtins
    if needed:
        raise SystemExit(f"{target.path.name}: import {', '.join(sorted(needed))} (Memory's signatures use them)")
    return new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="report drift instead of rewriting")
    args = parser.parse_args(argv)
    methods = memory_methods()
    stale = []
    for target in TARGETS:
        text = target.path.read_text(encoding="utf-8")
        new = regenerate(target, text, methods)
        if new != text:
            stale.append(target.path.name)
            if not args.check:
                target.path.write_text(new, encoding="utf-8")
    if stale:
        print(("out of date: " if args.check else "rewrote: ") + ", ".join(stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
