"""Every setting of the faces that start from a command line or an environment: the CLI, ``memstrata serve``
(and the app factory its workers run) and ``memstrata mcp``. One frozen ``Settings`` value, read once at the
edge with ``Settings.from_env()``; a flag wins over its environment variable, which wins over the default.

The library below never reads this module or the environment for its configuration: ``Memory(...)`` and
``create_app(...)`` take explicit arguments, and the faces build them from a ``Settings``. Each field says its
variable, type, default and meaning, and docs/configuration.md is rendered from them (``memstrata docs
config``); a test keeps the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from functools import cache
from typing import Any, get_type_hints
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from memstrata.config import CONFLICT_POLICIES, DEFAULT_STORE, CacheLayers, IngestConfig
from memstrata.errors import ConfigurationError

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
_FALSE = ("0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


def _setting(env: str, help: str, *, default: Any = None, shown: str | None = None, flag: str = "",
             used_by: str = "all", secret: bool = False) -> Any:
    """A field with its environment variable and the words docs/configuration.md shows for it."""
    meta = {"env": env, "help": help, "shown": shown, "flag": flag, "used_by": used_by, "secret": secret}
    return field(default=default, repr=not secret, metadata=meta)


@dataclass(frozen=True, repr=False)
class Settings:
    """What the faces are configured with: the stack a Memory is built from, encryption, the server's
    own options and the stdio MCP key."""

    # -- the stack: every face
    store: str | None = _setting(
        "MEMSTRATA_STORE", "store URL: `sqlite:///path/memory.db`, `sqlite://:memory:`, `postgresql://…`",
        shown=f"`{DEFAULT_STORE}`", flag="--store")
    cache: str | None = _setting(
        "MEMSTRATA_CACHE", "short-term cache, e.g. `redis://host:6379/0`", shown="in-process", flag="serve --cache")
    cache_layers: bool = _setting(
        "MEMSTRATA_CACHE_LAYERS", "the layered read cache (docs/scaling.md): query vectors and hot scopes' search "
        "pieces shared through Redis by every server, invalidated on every write; `0`: each process keeps only "
        "its own query vectors", default=True)
    cache_layers_url: str | None = _setting(
        "MEMSTRATA_CACHE_LAYERS_URL", "the Redis of the layered cache, when it is not `MEMSTRATA_CACHE` "
        "(`?prefix=`, `?cluster=1` as there)", shown="`MEMSTRATA_CACHE`; none: in-process query vectors only")
    query_vector_ttl: float = _setting(
        "MEMSTRATA_QUERY_VECTOR_TTL", "seconds a query's vector stays in Redis", default=CacheLayers.query_ttl)
    scope_cache: bool = _setting(
        "MEMSTRATA_SCOPE_CACHE", "cache hot scopes' candidate lists and entity names (`0`: query vectors only)",
        default=True)
    scope_cache_ttl: float = _setting(
        "MEMSTRATA_SCOPE_CACHE_TTL", "seconds a scope entry stays in Redis (a write makes it stale at once)",
        default=CacheLayers.scope_ttl)
    vectors: str | None = _setting(
        "MEMSTRATA_VECTORS", "external vector index: `qdrant:///path`, `qdrant+http://host:6333`, "
        "`chroma:///path`, `chroma+http://host:8000`", shown="inside the store", flag="serve --vectors")
    archive: str | None = _setting(
        "MEMSTRATA_ARCHIVE", "where archival moves old episodes (Parquet files): a directory or "
        "`s3://bucket/prefix?endpoint_override=http://host:9000`", shown="none: episodes stay in the store",
        flag="archive --to")
    embedder: str | None = _setting(
        "MEMSTRATA_EMBEDDER", "`minilm`, `hash`, or an OpenAI-compatible embeddings API: "
        "`openai://?model=text-embedding-3-small`, `openai+http://localhost:11434/v1?model=nomic-embed-text"
        "[&dim=768]`", shown="`minilm` (local)", flag="--embedder")
    embedder_api_key: str | None = _setting(
        "MEMSTRATA_EMBEDDER_API_KEY", "API key for an `openai…://` embedder", secret=True)
    openai_api_key: str | None = _setting(
        "OPENAI_API_KEY", "used for `openai://` embedders (and LLMs) when no memstrata key is set; only ever "
        "sent to api.openai.com", secret=True)
    llm: str | None = _setting(
        "MEMSTRATA_LLM", "LLM extraction: `openai://?model=gpt-4o-mini`, `openai+http://localhost:11434/v1?"
        "model=llama3.1`, `anthropic://?model=claude-3-5-haiku-latest`", shown="none: rules",
        flag="serve --llm")
    llm_api_key: str | None = _setting(
        "MEMSTRATA_LLM_API_KEY", "API key for the LLM (else `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` for their "
        "own hosts)", secret=True)
    conflict_policy: str | None = _setting(
        "MEMSTRATA_CONFLICT_POLICY", f"what a new value does to an old one: {', '.join(CONFLICT_POLICIES)}",
        shown="`latest_wins`", flag="serve --conflict-policy")
    replicas: tuple[str, ...] = _setting(
        "MEMSTRATA_REPLICAS", "PostgreSQL streaming standbys that serve reads, comma-separated `postgresql://…` "
        "URLs (docs/scaling.md)", default=(), shown="none")
    replica_max_lag: float = _setting(
        "MEMSTRATA_REPLICA_MAX_LAG", "seconds a standby may lag behind before its reads go to the primary",
        default=5.0)
    embed_threads: int = _setting(
        "MEMSTRATA_EMBED_THREADS", "ONNX threads per embedding call in the server (concurrent requests fill "
        "the cores)", default=1, used_by="server")
    blas_threads: int = _setting(
        "MEMSTRATA_BLAS_THREADS", "BLAS threads of the process once the local embedder is loaded (`0`: leave "
        "BLAS alone); one keeps retrieval's small products from taking the embedder's cores", default=1)

    # -- encryption at rest (docs/security.md)
    master_key: str | None = _setting(
        "MEMSTRATA_MASTER_KEY", "base64 master key: the store is opened encrypted (docs/security.md)",
        shown="off", secret=True)
    master_key_file: str | None = _setting(
        "MEMSTRATA_MASTER_KEY_FILE", "file holding the master key (used when `MEMSTRATA_MASTER_KEY` is unset)",
        shown="off")

    # -- the server (memstrata serve, the app factory)
    auth: bool = _setting("MEMSTRATA_AUTH", "require an API key (`0`: accept every local request)", default=True,
                          flag="serve --no-auth", used_by="server")
    key_pepper: str | None = _setting(
        "MEMSTRATA_KEY_PEPPER", "server secret mixed into API key hashes; the same wherever keys are made and "
        "checked", used_by="server, keys, mcp", secret=True)
    cors: tuple[str, ...] = _setting("MEMSTRATA_CORS", "allowed browser origins, comma-separated", default=(),
                                     shown="none", flag="serve --cors", used_by="server")
    rate_limit: float = _setting("MEMSTRATA_RATE_LIMIT", "requests per second per key, one budget across the "
                                 "servers on a Redis `MEMSTRATA_CACHE` (else per process); `0` turns it off",
                                 default=50.0, flag="serve --rate-limit", used_by="server")
    rate_burst: int = _setting("MEMSTRATA_RATE_BURST", "rate-limit burst size", default=100, flag="serve --burst",
                               used_by="server")
    max_body_bytes: int = _setting("MEMSTRATA_MAX_BODY_BYTES", "largest request body", default=DEFAULT_MAX_BODY_BYTES,
                                   flag="serve --max-body-bytes", used_by="server")
    allowed_hosts: tuple[str, ...] = _setting(
        "MEMSTRATA_ALLOWED_HOSTS", "accepted `Host` header names, comma-separated", default=(),
        shown="any (`127.0.0.1,localhost` with `--no-auth`)", used_by="server")
    audit: bool = _setting("MEMSTRATA_AUDIT", "write every call to the audit log", default=True,
                           flag="serve --audit/--no-audit", used_by="server")
    threads: int | None = _setting("MEMSTRATA_THREADS", "threads running Memory calls", shown="4 per core",
                                   used_by="server")

    # -- MCP on stdio
    api_key: str | None = _setting("MEMSTRATA_API_KEY", "the API key `memstrata mcp` acts as",
                                   shown="unrestricted local access", flag="mcp --key", used_by="mcp", secret=True)

    def __repr__(self) -> str:
        """Every setting but the secrets, URLs masked."""
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.metadata["secret"]:
                shown.append(f"{f.name}={_masked(value)!r}" if isinstance(value, str) else f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment (``environ``, else the process's), then ``overrides`` (flags) where
        they are not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f, raw.strip())
        return cls(**values).with_flags(**overrides)

    def with_flags(self, **flags: Any) -> Settings:
        """A copy with the given flags applied (None leaves a setting as it is)."""
        unknown = set(flags) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = replace(self, **{k: v for k, v in flags.items() if v is not None})
        settings.check()
        return settings

    def check(self) -> None:
        if self.conflict_policy is not None and self.conflict_policy not in CONFLICT_POLICIES:
            raise ConfigurationError(f"conflict policy: {self.conflict_policy!r} is not one of "
                                     f"{', '.join(CONFLICT_POLICIES)} (MEMSTRATA_CONFLICT_POLICY)")
        if self.replicas and not self.store_url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError("MEMSTRATA_REPLICAS: read replicas need a postgresql:// store (MEMSTRATA_STORE)")

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in another process (a server worker)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.metadata["env"]] = _format(value)
        return out

    def describe(self) -> dict[str, str]:
        """The stack that is configured, secrets left out, for a start-up line."""
        shown = {"store": self.store_url, "embedder": "minilm"}
        for name in ("store", "cache", "vectors", "embedder", "llm", "conflict_policy"):
            value = getattr(self, name)
            if value is not None:
                shown[name] = str(value)
        return {k: _masked(v) for k, v in shown.items()}

    @property
    def store_url(self) -> str:
        return self.store or DEFAULT_STORE

    # -- building what the settings describe -------------------------------------------------------

    def key_provider(self) -> Any:
        """The master key as a ``LocalKeyProvider``; None when encryption is not configured."""
        from memstrata.privacy.crypto import LocalKeyProvider, decode_master_key

        if self.master_key:
            return LocalKeyProvider(decode_master_key(self.master_key, "MEMSTRATA_MASTER_KEY"))
        if self.master_key_file:
            return LocalKeyProvider.from_file(self.master_key_file)
        return None

    def open_memory(self, *, actor: str = "cli", audit: bool = False, embedder_threads: int | None = None) -> Any:
        """A Memory over the configured stack: encrypted when a master key is set, plain otherwise (and never
        a plain Memory over an encrypted store), audited when ``audit``."""
        from memstrata.secure import secure_memory

        provider = self.key_provider()
        return secure_memory(self.store_url, key_provider=provider, encrypt=provider is not None, audit=audit,
                             actor=actor, store_options=self.store_options(),
                             **self.memory_options(embedder_threads=embedder_threads))

    def memory_options(self, *, embedder_threads: int | None = None) -> dict[str, Any]:
        """Keyword arguments for ``Memory`` / ``secure_memory``: the engines and providers, built."""
        options: dict[str, Any] = {"embedder": self.build_embedder(embedder_threads)}
        if self.cache:
            options["cache"] = self.cache
        layers = self.layers()
        if layers is not None:
            options["cache_layers"] = layers
        if self.vectors:
            options["vectors"] = self.vectors
        if self.archive:
            options["archive"] = self.archive
        if self.llm or self.conflict_policy:
            options["ingest"] = IngestConfig(mode="llm" if self.llm else "rules",
                                             conflict_policy=self.conflict_policy or "latest_wins")
        if self.llm:
            from memstrata.ingest.llm_extract import LLMExtractor
            from memstrata.providers.llm import llm_from_url

            options["extractor"] = LLMExtractor(llm_from_url(self.llm, api_key=self.llm_api_key))
        return options

    def layers(self) -> CacheLayers | None:
        """The layered read cache, on the Redis of ``cache_layers_url`` or else of ``cache``; None when it is off
        or there is no Redis (a Memory then keeps its query vectors in process)."""
        url = self.cache_layers_url or self.cache
        if not self.cache_layers or not url:
            return None
        for env, ttl in (("MEMSTRATA_QUERY_VECTOR_TTL", self.query_vector_ttl),
                         ("MEMSTRATA_SCOPE_CACHE_TTL", self.scope_cache_ttl)):
            if not ttl > 0:
                raise ConfigurationError(f"{env}: must be a positive number of seconds, got {ttl!r}")
        return CacheLayers(url=url, scopes=self.scope_cache, query_ttl=self.query_vector_ttl,
                           scope_ttl=self.scope_cache_ttl)

    def store_options(self) -> dict[str, Any]:
        """The store's own keyword arguments: its read replicas, when there are any."""
        if not self.replicas:
            return {}
        return {"replicas": list(self.replicas), "replica_max_lag": self.replica_max_lag}

    def build_embedder(self, threads: int | None = None) -> Any:
        """``minilm`` (default), ``hash``, or an OpenAI-compatible embeddings API by URL:
        ``openai://?model=text-embedding-3-small`` or ``openai+http://localhost:11434/v1?model=nomic-embed-text``
        (``&dim=`` skips the probe request)."""
        spec = self.embedder
        if spec in (None, "minilm"):
            from memstrata.providers.embedders import MiniLMEmbedder, default_embedder

            if threads or self.blas_threads != 1:
                return MiniLMEmbedder(threads=threads, blas_threads=self.blas_threads)
            return default_embedder()
        if "://" not in spec:
            from memstrata.providers.embedders import resolve_embedder

            return resolve_embedder(spec)
        return _openai_embedder(spec, self.embedder_api_key, self.openai_api_key)


