"""The browser UI at ``/ui``: browse and search memories, their history, conflicts, the graph and the audit log."""

from memstrata.ui.routes import router

__all__ = ["router"]
