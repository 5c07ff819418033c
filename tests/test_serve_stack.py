"""``memstrata serve`` builds the whole documented stack from flags and MEMSTRATA_* variables: the store,
Redis as cache, an external vector index, an OpenAI-compatible embedder and an LLM extractor. Each engine
here is real (a redis-server, embedded Qdrant) or a local server speaking the provider's real protocol."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from fake_llm_server import FakeLLMServer, Reply
from memstrata.errors import ConfigurationError
from memstrata.settings import Settings
from pg_support import free_port
from test_backends_redis import RedisServer
from test_llm_ingest import ANSWER

DIM = 32


class EmbeddingsServer:
    """An OpenAI-compatible ``POST /v1/embeddings``: deterministic vectors from each input's hash."""

    def __init__(self) -> None:
        self.inputs: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.inputs.extend(body["input"])
                data = [{"object": "embedding", "index": i, "embedding": _vector(text)}
                        for i, text in enumerate(body["input"])]
                raw = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> EmbeddingsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.lower().encode()).digest()
    return [b / 255.0 for b in digest[:DIM]]


@contextmanager
def serving(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """``memstrata ARGS`` as a real process, once ``/ready`` answers; yields the base URL and a list that holds
    the process's output after it stopped."""
    env = env or {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", "from memstrata.cli import main; main()", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base, log = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "memstrata serve did not become ready"
            time.sleep(0.3)
        yield base, log
    finally:
        proc.terminate()
        log.append(proc.communicate(timeout=30)[0])


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def test_serve_builds_every_engine_from_flags_and_environment(tmp_path: Path, own_redis: RedisServer) -> None:
    port = free_port()
    with EmbeddingsServer() as embed, FakeLLMServer(fallback=Reply.json(ANSWER)) as llm:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
               "MEMSTRATA_EMBEDDER": f"openai+{embed.url}?model=fake-embed",
               "MEMSTRATA_LLM": f"openai+{llm.url}/v1?model=fake-chat&max_retries=0",
               "MEMSTRATA_LLM_API_KEY": "sk-local-test",
               "MEMSTRATA_CACHE": own_redis.url}
        args = ["--store", f"sqlite:///{tmp_path}/m.db", "serve", "--no-auth", "--port", str(port),
                "--vectors", f"qdrant:///{tmp_path}/qdrant", "--conflict-policy", "manual"]
        with serving(args, port, env) as (base, log):
            r = httpx.post(f"{base}/v1/memories", json={
                "messages": "I've been living in Lisbon since spring.", "user_id": "alice",
                "conversation_id": "c1"}, timeout=30)
            assert r.status_code == 201, r.text
            kept = {x["memory"]: x.get("kind") for x in r.json()["results"]}
            assert "The user lives in Lisbon" in kept  # the LLM's words, beside the message kept as evidence
            assert "I've been living in Lisbon since spring." in kept
            stats = httpx.get(f"{base}/v1/stats", params={"user_id": "alice"}, timeout=10).json()
            assert stats["embedder"] == "openai:fake-embed"
    out = "".join(log)
    assert any(i.startswith("The user lives in Lisbon") for i in embed.inputs)  # the named embedder embedded it
    (chat,) = [q for q in llm.requests if q.path.endswith("/chat/completions")][:1]
    assert chat.headers["authorization"] == "Bearer sk-local-test" and chat.body["model"] == "fake-chat"
    client = redis.Redis(port=own_redis.port)
    assert client.keys("memstrata:*"), "no short-term keys in Redis"
    client.close()
    assert any((tmp_path / "qdrant").rglob("*")), "the Qdrant folder is empty"
    assert "sk-local-test" not in out  # secrets never reach the log
    assert "llm=openai+http://127.0.0.1" in out and "conflict_policy=manual" in out


def test_settings_resolve_flags_over_environment_and_reject_bad_values() -> None:
    env = {"MEMSTRATA_STORE": "sqlite:///env.db", "MEMSTRATA_CACHE": "redis://127.0.0.1:6379/3",
           "MEMSTRATA_LLM_API_KEY": "sk-secret"}
    stack = Settings.from_env(env, store="sqlite:///flag.db")
    assert (stack.store, stack.cache) == ("sqlite:///flag.db", "redis://127.0.0.1:6379/3")
    assert "sk-secret" not in repr(stack) and "llm_api_key" not in stack.describe()
    assert Settings.from_env(stack.to_env()) == stack  # a worker process rebuilds the same settings
    with pytest.raises(ConfigurationError, match="conflict policy"):
        Settings.from_env({"MEMSTRATA_CONFLICT_POLICY": "newest"})
    with pytest.raises(ConfigurationError, match="model"):
        Settings.from_env({"MEMSTRATA_EMBEDDER": "openai+http://127.0.0.1:1/v1"}).build_embedder()
    masked = Settings.from_env({"MEMSTRATA_STORE": "postgresql://u:pw@db/x"}).describe()["store"]
    assert "pw" not in masked
