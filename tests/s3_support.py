"""A local S3-compatible server for the tests: moto's S3 server (``moto[s3]`` with flask, from the dev extra)
as a separate process on a free loopback port, spoken to over HTTP with SigV4 as S3 itself is.

One server per test session (started on first use, stopped at the end); each test gets its own bucket. If it
cannot start, the tests that need it fail with the reason; they are never skipped.

moto 5.2.6 is the release tested; 5.2.0 answers CompleteMultipartUpload with a
``CompleteMultipartUploadResponse`` root element instead of S3's ``CompleteMultipartUploadResult``, which the
AWS C++ SDK inside pyarrow rejects (INTERNAL_FAILURE), so every pyarrow write fails there.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from pg_support import free_port
from service_support import SessionService

# moto accepts any credentials; pyarrow and boto3 need some to sign with.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "memstrata-test", "AWS_SECRET_ACCESS_KEY": "memstrata-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


class S3Server:
    """moto's S3 server on 127.0.0.1:``port``; its log in a temporary file."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkdtemp(prefix="memstrata-s3-")) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> S3Server:
        try:
            import flask  # noqa: F401
            import moto  # noqa: F401 - a clear message if the dev extra is missing
        except ImportError as exc:
            raise RuntimeError(f"{exc.name} is not installed: pip install -e '.[dev]' (moto[s3], flask)") from None
        with open(self.log, "wb") as out:  # a file, not a pipe: a full pipe would stall the server
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                          str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto's S3 server exited with {self.proc.returncode}:\n{self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/", timeout=2):  # ListBuckets
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto's S3 server did not answer on {self.endpoint} within {timeout:.0f}s:\n"
                           f"{self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> Any:
        """A boto3 S3 client on the server: an independent reader for what the archive wrote."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def new_bucket(self) -> str:
        name = f"memstrata-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def _start(config: pytest.Config) -> S3Server:
    server = S3Server().start()
    config.add_cleanup(server.stop)
    return server


_SESSION = SessionService("the S3 archive tests need a local S3 server (moto)", _start)


def session_server(config: pytest.Config) -> S3Server:
    """The session's S3 server; stopped when pytest ends."""
    return _SESSION.get(config)


def set_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
