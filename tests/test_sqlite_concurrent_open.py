"""Several processes opening the same new SQLite store at once all succeed and agree on one schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 4
PROCESSES = 6

# Each process waits for a shared start time, then opens a fresh store per round and writes to it.
OPENER = r"""
import sys, time
from memstrata import Memory
folder, start, rounds, who = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for r in range(rounds):
    while time.time() < start + r * 0.5:
        time.sleep(0.001)
    with Memory(f"sqlite:///{folder}/round{r}.db", embedder="hash") as m:
        m.add(f"I like tea number {who}", user_id="u" + who, infer=False)
print("ok")
"""


def test_concurrent_first_open_of_a_new_store(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    start = time.time() + 8.0  # time enough for every interpreter to import memstrata first
    procs = [
        subprocess.Popen([sys.executable, "-c", OPENER, str(tmp_path), str(start), str(ROUNDS), str(i)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i in range(PROCESSES)
    ]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    failures = [err.strip().splitlines()[-1] for rc, _, err in results if rc != 0]
    assert failures == [], failures
    assert all(out.strip() == "ok" for _, out, _ in results)
    from memstrata import Memory

    for r in range(ROUNDS):
        with Memory(f"sqlite:///{tmp_path}/round{r}.db", embedder="hash") as m:
            assert m.stats()["episodes"] == PROCESSES
