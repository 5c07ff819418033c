"""Importing a framework that is an optional extra, with an error that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from memstrata.errors import ConfigurationError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; a ConfigurationError naming ``memstrata[extra]`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"memstrata.integrations.{extra} needs the '{module.split('.')[0]}' package: "
            f"pip install 'memstrata[{extra}]'"
        ) from exc


def sync_memory(memory: Any) -> Any:
    """The synchronous Memory behind ``memory`` (an AsyncMemory exposes it as ``.sync``)."""
    return getattr(memory, "sync", memory)