@cache
def _types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _parse(f: Field[Any], raw: str) -> Any:
    """A variable's text as the field's type; a bad value names its variable."""
    kind, env = _types()[f.name], f.metadata["env"]
    try:
        if kind is bool:
            if raw.lower() in _FALSE:
                return False
            if raw.lower() in _TRUE:
                return True
            raise ValueError
        if kind is int or kind == (int | None):
            return int(raw)
        if kind is float:
            return float(raw)
        if kind == tuple[str, ...]:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigurationError(f"{env}: {raw!r} is not {type_name(f)}") from None
    return raw


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def type_name(f: Field[Any]) -> str:
    """The field's type in words, for errors and docs/configuration.md."""
    kind = _types()[f.name]
    if kind is bool:
        return "a boolean (1/0, true/false)"
    if kind is int or kind == (int | None):
        return "a whole number"
    if kind is float:
        return "a number"
    if kind == tuple[str, ...]:
        return "a comma-separated list"
    return "text"


def default_text(f: Field[Any]) -> str:
    """The default as docs/configuration.md shows it."""
    if f.metadata["shown"]:
        return str(f.metadata["shown"])
    default = f.default if f.default is not MISSING else None
    if default is None:
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"`{_format(default)}`"


def _openai_embedder(url: str, api_key: str | None, openai_key: str | None) -> Any:
    from memstrata.providers.embedders import OpenAIEmbedder

    parts = urlsplit(url)
    provider, _, transport = parts.scheme.lower().partition("+")
    if provider != "openai" or transport not in ("", "http", "https"):
        raise ConfigurationError(f"embedder: {_masked(url)!r} is not 'minilm', 'hash' or an "
                                 "openai[+http|+https]://...?model=NAME URL")
    options = dict(parse_qsl(parts.query))
    model = options.pop("model", None)
    if not model:
        raise ConfigurationError(f"embedder: {_masked(url)!r} names no model (add ?model=NAME)")
    dim = options.pop("dim", None)
    if options:
        raise ConfigurationError(f"embedder: unknown URL parameters {', '.join(sorted(options))}")
    if transport:
        base = urlunsplit((transport, parts.netloc, parts.path, "", ""))
    else:
        base = "https://api.openai.com/v1"
        api_key = api_key or openai_key  # only ever sent to OpenAI itself
    try:
        size = int(dim) if dim else None
    except ValueError:
        raise ConfigurationError(f"embedder: dim={dim!r} is not a number") from None
    return OpenAIEmbedder(base, model, api_key=api_key, dim=size)


