"""Crash safety and concurrency on the embedded store: real processes, real threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from memstrata import Memory

WRITER = textwrap.dedent(
    """
    import sys
    from memstrata import Memory
    m = Memory(sys.argv[1], embedder="hash")
    i = 0
    while True:
        batch = [{"role": "user", "content": f"message {i + k} of the crash test"} for k in range(5)]
        r = m.add(batch, user_id="crash", infer=False)
        i += 5
        print(" ".join(e for e in r["episodes"]), flush=True)
    """
)


def test_killed_process_loses_no_acknowledged_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    acked: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while len(acked) < 200 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.extend(line.split())
    proc.send_signal(signal.SIGKILL)  # mid-batch: no chance to clean up
    proc.wait()
    proc.stdout.close()
    assert len(acked) >= 200, "the writer did not get going"
    with Memory(url, embedder="hash") as m:
        stored = {e["id"] for e in m.episodes(user_id="crash", limit=1000)["results"]}
        missing = [e for e in acked if e not in stored]
        assert not missing
        # every acknowledged episode also has its memory: add() returns only after both commits
        memories = m.get_all(user_id="crash", limit=1000)["results"]
        covered = {e for x in memories for e in x["episode_ids"]}
        assert not [e for e in acked if e not in covered]
        # the vector index is rebuilt from the table: search still finds the last acknowledged message
        last = m.episodes(user_id="crash", limit=1000)["results"]
        assert m.search("message of the crash test", user_id="crash", limit=3)["results"]
        assert len(last) >= len(acked)


def test_threads_add_and_search_at_once_without_lock_errors(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    counts = {"add": 0, "search": 0}
    lock = threading.Lock()
    with Memory(f"sqlite:///{tmp_path / 'c.db'}", embedder="hash") as m:
        m.add("seed memory about gardening", user_id="u0", infer=False)

        def writer(n: int) -> None:
            try:
                for i in range(40):
                    m.add(f"writer {n} note {i} about gardening and tomatoes", user_id=f"u{n % 3}", infer=False)
                    with lock:
                        counts["add"] += 1
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        def reader(n: int) -> None:
            try:
                for _ in range(60):
                    m.search("gardening tomatoes", user_id=f"u{n % 3}", limit=5)
                    m.get_all(user_id=f"u{n % 3}", limit=10)
                    with lock:
                        counts["search"] += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=reader, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert counts == {"add": 120, "search": 240}
        total = sum(len(m.get_all(user_id=f"u{i}", limit=1000)["results"]) for i in range(3))
        assert total == 121
        # after the dust settles, the index agrees with the table: each memory is found by its own words
        for i in range(3):
            for item in m.get_all(user_id=f"u{i}", limit=1000)["results"]:
                hits = m.search(item["memory"], user_id=f"u{i}", limit=5, preset="fast")["results"]
                assert item["id"] in [h["id"] for h in hits]


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Memory(url, embedder="hash") as a:
        a.add("written by the first handle", user_id="u", infer=False)
        with Memory(url, embedder="hash") as b:
            assert b.search("first handle", user_id="u")["results"]
            b.add("written by the second handle", user_id="u", infer=False)
        # a's cached index notices the other writer through the scope version
        found = [x["memory"] for x in a.search("second handle", user_id="u", preset="fast")["results"]]
        assert "written by the second handle" in found
