"""Which current facts a new statement replaces, found through the store (tier contract reads only).

The old facts come from two places: facts of the same attribute family (stored as their slot attribute) and
the nearest current facts by vector. A fact's family is checked against its meaning before it is stored
(:func:`refine_attributes`), and read from its stored vector when it has none.
:func:`memstrata.ingest.updates.decide` judges each pair. A statement that no family settles may still
replace the user's nearest statement of the same frame when it gives another number or name
(:func:`find_reframed`); a message that gave no fact is read the same way. The evidence an old fact came
from is closed with it when the fact was (nearly) all it said, or the only fact of a short message; a longer
message stays current as the record of what was said.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from memstrata.ingest.candidate import Candidate, Message, Slot
from memstrata.ingest.conflicts import normalize_value, same_subject, without_reply_note
from memstrata.ingest.dedup import normalize_text, normalized_hash
from memstrata.ingest.evidence import EVIDENCE_IMPORTANCE, EVIDENCE_KIND
from memstrata.ingest.named_old import by_named_value
from memstrata.ingest.prototypes import family_by_meaning, family_scores, fits
from memstrata.ingest.updates import (
    Attribute,
    Decision,
    attribute_of,
    attributes_in,
    content_words,
    decide,
    ends_it,
    family_of,
    gives_other_value,
    has_change_cue,
    is_tentative,
    names_differ,
    own_attribute,
    people_named,
    reports_event,
    single_valued,
    states_value,
    subject_of,
)
from memstrata.models import MemoryRecord, Scope
from memstrata.tiers.base import Store

NEAREST_K = 5


@dataclass
class Replacement:
    old: MemoryRecord
    decision: Decision


Embed = Callable[[list[str]], np.ndarray]


def attribute_of_record(rec: MemoryRecord, vec: np.ndarray | None = None, embed: Embed | None = None
                        ) -> Attribute | None:
    """The attribute a stored user fact sets: its slot or its words, else (given its vector) its meaning."""
    if rec.kind == EVIDENCE_KIND or rec.source_role not in (None, "user"):
        return None
    if rec.slot is None:
        found = attribute_of(rec.text, people=people_named(rec.entities))
        return found if found and fits(vec, embed, found.family) else _by_meaning(rec.text, vec, embed,
                                                                                  people_named(rec.entities))
    found = attribute_of(rec.text, rec.slot[0], rec.slot[1], people_named(rec.entities))
    return found if found and fits(vec, embed, found.family) else _by_meaning(rec.text, vec, embed,
                                                                              people_named(rec.entities))


def _by_meaning(text: str, vec: np.ndarray | None, embed: Embed | None, people: Sequence[str]) -> Attribute | None:
    family = family_by_meaning(vec, embed)
    return Attribute(subject_of(text, None, people), family, single_valued(family)) if family else None


def _shared_family(new: Attribute, new_meaning: str | None, old: Attribute, old_meaning: str | None
                   ) -> tuple[Attribute, Attribute]:
    """Words and meaning may name different families for one statement ("a physics teacher at a charter
    school": studies by its words, a job by its meaning). Two statements set the same attribute when any
    family of one is a family of the other; both are then judged as that family."""
    if new.family == old.family:
        return new, old
    for family in (f for f in (new.family, new_meaning) if f):
        if family in (old.family, old_meaning):
            single = single_valued(family)
            return Attribute(new.subject, family, single), Attribute(old.subject, family, single)
    return new, old


def find_replaced(store: Store, scope: Scope, cand: Candidate, vec: np.ndarray, role: str | None,
                  family_olds: Sequence[MemoryRecord], episode_ids: Sequence[str] = (),
                  message: str = "", speaker: str | None = None, embed: Embed | None = None,
                  reframe: bool = False) -> list[Replacement]:
    """Current facts that ``cand`` replaces. Only the user's own, definite statements replace anything,
    and only facts of the same subject; when messages carry speaker names (several people talking as
    users), only facts the same speaker stated. ``embed`` (the store's embedder) lets a statement's meaning
    name its attribute where its words do not. A statement whose attribute (if any) is one-valued and that
    replaced nothing of its family may still replace its nearest fact (:func:`find_reframed`) when
    ``reframe`` is on."""
    if role not in (None, "user") or cand.kind == EVIDENCE_KIND or is_tentative(cand.text):
        return []
    found, attr = _by_attribute(store, scope, cand, vec, family_olds, episode_ids, message, speaker, embed)
    if not found and speaker is None:  # "I switched from Octopus to OVO": the old value is named
        found = [Replacement(old, d) for old, d in by_named_value(
            store, scope, cand.text, vec, episode_ids, [e.canonical for e in cand.entities])]
    if found or not reframe or attr is not None and attr.family and not attr.single:
        return found  # a keyed family ("I love sushi", "I love ramen") holds several values
    return find_reframed(store, scope, cand.text, vec, episode_ids, speaker,
                         [e.canonical for e in cand.entities if e.label == "PERSON"])


def _by_attribute(store: Store, scope: Scope, cand: Candidate, vec: np.ndarray,
                  family_olds: Sequence[MemoryRecord], episode_ids: Sequence[str], message: str,
                  speaker: str | None, embed: Embed | None) -> tuple[list[Replacement], Attribute | None]:
    """Replacements judged by the attribute ``cand`` sets, and that attribute (None when it names none)."""
    people = [e.canonical for e in cand.entities]
    meaning = family_by_meaning(vec, embed)
    attr: Attribute | None
    attr = attribute_of(cand.text, cand.slot.subject, cand.slot.attribute) if cand.slot is not None else None
    if attr is not None and not fits(vec, embed, attr.family):
        attr = None  # its words named a family its meaning is far from
    if attr is not None:
        pass
    elif meaning is not None:
        attr = Attribute(subject_of(cand.text, None, people), meaning, single_valued(meaning))
        family_olds = [*family_olds, *(m for a in attributes_in(meaning) for m in store.find_by_slot(scope, None, a))]
    elif has_change_cue(cand.text):  # no attribute, but it says something changed: only close facts qualify
        attr = Attribute(subject_of(cand.text, None, people), "", False)
    else:
        return [], None
    pool: dict[str, MemoryRecord] = {m.id: m for m in family_olds if m.current and m.kind != EVIDENCE_KIND}
    if not attr.single or meaning is not None or has_change_cue(cand.text) or has_change_cue(message):
        # Keyed families, stated changes and statements whose meaning names an attribute also look among
        # the nearest facts; an unmarked one-valued statement only meets the facts of its own family.
        missing = [i for i, _ in store.vector_search(scope, vec, NEAREST_K) if i not in pool]
        for rec in store.get_memories(scope, missing):
            if rec.current and rec.kind != EVIDENCE_KIND:
                pool[rec.id] = rec
    if not pool:
        return [], attr
    if speaker is not None:
        said_by = {e.id: e.name for e in store.get_episodes(scope, [e for m in pool.values() for e in m.episode_ids])}
        pool = {i: m for i, m in pool.items() if any(said_by.get(e) == speaker for e in m.episode_ids)}
        if not pool:
            return [], attr
    vectors = store.vectors(scope, list(pool))
    out: list[Replacement] = []
    value = normalize_value(cand.slot.value) if cand.slot else None
    for rec in pool.values():
        old_vec = vectors.get(rec.id)
        old_attr = attribute_of_record(rec, old_vec, embed)
        if old_attr is None or not _same_thing(old_attr.subject, attr.subject):
            continue
        new_attr, old_attr = _shared_family(attr, meaning, old_attr, family_by_meaning(old_vec, embed))
        cosine = float(np.dot(vec, old_vec)) if old_vec is not None else 0.0
        same_value = (rec.slot is not None and normalize_value(rec.slot[2]) == value
                      and not names_differ(cand.text, rec.text))  # "data analyst" at Spotify, then at Klarna
        if set(rec.episode_ids) & set(episode_ids):
            continue  # one message does not replace itself
        d = decide(cand.text, new_attr, rec.text, old_attr, cosine, same_value=same_value, message=message)
        if d.replaces:
            out.append(Replacement(rec, d))
    return out, attr


FRAME_COSINE = 0.5  # a statement this close to the user's nearest fact says the same thing about them
FRAME_WORDS = 4  # ... and both have at least this many words
ENDS_COSINE = 0.35  # a statement ending what the nearest one names ("gave up the season ticket") this close


def find_reframed(store: Store, scope: Scope, text: str, vec: np.ndarray, episode_ids: Sequence[str] = (),
                  speaker: str | None = None, people: Sequence[str] = ()) -> list[Replacement]:
    """The family-free update: the user's nearest current statement (by vector, this scope), when it is
    close enough to share the new statement's frame and the new statement gives another value of the kind
    it gives (a number for a number, a name for a name): "Aldi opened round the corner so that's my
    supermarket now" after "My weekly shop is at Lidl". Both must be about the user (a role acting on the
    user's things counts: "Landlord is charging 1,240 now"); questions, wishes and other people's facts
    replace nothing. Found without a family, the replacement is a guess: a conflict record is always raised,
    except for a statement that ends the thing it names ("Gave up the season ticket")."""
    if is_tentative(text) or "(in reply to:" in text or subject_of(text, None, people) != "user" \
            or _says_how_things_were(text) or reports_event(text) or len(text.split()) < FRAME_WORDS:
        return []  # a value needs a frame around it: "Bonne journée!" after "Merci!" gives none
    near = [i for i, _ in store.vector_search(scope, vec, NEAREST_K)]
    recs = {r.id: r for r in store.get_memories(scope, near)}
    ordered = [recs[i] for i in near
               if i in recs and recs[i].current and not set(recs[i].episode_ids) & set(episode_ids)]
    with_facts = {e for r in ordered if r.kind != EVIDENCE_KIND for e in r.episode_ids}
    for rec in ordered:
        if rec.source_role not in (None, "user"):
            continue
        if rec.kind == EVIDENCE_KIND and (set(rec.episode_ids) & with_facts or "(in reply to:" in rec.text
                                          or len(rec.text.split()) > SHORT_MESSAGE_WORDS):
            continue  # a message that gave facts is replaced through them
        if speaker is not None and not any(e.name == speaker for e in store.get_episodes(scope, rec.episode_ids)):
            continue
        old_vec = store.vectors(scope, [rec.id]).get(rec.id)
        cosine = float(np.dot(vec, old_vec)) if old_vec is not None else 0.0
        ending = ends_it(text, rec.text)
        if cosine < (ENDS_COSINE if ending else FRAME_COSINE):
            return []  # the nearest statement of the user is about something else
        owner = subject_of(rec.text, rec.slot[0] if rec.slot else None, people_named(rec.entities))
        if is_tentative(rec.text) or reports_event(rec.text) or len(rec.text.split()) < FRAME_WORDS or owner != "user":
            continue  # not the user's own statement: the next nearest may be
        if ending:
            return [Replacement(rec, Decision(True, True, "says it ended"))]
        if not gives_other_value(text, rec.text):
            return []
        return [Replacement(rec, Decision(True, False, "new value for the same statement"))]  # a guess: recorded
    return []


def _says_how_things_were(text: str) -> bool:
    return decide(text, Attribute("user", "", False), "", None, 0.0, same_value=False).reason == "says how things were"


def _same_thing(a: str, b: str) -> bool:
    """Same subject, or two lower-case event phrases with one head noun ("recital" ~ "piano recital")."""
    if same_subject(a, b):
        return True
    if a == "user" or b == "user" or a != a.lower() or b != b.lower():
        return False
    return a.split()[-1].split("-")[-1] == b.split()[-1].split("-")[-1]


def evidence_of(store: Store, scope: Scope, old: MemoryRecord,
                in_batch: dict[str, MemoryRecord]) -> list[MemoryRecord]:
    """The current evidence memories of the messages ``old`` was drawn from."""
    if not old.episode_ids:
        return []
    out: list[MemoryRecord] = []
    for ep in store.get_episodes(scope, old.episode_ids):
        h = normalized_hash(ep.content)
        found = [in_batch[h]] if h in in_batch else store.find_by_hash(scope, h)
        out += [m for m in found if m.current and m.kind == EVIDENCE_KIND and ep.id in m.episode_ids]
    return out


SHORT_MESSAGE_WORDS = 20  # a message this short that yielded one fact is that fact's record, nothing more
# The replaced fact repeats this share of its message's words: the message said nothing more worth keeping.
ALL_IT_SAID = 0.5


# A message kept as said is longer than this, with at least so many words the new statement does not say:
# "Our weekly planning meeting is on Monday at 11." says the old value and nothing more.
KEPT_MIN_WORDS = 14
KEPT_MIN_OTHER_WORDS = 4


def kept_as_said(store: Store, scope: Scope, old: MemoryRecord, new_text: str, now: float
                 ) -> tuple[MemoryRecord, np.ndarray] | None:
    """A replaced fact that was its whole message word for word (so no verbatim evidence of the message was
    kept beside it), when the message said more than the new statement repeats ("Rent is $265 a week for my
    room in a villa in Newtown with three flatmates" replaced by "Paid $290 rent this week"): the message as
    evidence, with the fact's vector, so Newtown and the flatmates stay findable. None otherwise."""
    if old.source_role not in (None, "user") or len(old.text.split()) <= KEPT_MIN_WORDS \
            or len(content_words(old.text) - content_words(new_text)) < KEPT_MIN_OTHER_WORDS:
        return None
    if not any(normalized_hash(ep.content) == old.content_hash for ep in store.get_episodes(scope, old.episode_ids)):
        return None
    vec = store.vectors(scope, [old.id]).get(old.id)
    if vec is None:
        return None
    rec = MemoryRecord(id=str(uuid.uuid4()), scope=scope, text=old.text, created_at=old.created_at, updated_at=now,
                       valid_from=old.valid_from, conversation_id=old.conversation_id, metadata=dict(old.metadata),
                       episode_ids=list(old.episode_ids), kind=EVIDENCE_KIND, importance=EVIDENCE_IMPORTANCE,
                       confidence=1.0, confidence_reason="stated verbatim", source_role=old.source_role,
                       last_seen_at=now, content_hash=old.content_hash, entities=list(old.entities))
    return rec, np.asarray(vec, dtype=np.float32).reshape(1, -1)


def outdates_all(old: MemoryRecord, evidence: MemoryRecord) -> bool:
    """Does the replaced fact say (nearly) everything its short evidence says? A long message stays as said,
    however much of it the fact repeats: it is the record of a conversation (what else was said around the
    old value, and when), and search puts the later statement above it (``retrieve.revisions``)."""
    if len(evidence.text.split()) > SHORT_MESSAGE_WORDS:
        return False
    ev = content_words(evidence.text)
    return not ev or len(ev & content_words(old.text)) >= ALL_IT_SAID * len(ev)


def said_only(store: Store, scope: Scope, old: MemoryRecord, evidence: MemoryRecord,
              in_batch: dict[str, MemoryRecord]) -> bool:
    """Was ``old`` the only fact a short message gave ("My favourite food is sushi, I could eat it every
    day")? Then the message ends with it. A long message, or one that gave other facts still current, stays."""
    if len(evidence.text.split()) > SHORT_MESSAGE_WORDS:
        return False
    episodes = set(evidence.episode_ids)
    if any(m.id != old.id and m.current and m.kind != EVIDENCE_KIND and episodes & set(m.episode_ids)
           for m in in_batch.values()):
        return False
    vec = store.vectors(scope, [evidence.id]).get(evidence.id)
    if vec is None:
        return False
    near = [i for i, _ in store.vector_search(scope, vec, NEAREST_K + 3) if i not in (old.id, evidence.id)]
    return not any(m.current and m.kind != EVIDENCE_KIND and episodes & set(m.episode_ids)
                   for m in store.get_memories(scope, near))


def assign_attributes(facts: Sequence[Candidate], messages: Sequence[Message]) -> None:
    """Give each user fact the slot of the attribute it sets (family, subject; the extractor's value when it
    found one, else the statement itself), so facts of one attribute meet however they were worded."""
    roles = {m.index: m.role for m in messages}
    for f in facts:
        if f.kind == EVIDENCE_KIND or not f.source_indexes or roles.get(f.source_indexes[0]) != "user":
            continue
        own = own_attribute(f.text)
        if own is not None and (f.slot is None or f.slot.subject != "user"):
            f.slot = Slot("user", own[0], normalize_value(own[1]))
        attr = attribute_of(f.text, people=people_named(e.canonical for e in f.entities))
        if f.slot is not None and not (f.slot.attribute.endswith("_count") and attr is not None):
            continue  # the extractor's own slot is more precise than a family, except a bare count
        if attr is not None:
            f.slot = Slot(attr.subject, attr.family, normalize_text(without_reply_note(f.text)))


DOUBTFUL_FIT = 0.3  # a family named by words this far from the statement's meaning is in doubt ...
REREAD_MARGIN = 0.15  # ... and meaning overrules it when its own family is this much nearer


def refine_attributes(facts: Sequence[Candidate], messages: Sequence[Message], embed: Embed) -> None:
    """Check each user fact's attribute against its meaning (one batched embedding of the facts as said).

    A fact whose words named no family gets the family its meaning sits in; a family named by words that
    its meaning is far from is dropped ("a Leinster rugby fan" is no job) or, when another family is clearly
    nearer, replaced by it ("a physics teacher at a charter school" is a job, not studies). Slots the
    extractor filled with a value of its own are kept unless they are a misreading."""
    roles = {m.index: m.role for m in messages}
    todo = [f for f in facts if f.kind != EVIDENCE_KIND and f.action is None and f.source_indexes
            and roles.get(f.source_indexes[0]) == "user"]
    if not todo:
        return
    vectors = embed([f.text for f in todo])
    for f, vec in zip(todo, vectors, strict=True):
        ranked = family_scores(vec, embed)
        if not ranked:
            return  # a model without meaning: nothing to judge by
        scores = dict(ranked)
        meaning = family_by_meaning(vec, embed)
        people = people_named(e.canonical for e in f.entities)
        subject = subject_of(f.text, f.slot.subject if f.slot is not None else None, people)  # the extractor's
        by_meaning = Slot(subject, meaning, normalize_text(f.text)) if meaning else None  # "he" stays Tomasz
        if f.slot is None:
            if meaning is None or states_value(f.text, meaning, False) or not any(
                    g is not f and g.slot is not None and family_of(g.slot.attribute) == meaning
                    and g.source_indexes[:1] == f.source_indexes[:1] for g in todo):
                f.slot = by_meaning  # a clause with no value of its own ("I switched jobs") leaves it to another
            continue
        family = family_of(f.slot.attribute)
        if family not in scores:
            continue
        if not fits(vec, embed, family):
            f.slot = by_meaning
        elif (meaning is not None and meaning != family and f.slot.value == normalize_text(f.text)
              and scores[family] < DOUBTFUL_FIT and scores[meaning] - scores[family] >= REREAD_MARGIN):
            f.slot = by_meaning


def known_neighbours(store: Store, scope: Scope, embed: Callable[[list[str]], np.ndarray],
                     messages: Sequence[Message], per_message: int = NEAREST_K,
                     limit: int = 20) -> list[tuple[str, str]]:
    """(id, text) of the current facts nearest to the user's messages: what an LLM extractor is shown so
    it can say which of them a new statement updates, replaces or repeats."""
    texts = [m.content for m in messages if m.role == "user" and m.content.strip()][:limit]
    if not texts:
        return []
    ids: list[str] = []
    for vec in embed(texts):
        ids += [i for i, _ in store.vector_search(scope, vec, per_message) if i not in ids]
    recs = {r.id: r for r in store.get_memories(scope, ids)}
    return [(i, recs[i].text) for i in ids if i in recs and recs[i].current and recs[i].kind != EVIDENCE_KIND][:limit]


def model_replacements(store: Store, scope: Scope, cand: Candidate) -> list[Replacement]:
    """The stored facts an extractor said ``cand`` updates or supersedes (current, not evidence, this scope)."""
    if cand.action not in ("UPDATE", "SUPERSEDE") or not cand.targets:
        return []
    explicit = cand.explicit if cand.explicit is not None else cand.action == "UPDATE"
    reason = "refined by the model" if cand.action == "UPDATE" else "superseded by the model"
    return [Replacement(r, Decision(True, explicit, reason)) for r in store.get_memories(scope, cand.targets)
            if r.current and r.kind != EVIDENCE_KIND]
