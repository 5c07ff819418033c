"""Archival to an S3 bucket, over the S3 protocol, against a local S3 server (moto's, tests/s3_support.py):
old episodes move to Parquet objects with a manifest in the bucket, read back by range, come back on restore,
and erasure and retention reach them, proven by reading every object in the bucket with an independent
client (boto3) and scanning its bytes, as tests/test_archive.py scans the files of a local archive."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import s3_support
from archive_support import FEB, JAN, MAR_START, at, contents, fill
from memstrata import Memory
from memstrata.cli import main
from memstrata.errors import BackendError
from memstrata.models import Scope
from memstrata.privacy import archive as arch
from memstrata.privacy import gdpr, retention
from memstrata.providers.embedders import HashEmbedder

PREFIX = "memstrata/archive"


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'memory.db'}"


class Bucket:
    """A fresh bucket on the session's S3 server, read back through boto3 (not through the code under test)."""

    def __init__(self, server: s3_support.S3Server) -> None:
        self.server = server
        self.name = server.new_bucket()
        self.s3 = server.client()
        self.url = f"s3://{self.name}/{PREFIX}?endpoint_override={server.endpoint}&region=us-east-1"

    def keys(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.name, Key=key, Body=data)

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.get(f"{PREFIX}/manifest.json"))
        return doc

    def parquet_keys(self) -> list[str]:
        return [k for k in self.keys() if k.endswith(".parquet")]

    def every_byte(self) -> bytes:
        """Every object in the bucket, stray ones included, lower-cased; and nothing else holds bytes: no
        unfinished multipart upload, no older version of an object."""
        assert self.s3.list_multipart_uploads(Bucket=self.name).get("Uploads", []) == []
        versions = self.s3.list_object_versions(Bucket=self.name).get("Versions", [])
        assert sorted(v["Key"] for v in versions) == self.keys()
        return b"".join(self.get(k) for k in self.keys()).lower()


@pytest.fixture
def bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    s3_support.set_credentials(monkeypatch)
    return Bucket(s3_support.session_server(request.config))


@pytest.fixture
def amem(tmp_path: Path, bucket: Bucket) -> Iterator[Memory]:
    m = Memory(sqlite_url(tmp_path), embedder=HashEmbedder(), archive=bucket.url)
    m.archive.files.compression = "none"  # type: ignore[union-attr]  # so a byte scan can see plaintext
    yield m
    m.close()



def test_old_episodes_move_to_objects_with_a_manifest_in_the_bucket(amem: Memory, bucket: Bucket) -> None:
    fill(amem, "alice", "alice likes kayaks")
    fill(amem, "carol", "carol in acme", org="acme")
    arch.set_policy(amem, "90d")
    report = arch.run_archive(amem)
    assert report["orgs"]["default"]["episodes"] == 2 and report["orgs"]["acme"]["episodes"] == 2
    assert contents(amem.episodes(user_id="alice")) == ["alice likes kayaks recent"]

    manifest = bucket.manifest()
    assert manifest["policies"] == {"*": 90 * 86400}
    assert sorted((f["org_id"], f["month"]) for f in manifest["files"]) == [
        ("acme", "2024-01"), ("acme", "2024-02"), ("default", "2024-01"), ("default", "2024-02")]
    assert bucket.parquet_keys() == sorted(f"{PREFIX}/{f['path']}" for f in manifest["files"])
    for f in manifest["files"]:
        data = bucket.get(f"{PREFIX}/{f['path']}")
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)
        assert data.startswith(b"PAR1") and data.endswith(b"PAR1")

    assert contents(amem.archived_episodes(user_id="alice")) == ["alice likes kayaks number 0",
                                                                 "alice likes kayaks number 1"]
    assert contents(amem.archived_episodes(user_id="alice", start=at(FEB - 60), end=at(MAR_START))) == [
        "alice likes kayaks number 1"]
    assert contents(amem.archived_episodes(user_id="carol", org_id="acme", end=at(FEB - 60))) == [
        "carol in acme number 0"]
    assert contents(amem.archived_episodes(user_id="carol")) == []  # carol is in acme, not the default org

    # A second run finds nothing new and rewrites nothing.
    assert arch.run_archive(amem)["orgs"]["default"]["episodes"] == 0
    assert [f["sha256"] for f in bucket.manifest()["files"]] == [f["sha256"] for f in manifest["files"]]

    # The reader checks what the bucket hands back against the manifest.
    jan = next(f for f in manifest["files"] if (f["org_id"], f["month"]) == ("default", "2024-01"))
    bucket.put(f"{PREFIX}/{jan['path']}", b"damaged")
    assert contents(amem.archived_episodes(user_id="alice", start=at(FEB - 60))) == ["alice likes kayaks number 1"]
    with pytest.raises(BackendError, match="checksum"):
        amem.archived_episodes(user_id="alice")


