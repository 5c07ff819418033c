"""memstrata: long-term memory for AI agents.

Remembers what matters, finds it again inside a token budget, keeps history when facts change,
and forgets when asked. ``Memory`` runs embedded on SQLite with no server and no LLM.
"""

from memstrata.aio import AsyncMemory
from memstrata.config import IngestConfig
from memstrata.errors import (
    AccessDeniedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidInputError,
    MemstrataError,
    NotFoundError,
    ProviderError,
    ScopeError,
)
from memstrata.memory import Memory
from memstrata.providers.embedders import HashEmbedder, MiniLMEmbedder, OpenAIEmbedder

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AsyncMemory",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "HashEmbedder",
    "IngestConfig",
    "InvalidInputError",
    "Memory",
    "MemstrataError",
    "MiniLMEmbedder",
    "NotFoundError",
    "OpenAIEmbedder",
    "ProviderError",
    "ScopeError",
    "__version__",
]
