"""The local embedder leaves nothing behind in the user's home: onnxruntime's device id and telemetry
database stay off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EMBED = """
from memstrata import Memory
with Memory("sqlite:///{db}") as m:
    m.add("I keep bees in the garden", user_id="u")
    assert m.search("bees", user_id="u")["results"]
print("ok")
"""


def test_embedding_writes_no_device_id_or_telemetry_under_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join(sys.path))
    run = subprocess.run([sys.executable, "-c", EMBED.format(db=tmp_path / "m.db")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written == [], written
