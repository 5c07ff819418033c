"""Checks a caller can run on messages and metadata before handing them over, with the same errors
``Memory.add`` raises (a face that writes a batch checks every item first, so none is half-written)."""

from __future__ import annotations

from typing import Any

from memstrata.core.validate import check_metadata
from memstrata.ingest.messages import normalize_messages


def check_message(message: Any, metadata: Any = None) -> None:
    """Raise InvalidInputError naming the field when ``message`` or ``metadata`` would be refused by add."""
    normalize_messages([message])
    check_metadata(metadata)
