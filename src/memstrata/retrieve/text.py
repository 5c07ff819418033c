"""Query words for keyword search: lower-cased word tokens without English function words."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Function words carry no topic; in a full-text OR query they match nearly every row and cost the most.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves s t don doesn didn
    isn wasn aren weren hasn haven hadn won wouldn shouldn couldn ll re ve d m o y also ever let lets tell said say
    says get got know think like really one""".split()
)


def query_terms(text: str, max_terms: int = 32) -> list[str]:
    """Distinct content words of a query in order; all words if every one is a stopword."""
    words = list(dict.fromkeys(_WORD.findall(text.lower())))
    content = [w for w in words if w not in STOPWORDS]
    return (content or words)[:max_terms]
