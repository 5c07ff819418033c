"""Updates found by attribute template: the user's statement that sets the same attribute to another value.

A statement no attribute family settles ("Our joint account is with Starling") is compared with the user's
current statements nearest to it, by what they say and by their template (the statement with its values
masked, :mod:`memstrata.ingest.templates`): "our joint account is with [X]" sets one attribute whatever the
bank is called. The nearest statement that gives a value decides. Scored at least :data:`SAME_ATTRIBUTE`, it
is replaced when the new statement gives a value it does not hold and it gives one the new statement does not
hold (or the new statement says it changed: "Dropped spanish, doing italian now"), or when the new statement
ends what it names ("Sold the Fiesta"); a repeat of its value replaces nothing. Only the user's own definite
statements replace, and only the user's own statements are replaced: questions, wishes, suppositions, other
people's facts and one-off happenings take no part. A change said as such ("now", "switched", "these days")
is explicit; any other replacement is recorded as a conflict. Switched on by
``IngestConfig(template_updates=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from memstrata.ingest.candidate import Candidate
from memstrata.ingest.evidence import EVIDENCE_KIND
from memstrata.ingest.revise import SHORT_MESSAGE_WORDS, Replacement, _says_how_things_were
from memstrata.ingest.templates import TEMPLATE_VECTORS, Template, templates
from memstrata.ingest.updates import (
    Decision,
    attribute_of,
    ends_it,
    has_change_cue,
    is_tentative,
    reports_event,
    subject_of,
)
from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import Store

Embed = Callable[[list[str]], np.ndarray]

NEAREST_K = 8  # statements looked at, by what the new one says and by its template (each)
TEMPLATE_WEIGHT = 0.3  # the template's share of the score; the rest is the statements' own closeness
SAME_ATTRIBUTE = 0.45  # a score this high: the two statements set one attribute
ENDS_SCORE = 0.4  # a statement ending what the old one names, this close


def find_by_template(store: Store, scope: Scope, cand: Candidate, embed: Embed, episode_ids: Sequence[str] = (),
                     speaker: str | None = None, message: str = "") -> list[Replacement]:
    """The user's current statement ``cand`` gives a new value (at most one), found by attribute template."""
    text = cand.text
    people = [e.canonical for e in cand.entities if e.label == "PERSON"]
    if (is_tentative(text) or "(in reply to:" in text or subject_of(text, None, people) != "user"
            or reports_event(text) or _says_how_things_were(text) or len(text.split()) < 2):
        return []
    cue = has_change_cue(text) or has_change_cue(message)
    if _keyed(text, None) and not cue:
        return []  # "I love sushi", then "I love ramen": a keyed attribute holds several values
    new_tpl = templates([text])[0]
    if new_tpl.someone_else:
        return []
    raw_vec, tpl_vec = TEMPLATE_VECTORS(embed, [text, new_tpl.text])
    near = list(dict.fromkeys([i for v in (raw_vec, tpl_vec) for i, _ in store.vector_search(scope, v, NEAREST_K)]))
    recs = {r.id: r for r in store.get_memories(scope, near)}
    pool = [recs[i] for i in near if i in recs and recs[i].current and recs[i].source_role in (None, "user")
            and not set(recs[i].episode_ids) & set(episode_ids)]
    with_facts = {e for r in pool if r.kind != EVIDENCE_KIND for e in r.episode_ids}
    olds: list[MemoryRecord] = []
    for rec in pool:
        if rec.kind == EVIDENCE_KIND and (set(rec.episode_ids) & with_facts or "(in reply to:" in rec.text
                                          or len(rec.text.split()) > SHORT_MESSAGE_WORDS):
            continue  # a message that gave facts is replaced through them
        # the names a statement mentions are not all people ("Broadband"): its parse says whose it is
        owner = subject_of(rec.text, rec.slot[0] if rec.slot else None)
        if owner != "user" or is_tentative(rec.text) or reports_event(rec.text):
            continue
        olds.append(rec)
    if speaker is not None and olds:
        said_by = {e.id: e.name for e in store.get_episodes(scope, [e for m in olds for e in m.episode_ids])}
        olds = [m for m in olds if any(said_by.get(e) == speaker for e in m.episode_ids)]
    if not olds:
        return []
    old_tpls = templates([r.text for r in olds])
    kept = [(r, t) for r, t in zip(olds, old_tpls, strict=True) if not t.someone_else]
    if not kept:
        return []
    olds, old_tpls = [r for r, _ in kept], [t for _, t in kept]
    vecs = TEMPLATE_VECTORS(embed, [t for r, tpl in zip(olds, old_tpls, strict=True) for t in (r.text, tpl.text)])
    scored: list[tuple[float, MemoryRecord, Template, float, float]] = []
    for n, (rec, tpl) in enumerate(zip(olds, old_tpls, strict=True)):
        raw, frame = float(np.dot(raw_vec, vecs[2 * n])), float(np.dot(tpl_vec, vecs[2 * n + 1]))
        scored.append(((1 - TEMPLATE_WEIGHT) * raw + TEMPLATE_WEIGHT * frame, rec, tpl, raw, frame))
    scored.sort(key=lambda s: -s[0])
    for score, rec, tpl, _, _ in scored:  # the nearest statement that gives a value decides
        if not tpl.values:
            continue
        ending = ends_it(text, rec.text)
        if score < (ENDS_SCORE if ending else SAME_ATTRIBUTE):
            return []
        if ending:
            break
        if not any(v not in rec.text.lower() for v in new_tpl.values if len(v) > 1):
            return []  # it already holds the new value: a repeat
        if _keyed(rec.text, rec.slot) and not cue or not other_value(text, new_tpl, rec.text, tpl):
            return []
        break
    else:
        return []
    explicit = ending or cue
    return [Replacement(rec, Decision(True, explicit, "says it ended" if ending else "same attribute, another value"))]


def other_value(new_text: str, new_tpl: Template, old_text: str, old_tpl: Template) -> bool:
    """Does the new statement give a value the old one does not hold, and the old one a value the new one does
    not hold unless the new one says it changed ("I bank with Barclays" / "All my money sits with Chase UK")?"""
    new_low, old_low = new_text.lower(), old_text.lower()
    fresh = [v for v in new_tpl.values if len(v) > 1 and v not in old_low]
    if not fresh or not old_tpl.values:
        return False
    if all(_numeric(v) for v in fresh) and not any(_numeric(v) for v in old_tpl.values):
        return False  # only a number where the old gives none: "3 cats now" leaves the cats' names
    # "Dropped spanish, doing italian now" names the old value as it puts it aside
    return has_change_cue(new_text) or any(v not in new_low for v in old_tpl.values if len(v) > 1)


_NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
                          "hundred thousand half dozen once twice".split())


def _numeric(value: str) -> bool:
    return any(ch.isdigit() for ch in value) or any(w in _NUMBER_WORDS for w in value.split())


def _keyed(text: str, slot: tuple[str, str, str] | None) -> bool:
    """Does the statement set an attribute that holds several values at once (named by its words)?"""
    attr = attribute_of(text, slot[0] if slot else None, slot[1] if slot else None)
    return attr is not None and bool(attr.family) and not attr.single

