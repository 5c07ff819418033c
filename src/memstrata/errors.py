"""memstrata's exception tree.

    MemstrataError
    ├── ConfigurationError            bad settings, unknown backend URL, missing optional extra
    ├── InvalidInputError (ValueError) bad argument: names the field and the problem
    │   └── ScopeError                 missing or malformed user/agent/run/org id
    ├── NotFoundError (KeyError)       no such memory / episode / conflict in this scope
    ├── AccessDeniedError              an API key lacks the scope or binding for the call
    ├── BackendError                   a storage engine failed
    │   └── BackendUnavailableError    it cannot be reached (after bounded retries)
    └── ProviderError                  an embedder or LLM provider failed
        ├── ProviderTimeoutError
        ├── RateLimitedError
        └── ProviderResponseError      the provider answered something unusable

Every message names the offending field or component so a caller can act on it.
"""

from __future__ import annotations


class MemstrataError(Exception):
    """Root of every error memstrata raises on purpose."""


class ConfigurationError(MemstrataError):
    """Settings are wrong or an optional dependency is missing."""


class InvalidInputError(MemstrataError, ValueError):
    """An argument is malformed; ``field`` names which one."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ScopeError(InvalidInputError):
    """A scope id (org, user, agent, run, conversation) is missing or malformed."""


class NotFoundError(MemstrataError, KeyError):
    """The requested object does not exist in the caller's scope."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return f"{self.kind} {self.ident!r} not found"


class AccessDeniedError(MemstrataError):
    """The caller's key does not allow this operation on this scope."""


class BackendError(MemstrataError):
    """A storage backend failed while serving a request."""


class BackendUnavailableError(BackendError):
    """A storage backend cannot be reached."""


class ProviderError(MemstrataError):
    """An embedding or LLM provider failed."""


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time."""


class RateLimitedError(ProviderError):
    """The provider refused the call for rate limiting (HTTP 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ProviderResponseError(ProviderError):
    """The provider answered, but the answer cannot be used (bad status, bad JSON, schema mismatch)."""
