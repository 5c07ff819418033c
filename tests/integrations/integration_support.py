"""Helpers shared by the integration tests: a clear failure for a missing framework, and example runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def need(package: str) -> None:
    """Fail (never skip) with the command that installs a missing framework."""
    if importlib.util.find_spec(package) is None:
        pytest.fail(f"{package} is not installed in {sys.prefix}: run `make test-integrations`", pytrace=False)


def run_example(name: str, tmp_path: Path) -> str:
    """Run examples/<name> as a script in a fresh process, offline; return its stdout."""
    env = {**os.environ, "MEMSTRATA_EXAMPLE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout
