"""A real local HTTP server that plays an LLM provider, for tests of the LLM clients.

It speaks both the OpenAI ``/chat/completions`` and the Anthropic ``/v1/messages`` protocols: a scripted
:class:`Reply` is wrapped in whichever envelope the request's path asks for, so one script serves both
clients. Every request is recorded (path, headers, decoded body) for assertions.

    with FakeLLMServer() as server:
        server.push(Reply.json({"ok": True}), Reply.status(429, retry_after="1"))
        client = OpenAICompatibleClient(server.url + "/v1", "key", "model")
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with :meth:`json`, :meth:`text`, :meth:`status` or :meth:`slow`."""

    kind: str  # "json" (a structured answer), "text" (raw model text), "status" (an error response)
    payload: Any = None
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 50

    @classmethod
    def json(cls, obj: Any, *, prompt_tokens: int = 100, completion_tokens: int = 50) -> Reply:
        """A well-formed structured answer: message content (OpenAI) or a tool_use input (Anthropic)."""
        return cls("json", obj, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    @classmethod
    def text(cls, text: str) -> Reply:
        """The model answers free text (e.g. malformed JSON) instead of the structured answer."""
        return cls("text", text)

    @classmethod
    def status(cls, code: int, body: str = "", *, retry_after: str | None = None) -> Reply:
        """An HTTP error such as 401, 429 or 500; ``retry_after`` sets the Retry-After header."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls("status", body or json.dumps({"error": {"message": f"scripted {code}"}}), code=code, headers=headers)

    @classmethod
    def slow(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Wait ``seconds`` before answering ``then`` (a valid empty answer by default): drives client timeouts."""
        inner = then or cls.json({})
        return cls(inner.kind, inner.payload, inner.code, inner.headers, seconds, inner.prompt_tokens,
                   inner.completion_tokens)


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received: ``headers`` keys are lower-cased; ``body`` is the decoded JSON (or None)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _openai_envelope(reply: Reply, request: Any) -> dict[str, Any]:
    content = json.dumps(reply.payload) if reply.kind == "json" else reply.payload
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": (request or {}).get("model", "fake"),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _anthropic_envelope(reply: Reply, request: Any) -> dict[str, Any]:
    request = request or {}
    if reply.kind == "json":
        tool = (request.get("tool_choice") or {}).get("name", "answer")
        block = {"type": "tool_use", "id": "toolu_fake", "name": tool, "input": reply.payload}
    else:
        block = {"type": "text", "text": reply.payload}
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "fake"),
        "content": [block],
        "stop_reason": "tool_use" if reply.kind == "json" else "end_turn",
        "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
    }


class FakeLLMServer:
    """Threaded HTTP server on 127.0.0.1 (free port) answering from a queue of :class:`Reply`.

    ``fallback`` answers when the queue is empty (default: HTTP 500 saying the script ran out).
    Use as a context manager; leaving it stops the server and joins its threads.
    """

    def __init__(self, fallback: Reply | None = None) -> None:
        self.fallback = fallback
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> None:
        """Append scripted replies; each request consumes one."""
        with self._lock:
            self._queue.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.fallback or Reply.status(500, "fake llm server: no scripted reply left")

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> FakeLLMServer:
        """Bind a free port and serve in a background thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 closes each connection after its response, so no handler thread lingers on keep-alive.
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                server._record(RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                               body))
                reply = server._next()
                if reply.delay and server._stop.wait(reply.delay):
                    return  # shutting down: drop the slow answer
                if reply.kind == "status":
                    code, payload = reply.code, reply.payload.encode()
                else:
                    envelope = _anthropic_envelope if self.path.endswith("/messages") else _openai_envelope
                    code, payload = 200, json.dumps(envelope(reply, body)).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout) and closed the socket

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake slow handlers, close the socket and join every thread."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()  # joins handler threads (block_on_close)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
