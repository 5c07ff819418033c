"""Named retrieval presets. Each is a measured trade-off; ``balanced`` is the default (bench/RESULTS.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from memstrata.errors import InvalidInputError


@dataclass(frozen=True)
class Preset:
    name: str
    dense_k: int = 100  # candidates from kNN
    keyword_k: int = 100  # candidates from BM25
    fusion: str = "linear"  # "linear" (min-max normalised scores) or "rrf" (reciprocal rank)
    rrf_k: float = 60.0
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    entity_weight: float = 0.5
    entity_k: int = 30
    temporal_weight: float = 1.0  # boost for event time inside the query's time window
    recency_weight: float = 0.05  # boost for recently created or used memories
    recency_half_life_days: float = 30.0
    dedup_threshold: float = 0.97  # cosine above which two results are one
    mmr_lambda: float | None = None  # None: no MMR; else relevance/diversity balance
    expand_entities: bool = True
    neighbour_weight: float = 0.0  # share of an adjacent turn's score a memory borrows
    speaker_weight: float = 0.5  # what a person named in the query said scores ×(1 + this); 0: off
    # A long message's dense score moves this share of the way up to its best sentence's cosine (stored at
    # ingest, so no embedding at query time): an aside inside a message about something else is found.
    # 0: windows only.
    sentence_weight: float = 0.5
    # Standing instructions and preferences score ×(1 + this) when the query asks what the user prefers or
    # asked for (memstrata.retrieve.standing); 0: off.
    standing_weight: float = 0.5
    # A pleasantry (importance below memstrata.core.salience.LOW_IMPORTANCE: an assistant turn with nothing of
    # its own) scores ×this unless the query asks what the assistant said; 1: off.
    pleasantry_weight: float = 0.2
    # Of two statements of the user's that answer the query with different values, the later one is placed
    # just above the earlier (memstrata.retrieve.revisions); False: rank by score alone.
    newer_first: bool = True
    # The first results of a question about the user now are put in order by a small fitted model over what
    # the stages above recorded (memstrata.retrieve.head_order); False: by score.
    head_order: bool = True


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        "fast", dense_k=40, keyword_k=0, entity_weight=0.0, expand_entities=False, dedup_threshold=1.01
    ),
    "balanced": Preset("balanced"),
    "thorough": Preset("thorough", dense_k=200, keyword_k=200, entity_k=60, mmr_lambda=0.85),
}
DEFAULT_PRESET = "balanced"


def get_preset(name: str | Preset | None, **overrides: object) -> Preset:
    if isinstance(name, Preset):
        preset = name
    else:
        key = name or DEFAULT_PRESET
        if key not in PRESETS:
            raise InvalidInputError("preset", f"unknown preset {key!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[key]
    return replace(preset, **overrides) if overrides else preset  # type: ignore[arg-type]
