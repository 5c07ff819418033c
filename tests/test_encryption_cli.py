"""`memstrata encryption`: new master keys, status, and rotation on both backends."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from memstrata.cli import main
from memstrata.privacy.crypto import LocalKeyProvider, generate_master_key
from privacy_backends import PRIVACY_BACKENDS, RawStore, raw_store


@pytest.fixture(params=PRIVACY_BACKENDS)
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    return raw_store(request, tmp_path)


def _cli(store: str | None, *args: str, env: dict[str, str | None] | None = None) -> Result:
    clean: dict[str, str | None] = {"MEMSTRATA_MASTER_KEY": None, "MEMSTRATA_MASTER_KEY_FILE": None, **(env or {})}
    base = ["--store", store] if store else []
    return CliRunner().invoke(main, [*base, "--embedder", "hash", "--json", *args], env=clean)


def test_new_key_prints_or_writes_a_private_file_and_never_overwrites(tmp_path: Path) -> None:
    printed = _cli(None, "encryption", "new-key")
    assert printed.exit_code == 0, printed.output
    LocalKeyProvider.from_text(printed.output.strip().splitlines()[-1])  # a valid 32-byte base64 key
    path = tmp_path / "master.key"
    made = _cli(None, "encryption", "new-key", "-o", str(path))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_text()
    again = _cli(None, "encryption", "new-key", "-o", str(path))
    assert again.exit_code == 4 and "refusing to overwrite" in again.output
    assert path.read_text() == before


def test_rotate_rewraps_keys_and_only_the_new_key_opens_the_store(raw: RawStore, tmp_path: Path) -> None:
    old, new = generate_master_key(), generate_master_key()
    new_file = tmp_path / "new.key"
    new_file.write_text(new + "\n")
    with_old = {"MEMSTRATA_MASTER_KEY": old}
    for user in ("alice", "bob"):
        r = _cli(raw.url, "add", f"{user} keeps bees", "--user", user, "--raw", env=with_old)
        assert r.exit_code == 0, r.output

    status = json.loads(_cli(raw.url, "encryption", "status", env=with_old).output)
    old_id = LocalKeyProvider.from_text(old).current_key_id
    assert status["live_data_keys"] == 2 and status["by_master_key"] == {old_id: 2}
    wrapped_before = {r[0]: bytes(r[1]) for r in raw.sql("SELECT subject_key, wrapped_key FROM data_keys")}

    r = _cli(raw.url, "encryption", "rotate", "--new-key-file", str(new_file), env=with_old)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    new_id = LocalKeyProvider.from_text(new).current_key_id
    assert report["rewrapped"] >= 2 and report["master_key_id"] == new_id
    rows = raw.sql("SELECT subject_key, wrapped_key, master_key_id FROM data_keys")
    after = {r[0]: (bytes(r[1]), r[2]) for r in rows}
    for subject, wrapped in wrapped_before.items():
        assert after[subject][1] == new_id and after[subject][0] != wrapped
        assert after[subject][0][:8] == wrapped[:8]  # the same data key (its id), wrapped anew: no data re-encrypted

    refused = _cli(raw.url, "list", "--user", "alice", env=with_old)
    assert refused.exit_code == 4 and "master key" in refused.output
    listed = _cli(raw.url, "list", "--user", "alice", env={"MEMSTRATA_MASTER_KEY": new})
    assert listed.exit_code == 0 and "alice keeps bees" in listed.output
    plain = _cli(raw.url, "list", "--user", "alice")
    assert plain.exit_code == 4 and "holds encrypted data" in plain.output
    status = json.loads(_cli(raw.url, "encryption", "status", env={"MEMSTRATA_MASTER_KEY": new}).output)
    assert status["by_master_key"] == {new_id: 2} and not status["rotation_pending"]


def test_rotate_refuses_bad_requests(raw: RawStore, tmp_path: Path) -> None:
    key = generate_master_key()
    assert _cli(raw.url, "add", "x", "--user", "u", "--raw", env={"MEMSTRATA_MASTER_KEY": key}).exit_code == 0
    same = tmp_path / "same.key"
    same.write_text(key)
    r = _cli(raw.url, "encryption", "rotate", "--new-key-file", str(same), env={"MEMSTRATA_MASTER_KEY": key})
    assert r.exit_code == 4 and "nothing to rotate" in r.output
    r = _cli(raw.url, "encryption", "rotate", "--new-key-env", "MEMSTRATA_NO_SUCH_VAR",
             env={"MEMSTRATA_MASTER_KEY": key})
    assert r.exit_code == 4 and "MEMSTRATA_NO_SUCH_VAR is not set" in r.output
    r = _cli(raw.url, "encryption", "rotate", "--new-key-env", "NEW", env={"NEW": generate_master_key()})
    assert r.exit_code == 4 and "no master key configured" in r.output
    r = _cli(raw.url, "encryption", "rotate", env={"MEMSTRATA_MASTER_KEY": key})
    assert r.exit_code == 2 and "exactly one of" in r.output
    wrong = _cli(raw.url, "encryption", "status", env={"MEMSTRATA_MASTER_KEY": generate_master_key()})
    assert wrong.exit_code == 4 and "master key" in wrong.output
