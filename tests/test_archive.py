"""Archival on real stores (SQLite and PostgreSQL) and real Parquet files: old episodes move out of the
database, stay readable by time range and scope, come back on restore, and retention and erasure reach them
(proven by scanning the files' bytes, as the privacy tests scan the database's)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from archive_support import FEB, JAN, MAR_START, at, contents, fill
from memstrata import Memory
from memstrata.cli import main
from memstrata.errors import BackendError, ConfigurationError
from memstrata.models import Scope
from memstrata.privacy import archive as arch
from memstrata.privacy import gdpr, retention
from memstrata.privacy.crypto import DecryptionError, generate_master_key
from memstrata.providers.embedders import HashEmbedder
from memstrata.secure import secure_memory


def open_memory(store_url: str, root: Path, *, encrypted: bool = False, master: str | None = None) -> Memory:
    if encrypted or master:
        m = secure_memory(store_url, embedder="hash", audit=False, master_key=master or generate_master_key(),
                          archive=str(root))
        assert isinstance(m, Memory)
        return m
    return Memory(store_url, embedder=HashEmbedder(), archive=str(root))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def amem(store_url: str, root: Path) -> Iterator[Memory]:
    m = open_memory(store_url, root)
    m.archive.files.compression = "none"  # type: ignore[union-attr]  # so a byte scan can see plaintext
    yield m
    m.close()



def archive_bytes(root: Path) -> bytes:
    """Every byte under the archive root (stray and temporary files included), lower-cased."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()).lower()


