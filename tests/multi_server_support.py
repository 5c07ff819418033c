"""Processes for the multi-server tests: ``memstrata serve`` processes on one store and one Redis, and Debian's
haproxy balancing round robin in front of them, all on loopback.

Each server writes its log to a file (a pipe nobody reads would fill and stall it); a test that fails shows
the tail of every log. haproxy adds ``X-Served-By: <server name>`` to each response, so a test can tell which
process answered. When haproxy is not installed the tests fail and say how to install it: never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from pg_support import free_port

PEPPER = "multi-server-pepper"


def _wait(what: str, check: object, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{tail(log)}", pytrace=False)
        try:
            if check():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not become ready in {timeout:.0f} s:\n{tail(log)}", pytrace=False)
        time.sleep(0.2)


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


class ServeProcess:
    """One ``memstrata serve`` process on 127.0.0.1:``port``."""

    def __init__(self, name: str, store: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = workdir / f"{name}.log"
        self.argv = [sys.executable, "-c", "from memstrata.cli import main; main()", "--store", store, "serve",
                     "--port", str(self.port), "--log-level", "warning", *args]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self) -> None:
        assert self.proc is not None
        _wait(f"memstrata serve {self.name}", lambda: httpx.get(f"{self.url}/ready", timeout=2).status_code == 200,
              self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


HAPROXY_CONFIG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s

frontend memstrata
    bind 127.0.0.1:{port}
    default_backend servers

backend servers
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    http-response set-header X-Served-By %s
{servers}
"""


def haproxy_binary() -> str:
    """haproxy's path; fails the test (never skips it) when it is not installed."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail("the multi-server tests need Debian's haproxy as the load balancer: "
                    "apt-get install -y haproxy (.ci/run installs it)", pytrace=False)
    return found


class HAProxy:
    """haproxy on 127.0.0.1:``port``, round robin over ``backends`` (name, port), each health-checked on /ready."""

    def __init__(self, backends: list[tuple[str, int]], workdir: Path) -> None:
        self.binary = haproxy_binary()
        self.port = free_port()
        self.backends = backends
        self.config = workdir / "haproxy.cfg"
        self.log = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HAProxy:
        servers = "\n".join(f"    server {name} 127.0.0.1:{port} check inter 1s" for name, port in self.backends)
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        checked = subprocess.run([self.binary, "-c", "-f", str(self.config)], capture_output=True, text=True,
                                 timeout=30)
        if checked.returncode != 0:
            pytest.fail(f"haproxy rejected its configuration:\n{checked.stdout}{checked.stderr}", pytrace=False)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config)], stdout=out,
                                         stderr=subprocess.STDOUT)
        names = {name for name, _ in self.backends}

        def all_served() -> bool:
            seen = {httpx.get(f"{self.url}/health", timeout=2).headers.get("x-served-by")
                    for _ in range(2 * len(names))}
            return seen == names

        _wait("haproxy", all_served, self.proc, self.log, timeout=30)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class Cluster:
    """``count`` servers on one store and one Redis behind haproxy."""

    def __init__(self, store: str, cache: str, args: list[str], count: int = 3) -> None:
        haproxy_binary()  # before anything starts
        self.workdir = Path(tempfile.mkdtemp(prefix="memstrata-multi-"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MEMSTRATA_KEY_PEPPER": PEPPER}
        self.store = store
        self.servers = [ServeProcess(f"s{i + 1}", store, ["--cache", cache, *args], env, self.workdir)
                        for i in range(count)]
        self.balancer: HAProxy | None = None

    @property
    def url(self) -> str:
        assert self.balancer is not None
        return self.balancer.url

    def start(self) -> Cluster:
        try:
            # Started together: each spends a few seconds importing, and they overlap.
            for server in self.servers:
                server.start()
            for server in self.servers:
                server.wait_ready()
            self.balancer = HAProxy([(s.name, s.port) for s in self.servers], self.workdir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def logs(self) -> str:
        parts = [f"--- {s.name}\n{tail(s.log)}" for s in self.servers]
        if self.balancer is not None:
            parts.append(f"--- haproxy\n{tail(self.balancer.log)}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
