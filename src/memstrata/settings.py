"""Settings for the faces that start from a command line: the CLI, ``memstrata serve`` (and its workers) and
``memstrata mcp``. Flags win over ``MEMSTRATA_*`` environment variables, which win over the defaults. The
library itself never reads this module: ``Memory(...)`` takes explicit arguments.

| setting | flag (serve) | environment | default |
|---|---|---|---|
| store | ``--store`` | ``MEMSTRATA_STORE`` | ``sqlite:///~/.memstrata/memory.db`` |
| cache | ``--cache`` | ``MEMSTRATA_CACHE`` | in-process |
| vectors | ``--vectors`` | ``MEMSTRATA_VECTORS`` | in the store |
| embedder | ``--embedder`` | ``MEMSTRATA_EMBEDDER`` (+ ``MEMSTRATA_EMBEDDER_API_KEY``) | ``minilm`` |
| llm | ``--llm`` | ``MEMSTRATA_LLM`` (+ ``MEMSTRATA_LLM_API_KEY``) | none (rules) |
| conflict policy | ``--conflict-policy`` | ``MEMSTRATA_CONFLICT_POLICY`` | ``latest_wins`` |

docs/server.md has the full table, server options included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from memstrata.config import CONFLICT_POLICIES, IngestConfig
from memstrata.errors import ConfigurationError

_ENV = {
    "store": "MEMSTRATA_STORE",
    "cache": "MEMSTRATA_CACHE",
    "vectors": "MEMSTRATA_VECTORS",
    "embedder": "MEMSTRATA_EMBEDDER",
    "embedder_api_key": "MEMSTRATA_EMBEDDER_API_KEY",
    "llm": "MEMSTRATA_LLM",
    "llm_api_key": "MEMSTRATA_LLM_API_KEY",
    "conflict_policy": "MEMSTRATA_CONFLICT_POLICY",
}
_SECRETS = frozenset({"embedder_api_key", "llm_api_key"})


@dataclass(frozen=True)
class StackSettings:
    """What a Memory is built from: the store and every optional engine and provider."""

    store: str | None = None
    cache: str | None = None
    vectors: str | None = None
    embedder: str | None = None
    embedder_api_key: str | None = field(default=None, repr=False)
    llm: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    conflict_policy: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: str | None) -> StackSettings:
        """Settings from ``MEMSTRATA_*`` variables, then ``overrides`` (flags) where they are not None."""
        env = os.environ if environ is None else environ
        values = {name: env.get(var) or None for name, var in _ENV.items()}
        unknown = set(overrides) - set(values)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def with_flags(self, **flags: str | None) -> StackSettings:
        """A copy with the given flags applied (None leaves a setting as it is)."""
        settings = replace(self, **{k: v for k, v in flags.items() if v is not None})
        settings.check()
        return settings

    def check(self) -> None:
        if self.conflict_policy is not None and self.conflict_policy not in CONFLICT_POLICIES:
            raise ConfigurationError(f"conflict policy: {self.conflict_policy!r} is not one of "
                                     f"{', '.join(CONFLICT_POLICIES)} ({_ENV['conflict_policy']})")

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in another process (a server worker)."""
        return {_ENV[f.name]: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}

    def describe(self) -> dict[str, str]:
        """What is configured, secrets left out, for a start-up line."""
        from memstrata.config import default_store_url

        shown = {"store": default_store_url(), "embedder": "minilm"}
        shown.update({f.name: str(getattr(self, f.name)) for f in fields(self)
                      if getattr(self, f.name) is not None and f.name not in _SECRETS})
        return {k: _masked(v) for k, v in shown.items()}

    def memory_options(self, *, embedder_threads: int | None = None) -> dict[str, Any]:
        """Keyword arguments for ``Memory`` / ``secure_memory``: the engines and providers, built."""
        options: dict[str, Any] = {"embedder": self.build_embedder(embedder_threads)}
        if self.cache:
            options["cache"] = self.cache
        if self.vectors:
            options["vectors"] = self.vectors
        if self.llm or self.conflict_policy:
            options["ingest"] = IngestConfig(mode="llm" if self.llm else "rules",
                                             conflict_policy=self.conflict_policy or "latest_wins")
        if self.llm:
            from memstrata.ingest.llm_extract import LLMExtractor
            from memstrata.providers.llm import llm_from_url

            options["extractor"] = LLMExtractor(llm_from_url(self.llm, api_key=self.llm_api_key))
        return options

    def build_embedder(self, threads: int | None = None) -> Any:
        """``minilm`` (default), ``hash``, or an OpenAI-compatible embeddings API by URL:
        ``openai://?model=text-embedding-3-small`` or ``openai+http://localhost:11434/v1?model=nomic-embed-text``
        (``&dim=`` skips the probe request)."""
        spec = self.embedder
        if spec in (None, "minilm"):
            from memstrata.providers.embedders import MiniLMEmbedder, default_embedder

            return MiniLMEmbedder(threads=threads) if threads else default_embedder()
        if "://" not in spec:
            from memstrata.providers.embedders import resolve_embedder

            return resolve_embedder(spec)
        return _openai_embedder(spec, self.embedder_api_key)


def _openai_embedder(url: str, api_key: str | None) -> Any:
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
        api_key = api_key or os.environ.get("OPENAI_API_KEY")  # only ever sent to OpenAI itself
    try:
        size = int(dim) if dim else None
    except ValueError:
        raise ConfigurationError(f"embedder: dim={dim!r} is not a number") from None
    return OpenAIEmbedder(base, model, api_key=api_key, dim=size)


def _masked(value: str) -> str:
    """A URL with any password and key-like query values hidden."""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = urlencode([(k, "***" if "key" in k.lower() or "token" in k.lower() else v)
                       for k, v in parse_qsl(parts.query)], safe="*:/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


__all__ = ["StackSettings"]