def test_old_episodes_move_to_parquet_with_a_manifest_and_read_back_by_range(amem: Memory, root: Path) -> None:
    fill(amem, "alice", "alice likes kayaks")
    fill(amem, "bob", "bob plays chess")
    fill(amem, "carol", "carol in acme", org="acme")
    arch.set_policy(amem, "365d", org_id="acme")
    arch.set_policy(amem, "90d")  # every other org
    report = arch.run_archive(amem)
    assert report["orgs"]["default"]["episodes"] == 4 and report["orgs"]["acme"]["episodes"] == 2

    assert contents(amem.episodes(user_id="alice")) == ["alice likes kayaks recent"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["policies"] == {"*": 90 * 86400, "acme": 365 * 86400}
    files = {(f["org_id"], f["month"]): f for f in manifest["files"]}
    assert sorted(files) == [("acme", "2024-01"), ("acme", "2024-02"), ("default", "2024-01"), ("default", "2024-02")]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == sorted(
        f["path"] for f in manifest["files"])
    jan = files["default", "2024-01"]
    assert jan["path"].startswith("org=default/2024-01-")
    assert jan["rows"] == 2 and jan["scopes"] == sorted([Scope("default", "alice").key, Scope("default", "bob").key])
    assert jan["min_occurred_at"] == jan["max_occurred_at"] == JAN
    assert jan["sha256"] == hashlib.sha256((root / jan["path"]).read_bytes()).hexdigest()
    assert pq.read_table(root / jan["path"]).num_rows == 2

    got = amem.archived_episodes(user_id="alice")
    assert contents(got) == ["alice likes kayaks number 0", "alice likes kayaks number 1"]
    assert {e["user_id"] for e in got["results"]} == {"alice"}
    assert contents(amem.archived_episodes(user_id="alice", start=at(FEB - 60), end=at(MAR_START))) == [
        "alice likes kayaks number 1"]
    assert contents(amem.archived_episodes(user_id="alice", query="NUMBER 0")) == ["alice likes kayaks number 0"]
    assert contents(amem.archived_episodes(user_id="carol")) == []  # carol is in acme, not the default org
    assert contents(amem.archived_episodes(user_id="carol", org_id="acme")) == ["carol in acme number 0",
                                                                                "carol in acme number 1"]
    assert contents(amem.archived_episodes(user_id="alice", agent_id="a1")) == []  # another scope entirely

    # Only the files whose ranges overlap are read: a damaged January file does not stop a February read.
    (root / jan["path"]).write_bytes(b"damaged")
    assert contents(amem.archived_episodes(user_id="alice", start=at(FEB - 60))) == ["alice likes kayaks number 1"]
    with pytest.raises(BackendError, match="checksum"):
        amem.archived_episodes(user_id="alice")


def test_a_second_run_and_a_crash_between_file_and_delete_store_nothing_twice(amem: Memory, root: Path) -> None:
    fill(amem, "alice", "alice likes kayaks")
    # A run that wrote its file but died before deleting the rows: the rows are in both places.
    store = amem.store
    rows = [arch.to_row(store.codec, e) for e in store.list_episodes(Scope("default", "alice"), end=MAR_START)]
    arch._merge(amem.archive.files, store.codec, "default", rows)  # type: ignore[union-attr]
    assert arch.run_archive(amem, older_than="90d")["orgs"]["default"]["episodes"] == 2
    first = json.loads((root / "manifest.json").read_text())["files"]
    assert sum(f["rows"] for f in first) == 2
    assert arch.run_archive(amem, older_than="90d")["orgs"]["default"]["episodes"] == 0
    assert [f["sha256"] for f in json.loads((root / "manifest.json").read_text())["files"]] == [
        f["sha256"] for f in first]
    assert contents(amem.episodes(user_id="alice")) == ["alice likes kayaks recent"]


def test_restore_brings_a_scope_range_back_once(amem: Memory, root: Path) -> None:
    fill(amem, "alice", "alice likes kayaks")
    fill(amem, "bob", "bob plays chess")
    before = {e["id"]: e for e in amem.episodes(user_id="alice", end=at(MAR_START))["results"]}
    arch.run_archive(amem, older_than="90d")
    out = arch.restore(amem, scope=Scope("default", "alice"), start=at(JAN - 60), end=at(FEB - 60))
    assert out["restored"] == 1
    assert contents(amem.episodes(user_id="alice")) == ["alice likes kayaks number 0", "alice likes kayaks recent"]
    back = amem.episodes(user_id="alice", end=at(FEB - 60))["results"][0]
    assert back == before[back["id"]]  # the same record, id and times included
    assert contents(amem.archived_episodes(user_id="alice")) == ["alice likes kayaks number 1"]
    assert contents(amem.archived_episodes(user_id="bob")) == ["bob plays chess number 0", "bob plays chess number 1"]
    # The restored row is written again by a replayed restore only if it is missing: nothing happens.
    assert arch.restore(amem, scope=Scope("default", "alice"), start=at(JAN - 60), end=at(FEB - 60))["restored"] == 0
    assert arch.restore(amem, org_id="default")["restored"] == 3
    assert arch.describe(amem)["files"] == [] and not list(root.glob("org=*/*.parquet"))
    assert len(amem.episodes(user_id="bob")["results"]) == 3


def test_users_on_legal_hold_stay_in_the_database(amem: Memory) -> None:
    fill(amem, "alice", "alice likes kayaks")
    fill(amem, "bob", "bob plays chess")
    retention.hold_user(amem, "bob", reason="case 12")
    assert arch.run_archive(amem, older_than="90d")["orgs"]["default"]["episodes"] == 2
    assert len(amem.episodes(user_id="bob")["results"]) == 3
    assert contents(amem.archived_episodes(user_id="bob")) == []


def test_forget_user_rewrites_the_files_without_the_user(amem: Memory, root: Path) -> None:
    fill(amem, "alice", "zebracorn-secret-alice")
    fill(amem, "bob", "bob-keeps-kayaks")
    arch.run_archive(amem, older_than="90d")
    # What a process that died between writing a file and switching the manifest to it leaves behind.
    some = next(root.rglob("*.parquet"))
    shutil.copy(some, some.with_name("2024-01-deadbeef0000.parquet"))
    shutil.copy(some, some.with_name(".tmp-0123"))
    on_disk = archive_bytes(root)
    assert b"zebracorn-secret-alice" in on_disk and b"bob-keeps-kayaks" in on_disk  # the scan can see text
    receipt = gdpr.forget_user(amem, "alice")
    assert receipt["archive"] == {"episodes": 2, "files": 2}
    assert receipt["deleted"]["archive"] == 2
    on_disk = archive_bytes(root)
    assert b"zebracorn-secret-alice" not in on_disk
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == sorted(
        f["path"] for f in json.loads((root / "manifest.json").read_text())["files"])
    assert Scope("default", "alice").key.encode() not in on_disk  # the manifest lost her scope too
    assert b"bob-keeps-kayaks" in on_disk
    assert contents(amem.archived_episodes(user_id="alice")) == []
    assert len(amem.archived_episodes(user_id="bob")["results"]) == 2
    for f in json.loads((root / "manifest.json").read_text())["files"]:
        assert f["sha256"] == hashlib.sha256((root / f["path"]).read_bytes()).hexdigest()


def test_delete_all_reaches_the_archive(amem: Memory, root: Path) -> None:
    fill(amem, "alice", "alice likes kayaks")
    arch.run_archive(amem, older_than="90d")
    assert amem.delete_all(user_id="alice")["deleted"]["archived_episodes"] == 2
    assert contents(amem.archived_episodes(user_id="alice")) == [] and not list(root.glob("org=*/*.parquet"))


def test_retention_purges_archived_episodes_by_age_and_category(amem: Memory, root: Path) -> None:
    for user, meta in (("alice", {"category": "legal"}), ("bob", {})):
        amem.add([{"role": "user", "content": f"{user}-old-words-quux"}], user_id=user, timestamp=at(JAN),
                 metadata=meta, infer=False)
    arch.run_archive(amem, older_than="90d")
    retention.set_policy(amem, "episodic", "1d")
    retention.set_policy(amem, "episodic", "3650d", category="legal")
    later = datetime.now(UTC).timestamp() + 3 * 86400
    report = retention.run_retention(amem, now=at(later))
    assert report["orgs"]["default"]["episodic"]["archived_episodes"] == 1
    assert b"bob-old-words-quux" not in archive_bytes(root)
    assert b"alice-old-words-quux" in archive_bytes(root)  # a legal record keeps its ten years
    assert contents(amem.archived_episodes(user_id="alice")) == ["alice-old-words-quux"]


def test_an_encrypted_store_archives_sealed_text_that_dies_with_the_key(store_url: str, root: Path) -> None:
    m = open_memory(store_url, root, encrypted=True)
    m.archive.files.compression = "none"  # type: ignore[union-attr]
    try:
        fill(m, "alice", "sealed-walrus-words")
        arch.run_archive(m, older_than="90d")
        assert b"sealed-walrus-words" not in archive_bytes(root)
        assert contents(m.archived_episodes(user_id="alice")) == ["sealed-walrus-words number 0",
                                                                  "sealed-walrus-words number 1"]
        copy = root.parent / "backup"
        shutil.copytree(root, copy)  # an old copy of the files, made before the erasure
        gdpr.forget_user(m, "alice")
        entry = next(f for f in arch.ArchiveFiles(str(copy)).manifest().files.values() if f.month == "2024-01")
        row = arch.ArchiveFiles(str(copy)).read_rows(entry)[0]
        with pytest.raises(DecryptionError):
            arch.to_record(m.store.codec, row)
    finally:
        m.close()
    plain = Memory(store_url, embedder=HashEmbedder(), archive=str(copy))
    try:
        with pytest.raises(ConfigurationError, match="encrypted rows"):
            plain.archived_episodes(user_id="alice")
    finally:
        plain.close()


def test_without_an_archive_the_calls_say_what_to_configure(mem: Memory) -> None:
    with pytest.raises(ConfigurationError, match="archive="):
        mem.archived_episodes(user_id="alice")
    assert "archive" not in gdpr.forget_user(mem, "nobody")


def test_cli_archive_commands(store_url: str, tmp_path: Path) -> None:
    root = tmp_path / "cli-archive"
    seed = Memory(store_url, embedder=HashEmbedder())
    fill(seed, "alice", "alice likes kayaks")
    seed.close()

    def run(*args: str) -> Any:
        r = CliRunner().invoke(main, ["--store", store_url, "--embedder", "hash", "--json", "archive",
                                      "--to", str(root), *args],
                               env={"MEMSTRATA_MASTER_KEY": None, "MEMSTRATA_ARCHIVE": None})
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    assert run("policy", "90d") == {"org_id": "*", "archive_after_seconds": 90 * 86400}
    assert run("run")["orgs"]["default"]["episodes"] == 2
    listed = run("list")
    assert listed["rows"] == 2 and listed["policies"] == {"*": 90 * 86400}
    found = run("search", "--user", "alice", "--start", at(FEB - 60))
    assert contents(found) == ["alice likes kayaks number 1"]
    assert run("restore", "--user", "alice")["restored"] == 2
    assert run("list")["files"] == []


def test_export_user_includes_archived_episodes_and_import_brings_them_back(amem: Memory, store_url: str,
                                                                             tmp_path: Path) -> None:
    amem.add([{"role": "user", "content": "only-archived-words"}], user_id="dora", agent_id="bot",
             timestamp=at(JAN), infer=False)
    arch.run_archive(amem, older_than="90d")
    assert amem.episodes(user_id="dora", agent_id="bot")["results"] == []
    doc = gdpr.export_user(amem, "dora")
    assert [b["scope"]["agent_id"] for b in doc["scopes"]] == ["bot"]  # the scope lives only in the archive
    assert [e["content"] for e in doc["scopes"][0]["archived_episodes"]] == ["only-archived-words"]
    other = Memory(f"sqlite:///{tmp_path / 'other.db'}", embedder=HashEmbedder())
    try:
        gdpr.import_user(other, doc)
        assert contents(other.episodes(user_id="dora", agent_id="bot")) == ["only-archived-words"]
    finally:
        other.close()


def test_reset_empties_the_archive_but_keeps_its_policies(amem: Memory, root: Path) -> None:
    fill(amem, "alice", "alice likes kayaks")
    arch.set_policy(amem, "90d")
    arch.run_archive(amem)
    amem.reset()
    assert arch.describe(amem)["files"] == [] and arch.describe(amem)["policies"] == {"*": 90 * 86400}
    assert not list(root.glob("org=*/*.parquet"))
