"""How much a memory's importance counts in ranking: pleasantries weigh little unless asked for.

Ingest stores an assistant message that says nothing of its own ("Exciting! Where are you moving to?",
"Congratulations on the move"), and a user's bare "Thanks!" that answers no question, as evidence with
``PHATIC_IMPORTANCE`` (``memstrata.ingest.phatic``). Ranking multiplies the score of a memory below
``LOW_IMPORTANCE`` by the preset's ``pleasantry_weight`` and ``context`` leaves it out, except when the query
asks what the assistant said, suggested or asked (``asks_assistant``): then it counts in full. Every other
memory (evidence at 0.3, facts at 0.5 and more, verbatim messages at 1.0) is untouched.
"""

from __future__ import annotations

import re

PHATIC_IMPORTANCE = 0.05
LOW_IMPORTANCE = 0.1

_ASKS_ASSISTANT = re.compile(
    r"\b(?:did|have|had)\s+you\s+(?:\w+\s+)?(?:say|tell|suggest|recommend|mention|ask|reply|answer|respond|write|"
    r"advise|propose|offer|think)\b|"
    r"\byou\s+(?:\w+\s+)?(?:said|told|suggested|recommended|mentioned|asked|replied|answered|responded|wrote|"
    r"advised|proposed|offered|thought)\b|"
    r"\byour\s+(?:answer|reply|response|suggestion|advice|recommendation|message|words|question|idea|tip)s?\b|"
    r"\b(?:the\s+)?assistant\b",
    re.IGNORECASE,
)


def asks_assistant(query: str) -> bool:
    """The query asks what the assistant said, suggested or asked ("What did you say about my move?")."""
    return bool(_ASKS_ASSISTANT.search(query))