def test_restore_brings_episodes_back_out_of_the_bucket(amem: Memory, bucket: Bucket) -> None:
    fill(amem, "alice", "alice likes kayaks")
    fill(amem, "bob", "bob plays chess")
    before = {e["id"]: e for e in amem.episodes(user_id="alice", end=at(MAR_START))["results"]}
    arch.run_archive(amem, older_than="90d")
    out = arch.restore(amem, scope=Scope("default", "alice"), start=at(JAN - 60), end=at(FEB - 60))
    assert out["restored"] == 1
    back = amem.episodes(user_id="alice", end=at(FEB - 60))["results"]
    assert [before[e["id"]] for e in back] == back  # the same records, ids and times included
    assert contents(amem.archived_episodes(user_id="alice")) == ["alice likes kayaks number 1"]
    assert b"alice likes kayaks number 0" not in bucket.every_byte()
    assert arch.restore(amem, org_id="default")["restored"] == 3
    assert bucket.parquet_keys() == [] and bucket.manifest()["files"] == []
    assert len(amem.episodes(user_id="bob")["results"]) == 3


def test_forget_user_leaves_no_byte_of_the_user_in_the_bucket(amem: Memory, bucket: Bucket) -> None:
    fill(amem, "alice", "zebracorn-secret-alice")
    fill(amem, "bob", "bob-keeps-kayaks")
    arch.run_archive(amem, older_than="90d")
    # What a process that died between writing an object and switching the manifest to it leaves behind.
    some = bucket.parquet_keys()[0]
    bucket.put(some.rpartition("/")[0] + "/2024-01-deadbeef0000.parquet", bucket.get(some))
    assert b"zebracorn-secret-alice" in bucket.every_byte() and b"bob-keeps-kayaks" in bucket.every_byte()

    receipt = gdpr.forget_user(amem, "alice")
    assert receipt["archive"] == {"episodes": 2, "files": 2}
    stored = bucket.every_byte()
    assert b"zebracorn-secret-alice" not in stored
    assert Scope("default", "alice").key.encode() not in stored  # the manifest lost her scope too
    assert b"bob-keeps-kayaks" in stored
    assert bucket.parquet_keys() == sorted(f"{PREFIX}/{f['path']}" for f in bucket.manifest()["files"])
    assert contents(amem.archived_episodes(user_id="alice")) == []
    assert len(amem.archived_episodes(user_id="bob")["results"]) == 2


def test_retention_purges_archived_episodes_in_the_bucket(amem: Memory, bucket: Bucket) -> None:
    for user, meta in (("alice", {"category": "legal"}), ("bob", {})):
        amem.add([{"role": "user", "content": f"{user}-old-words-quux"}], user_id=user, timestamp=at(JAN),
                 metadata=meta, infer=False)
    arch.run_archive(amem, older_than="90d")
    retention.set_policy(amem, "episodic", "1d")
    retention.set_policy(amem, "episodic", "3650d", category="legal")
    report = retention.run_retention(amem, now=at(datetime.now(UTC).timestamp() + 3 * 86400))
    assert report["orgs"]["default"]["episodic"]["archived_episodes"] == 1
    stored = bucket.every_byte()
    assert b"bob-old-words-quux" not in stored
    assert b"alice-old-words-quux" in stored  # a legal record keeps its ten years
    assert contents(amem.archived_episodes(user_id="alice")) == ["alice-old-words-quux"]


