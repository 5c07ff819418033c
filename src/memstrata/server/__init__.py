"""The REST server (FastAPI): ``create_app(memory)``; ``memstrata serve`` runs it under uvicorn."""

from memstrata.server.app import create_app, openapi_document
from memstrata.server.auth import RateLimit

__all__ = ["RateLimit", "create_app", "openapi_document"]
