"""``AsyncMemory`` and ``Guard`` mirror ``Memory`` for real: every public method, the same signature (parameters,
defaults, annotations, return type) and docstring; and the generated method blocks have not drifted from
``Memory`` (scripts/gen_facades.py rewrites them)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from memstrata.aio import ASYNC_METHODS, AsyncMemory
from memstrata.guard import Guard
from memstrata.memory import Memory
from memstrata.secure import AuditedMemory, SecuredMemory

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_facades.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_facades", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_facades"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__[:-1]):
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(value):
                found[name] = value
    return found


MEMORY_METHODS = _public(Memory)


def test_memory_has_the_methods_this_test_expects_to_mirror() -> None:
    assert {"add", "search", "context", "get", "update", "delete", "working_state", "close"} <= set(MEMORY_METHODS)


@pytest.mark.parametrize("name", sorted(MEMORY_METHODS))
def test_async_twin_has_the_same_signature_and_docstring(name: str) -> None:
    sync, twin = MEMORY_METHODS[name], getattr(AsyncMemory, name, None)
    assert twin is not None, f"AsyncMemory has no {name}"
    assert inspect.iscoroutinefunction(twin), f"AsyncMemory.{name} is not a coroutine function"
    assert inspect.signature(twin) == inspect.signature(sync)
    assert typing.get_type_hints(twin) == typing.get_type_hints(sync)  # the names resolve to the same types
    if sync.__doc__ is not None:
        assert inspect.getdoc(twin) == inspect.getdoc(sync)


def test_async_constructor_takes_memorys_arguments() -> None:
    assert inspect.signature(AsyncMemory.__init__) == inspect.signature(Memory.__init__)
    assert typing.get_type_hints(AsyncMemory.__init__) == typing.get_type_hints(Memory.__init__)


@pytest.mark.parametrize("name", sorted(MEMORY_METHODS))
def test_guard_method_has_the_same_signature_and_docstring(name: str) -> None:
    sync, guarded = MEMORY_METHODS[name], vars(Guard).get(name)
    assert guarded is not None, f"Guard has no {name}"
    assert inspect.isfunction(guarded) and not inspect.iscoroutinefunction(guarded)
    assert inspect.signature(guarded) == inspect.signature(sync)
    assert typing.get_type_hints(guarded) == typing.get_type_hints(sync)
    if sync.__doc__ is not None:
        assert inspect.getdoc(guarded) == inspect.getdoc(sync)


def test_the_faces_add_nothing_public_beyond_memory_but_their_own_plumbing() -> None:
    assert set(_public(AsyncMemory)) - set(MEMORY_METHODS) == {"aclose"}
    assert set(ASYNC_METHODS) == set(MEMORY_METHODS)
    assert set(_public(Guard)) == set(MEMORY_METHODS)


@pytest.mark.parametrize("cls", [AuditedMemory, SecuredMemory])
def test_guards_keep_memory_parameters_where_they_override(cls: type) -> None:
    """An override may widen a method (a key's bound user fills a missing user_id), never drop a parameter."""
    for name, sync in MEMORY_METHODS.items():
        mine = inspect.signature(getattr(cls, name)).parameters
        for param in inspect.signature(sync).parameters.values():
            assert param.name in mine, f"{cls.__name__}.{name} lacks {param.name}"
            assert mine[param.name].kind == param.kind, f"{cls.__name__}.{name}({param.name})"


def test_generated_blocks_are_up_to_date() -> None:
    gen = _generator()
    methods = gen.memory_methods()
    for target in gen.TARGETS:
        text = target.path.read_text(encoding="utf-8")
        assert gen.regenerate(target, text, methods) == text, (
            f"{target.path.name} has drifted from Memory: run PYTHONPATH=src python scripts/gen_facades.py")


def test_the_drift_check_notices_a_changed_signature() -> None:
    gen = _generator()
    methods = gen.memory_methods()
    i = next(i for i, m in enumerate(methods) if m.name == "search")
    changed = list(methods)
    changed[i] = replace(methods[i], params=methods[i].params[:-1])  # a parameter added to or dropped from Memory
    for target in gen.TARGETS:
        text = target.path.read_text(encoding="utf-8")
        assert gen.regenerate(target, text, changed) != text
    unknown = replace(methods[i], returns="SearchPage", names=methods[i].names | {"SearchPage"})
    with pytest.raises(SystemExit, match="import SearchPage"):
        gen.regenerate(gen.TARGETS[0], gen.TARGETS[0].path.read_text(encoding="utf-8"), [unknown])
