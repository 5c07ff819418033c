"""A three-master Redis Cluster on loopback, started by the tests with Debian's redis-server.

Each node gets its own port, cluster-bus port and directory; ``redis-cli --cluster create`` assigns the
16,384 slots. Nothing touches the shared Redis at 6379. A free port can be taken by another process (another
test worker's server or client) before a node binds it: a node that exits at start is started again, with
all ports drawn anew, up to :data:`START_TRIES` times.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from pg_support import free_port

START_TRIES = 3


def _distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class RedisCluster:
    def __init__(self, masters: int = 3) -> None:
        self.masters = masters
        self._draw_ports()
        self.dir = Path(tempfile.mkdtemp(prefix="memstrata-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def _draw_ports(self) -> None:
        ports = _distinct_ports(2 * self.masters)
        self.ports, self.bus_ports = ports[: self.masters], ports[self.masters:]

    @property
    def url(self) -> str:
        """A URL naming one node; memstrata discovers the others with ``?cluster=1``."""
        return f"redis://127.0.0.1:{self.ports[0]}/0?cluster=1"

    def start(self) -> RedisCluster:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            pytest.fail("the Redis Cluster tests need redis-server and redis-cli on PATH (apt-get install "
                        "redis-server)", pytrace=False)
        for _ in range(START_TRIES):
            if self._launch(server):
                break
            self._halt()  # a port was taken before the node bound it: draw them all again
            self._draw_ports()
        else:
            self.stop()
            pytest.fail(f"Redis Cluster: no node set started in {START_TRIES} tries (ports kept being taken)",
                        pytrace=False)
        created = subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, text=True, timeout=60,
        )
        if created.returncode != 0:
            self.stop()
            pytest.fail(f"redis-cli --cluster create failed: {created.stdout[-500:]} {created.stderr[-500:]}",
                        pytrace=False)
        for port in self.ports:
            self._wait(lambda p=port: self._state(p) == "ok", f"node {port} to report cluster_state:ok")
        return self

    def _launch(self, server: str) -> bool:
        """Start one redis-server per node; True when every node answers, False when one exited at start."""
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            self.procs.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-port", str(bus), "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no", "--dir", str(node_dir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        deadline = time.monotonic() + 20.0
        for port, proc in zip(self.ports, self.procs, strict=True):
            while True:
                if proc.poll() is not None:
                    return False
                try:
                    if redis.Redis(port=port, socket_timeout=0.2).ping():
                        break
                except redis.exceptions.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"Redis Cluster: timed out waiting for node {port} to start", pytrace=False)
                time.sleep(0.1)
        time.sleep(0.2)  # a node that could not bind its bus port exits just after it answers
        return all(proc.poll() is None for proc in self.procs)

    def _end_nodes(self, *, kill: bool) -> None:
        for proc in self.procs:
            if kill:
                proc.kill()
            else:
                proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)
        self.procs = []

    def _halt(self) -> None:
        """Stop the nodes of a failed start and clear their directories; the cluster folder stays."""
        self._end_nodes(kill=True)
        for child in self.dir.iterdir():
            shutil.rmtree(child, ignore_errors=True)

    def _wait(self, probe, what: str, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"Redis Cluster: timed out waiting for {what}", pytrace=False)

    @staticmethod
    def _state(port: int) -> str:
        client = redis.Redis(port=port, decode_responses=True, socket_timeout=0.5)
        try:
            return str(client.cluster("info").get("cluster_state"))
        finally:
            client.close()

    def node_of_key(self, key: str) -> int:
        """The port of the master that holds ``key``'s slot."""
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0])
        try:
            return int(client.get_node_from_key(key).port)
        finally:
            client.close()

    def stop(self) -> None:
        self._end_nodes(kill=False)
        shutil.rmtree(self.dir, ignore_errors=True)