def _masked(value: str) -> str:
    """A URL with any password and key-like query values hidden (the rest of it as written)."""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    masked = value
    if parts.password:
        masked = masked.replace(f":{parts.password}@", ":***@", 1)
    if parts.query:
        query = urlencode([(k, "***" if "key" in k.lower() or "token" in k.lower() else v)
                           for k, v in parse_qsl(parts.query)], safe="*:/")
        masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
    return masked


def render_table() -> str:
    """docs/configuration.md: every setting in one table, rendered from ``Settings``."""
    lines = [
        "# Configuration",
        "",
        "<!-- Rendered from memstrata.settings.Settings by `memstrata docs config -o docs/configuration.md`;",
        "     tests/test_docs_drift.py fails when it is out of date. -->",
        "",
        "The CLI, `memstrata serve` (and the app factory its workers run) and `memstrata mcp` read these",
        "variables once, when they start, into one `memstrata.settings.Settings`; a flag wins over its variable,",
        "which wins over the default. Secrets are never printed (the start-up line masks URLs).",
        "",
        "The library takes explicit arguments instead (`Memory(...)`, `secure_memory(...)`, `create_app(...)`,",
        "`MiniLMEmbedder(blas_threads=...)`), with three documented fallbacks: `Memory()` without a store opens",
        "`MEMSTRATA_STORE` (else the default file); `secure_memory()` without a key reads `MEMSTRATA_MASTER_KEY` /",
        "`MEMSTRATA_MASTER_KEY_FILE`; an `openai://` or `anthropic://` LLM without a key uses `OPENAI_API_KEY` /",
        "`ANTHROPIC_API_KEY`, and only for that vendor's own host.",
        "",
        "| variable | type | default | flag | used by | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for f in fields(Settings):
        m = f.metadata
        flag = f"`{m['flag']}`" if m["flag"] else "—"
        secret = " (secret)" if m["secret"] else ""
        lines.append(f"| `{m['env']}` | {type_name(f)} | {default_text(f)} | {flag} | {m['used_by']} | "
                     f"{m['help']}{secret} |")
    lines += [
        "",
        "`memstrata serve` hands its settings to its worker processes as these variables, in the environment",
        "of the process it starts. The full command reference is [cli.md](cli.md).",
        "",
    ]
    return "\n".join(lines)


__all__ = ["Settings", "render_table"]
