"""What every integration shares: importing a framework that is an optional extra (with an error that says
how to install it) and accepting either face of the public API."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from memstrata.errors import ConfigurationError, InvalidInputError
from memstrata.memory import Memory


def require(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """Import ``module``; a ConfigurationError naming ``memstrata[extra]`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"this integration needs the '{package or module.split('.')[0]}' package: "
            f"pip install 'memstrata[{extra}]'"
        ) from exc


def sync_memory(memory: Any) -> Memory:
    """Accept a ``Memory`` or an ``AsyncMemory`` (whose methods run the same ``Memory`` in a worker thread)."""
    inner = getattr(memory, "sync", memory)
    if not isinstance(inner, Memory):
        raise InvalidInputError("memory", f"must be a memstrata Memory or AsyncMemory, got {type(memory).__name__}")
    return inner