def test_a_file_larger_than_one_upload_part_round_trips(bucket: Bucket) -> None:
    # pyarrow uploads in 10 MiB parts: this file takes two, so the multipart path is exercised in full.
    files = arch.ArchiveFiles(bucket.url, compression="none")
    blob = os.urandom(6000).hex()  # incompressible text, 12 KB a row
    rows = [{"id": f"e{i}", "scope_key": "s", "org_id": "default", "user_id": "u", "role": "user",
             "content": f"{i}:{blob}", "metadata": "{}", "position": i, "occurred_at": JAN + i,
             "created_at": JAN + i, "extraction_status": "done"} for i in range(1000)]
    with files.changing() as manifest:
        entry = files.write_rows(manifest, "default", "2024-01", rows, sealed=False)
    assert entry is not None and entry.bytes > 11 * 1024 * 1024
    assert hashlib.sha256(bucket.get(f"{PREFIX}/{entry.path}")).hexdigest() == entry.sha256
    back = arch.ArchiveFiles(bucket.url).read_rows(arch.ArchiveFiles(bucket.url).manifest().files[entry.path])
    assert [r["content"] for r in back] == [r["content"] for r in rows]


def test_a_missing_bucket_is_an_error_not_an_empty_archive(tmp_path: Path, bucket: Bucket) -> None:
    wrong = bucket.url.replace(bucket.name, bucket.name + "-typo")
    m = Memory(sqlite_url(tmp_path), embedder=HashEmbedder(), archive=wrong)
    try:
        fill(m, "alice", "alice likes kayaks")
        with pytest.raises(BackendError, match=f"bucket '{bucket.name}-typo'.*does not exist"):
            m.archived_episodes(user_id="alice")
        with pytest.raises(BackendError, match="does not exist"):
            arch.run_archive(m, older_than="90d")
        assert len(m.episodes(user_id="alice")["results"]) == 3  # nothing left the database
        with pytest.raises(BackendError, match="does not exist"):
            gdpr.forget_user(m, "alice")  # an erasure must not report an unreachable archive as empty
        # ... and it fails before it erases anything: run again once the archive is reachable, it finishes
        assert len(m.episodes(user_id="alice")["results"]) == 3
        assert m.get_all(user_id="alice")["results"]
    finally:
        m.close()
    # An existing bucket with no manifest yet is a new, empty archive.
    assert arch.ArchiveFiles(bucket.url).manifest().files == {}


def test_cli_archive_commands_on_a_bucket(tmp_path: Path, bucket: Bucket) -> None:
    store = sqlite_url(tmp_path)
    seed = Memory(store, embedder=HashEmbedder())
    fill(seed, "alice", "alice likes kayaks")
    seed.close()

    def run(*args: str) -> Any:
        r = CliRunner().invoke(main, ["--store", store, "--embedder", "hash", "--json", "archive", *args],
                               env={"MEMSTRATA_MASTER_KEY": None, "MEMSTRATA_ARCHIVE": bucket.url})
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    assert run("policy", "90d") == {"org_id": "*", "archive_after_seconds": 90 * 86400}
    assert run("run")["orgs"]["default"]["episodes"] == 2
    assert run("list")["rows"] == 2 and len(bucket.parquet_keys()) == 2
    assert contents(run("search", "--user", "alice", "--start", at(FEB - 60))) == ["alice likes kayaks number 1"]
    assert run("restore", "--user", "alice")["restored"] == 2
    assert run("list")["files"] == [] and bucket.parquet_keys() == []
