"""The single-valued fact a clause asserts, as a (subject, attribute, value) :class:`Slot`.

Slots make conflicts detectable: "I live in Lisbon" and later "I moved to Porto" share ``(user, lives_in)``.
Patterns covered: schedules ("the meeting moved to Friday"), preferences, copulas ("my gate code is 4512",
"Tiago is a chef"), verbs of living, working, joining and being born, and quantities ("two coffees a day").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memstrata.ingest.candidate import Slot
from memstrata.ingest.entities import PET_NOUNS, RELATION_NOUNS
from memstrata.ingest.lexicon import (
    EVENT_NOUNS,
    JOB_NOUNS,
    NEGATIVE_PREFERENCE,
    PAST_MODIFIERS,
    PREFERENCE_VERBS,
    SCHEDULE_CHANGE_VERBS,
    TRAVEL_VERBS,
    WEEKDAYS_MONTHS,
)
from memstrata.ingest.rules.mentions import Context, Mention, node_name, owner_of
from memstrata.ingest.rules.phrases import (
    age_value,
    attribute,
    first_pobj,
    is_occupation,
    is_place,
    join_tokens,
    nested_pobj,
    norm,
    phrase,
    snake,
    time_value,
    value_tokens,
)
from memstrata.ingest.sentence import SentenceFeatures
from memstrata.ingest.syntax import lemma, preference_idiom, preference_object

if TYPE_CHECKING:
    from spacy.tokens import Token


def clause_slot(pred: Token, subj: Token | None, who: str | None, feats: SentenceFeatures,
          mentions: list[Mention], ctx: Context) -> Slot | None:
    """The (subject, attribute, value) a clause asserts, or None when it asserts no single-valued fact."""
    if feats.subject_kind in ("assistant", "vague", "second_person"):
        return None
    word = lemma(pred)
    sched = _schedule_slot(pred, subj, feats)
    if sched is not None:
        return sched
    if word == "call" and not feats.negated:
        # "call me Pri", "my friends call me Pri"
        dobj = next((c for c in pred.children if c.dep_ == "dobj"), None)
        name = next((c for c in pred.children if c.dep_ in ("oprd", "xcomp", "attr", "npadvmod")), None)
        if dobj is not None and dobj.lower_ in ("me", "us") and name is not None:
            return Slot("user", "preferred_name", phrase(name))
    if feats.modal in ("could", "might", "may", "should", "will", "shall") or feats.future:
        return None  # plans and possibilities do not replace current facts
    if word in PREFERENCE_VERBS or (word == "stand" and feats.negated):
        return _preference_slot(pred, who, feats) if feats.modal != "would" else None
    idiom = preference_idiom(pred)
    if idiom is not None and subj is not None and feats.modal is None:
        owner = owner_of(idiom, mentions, ctx) or "user"
        thing = phrase(subj, lemma_head=True, keep_of=False)  # "horror movies are not my thing"
        return Slot(owner, f"likes_{snake(thing)}", "no" if feats.negated else "yes") if thing else None
    if feats.negated or feats.modal == "would":
        return None
    if word == "be" and not any(c.dep_ == "aux" for c in pred.children):
        return _copula_slot(pred, subj, who, mentions, ctx)
    if word in ("call", "name") and pred.tag_ == "VBN" and subj is not None:
        return _copula_slot(pred, subj, who, mentions, ctx)  # "my physio is called Greta"
    if who is None:
        return None
    return _verb_slot(pred, word, who, feats)


def _verb_slot(pred: Token, word: str, who: str, feats: SentenceFeatures) -> Slot | None:
    if word in ("live", "reside") or (word == "base" and pred.tag_ == "VBN"):
        obj = first_pobj(pred, ("in", "at", "near", "outside"))
        return Slot(who, "lives_in", phrase(obj)) if obj is not None and is_place(obj) else None
    if word in ("move", "relocate") and feats.subject_kind in ("first_person", "person"):
        obj = first_pobj(pred, ("to",))
        if obj is None:
            for c in pred.children:  # "moved back to X" can hang "to X" under "back"
                if c.dep_ in ("advmod", "prt"):
                    obj = first_pobj(c, ("to",))
        return Slot(who, "lives_in", phrase(obj)) if obj is not None and is_place(obj) else None
    if word in ("work", "intern"):
        org = nested_pobj(pred, ("at", "for"))
        if org is not None and (org.pos_ == "PROPN" or org.ent_type_ in ("ORG", "GPE", "FAC", "PRODUCT")):
            return Slot(who, "works_at", phrase(org))
        role = first_pobj(pred, ("as",))
        return Slot(who, "job_title", phrase(role, keep_of=False)) if role is not None else None
    if word == "join":
        obj = next((c for c in pred.children if c.dep_ == "dobj"), None)
        if obj is not None and obj.pos_ == "PROPN":
            return Slot(who, "works_at", phrase(obj))
        return None
    if word in ("change", "update", "set", "switch", "reset") and feats.subject_kind == "first_person":
        # "I changed the bike lock code to 2745": the object is the attribute, "to" gives the value
        obj = next((c for c in pred.children if c.dep_ == "dobj" and c.pos_ == "NOUN"), None)
        value = first_pobj(pred, ("to",))
        if obj is not None and value is not None and lemma(obj) not in EVENT_NOUNS:
            return Slot(who, attribute(obj), phrase(value))
        return None
    if word in ("get", "start", "land", "accept", "take", "begin", "find"):
        obj = next((c for c in pred.children if c.dep_ == "dobj"), None)
        if obj is not None and lemma(obj) in JOB_NOUNS:
            org = first_pobj(obj, ("at", "with", "in")) or first_pobj(pred, ("at", "with"))
            if org is not None and org.pos_ == "PROPN":
                return Slot(who, "works_at", phrase(org))
        return None
    if word == "employ" and pred.tag_ == "VBN":
        agent = next((c for c in pred.children if c.dep_ == "agent"), None)
        org = next((g for g in agent.children if g.dep_ == "pobj"), None) if agent is not None else None
        return Slot(who, "works_at", phrase(org)) if org is not None else None
    if word == "promote":
        role = first_pobj(pred, ("to",))
        return Slot(who, "job_title", phrase(role, keep_of=False)) if role is not None else None
    if word == "turn":
        for c in pred.children:
            age = age_value(c) if c.dep_ in ("dobj", "attr", "oprd", "npadvmod", "acomp") else None
            if age:
                return Slot(who, "age", age)
        return None
    if word == "bear" and pred.tag_ == "VBN":
        obj = first_pobj(pred, ("on", "in"))
        if obj is None:
            return None
        if obj.ent_type_ == "DATE" or obj.lower_ in WEEKDAYS_MONTHS:
            return Slot(who, "birthday", time_value(pred, set()))
        return Slot(who, "birthplace", phrase(obj))
    return _quantity_slot(pred, who, feats)


def _event_name(event: Token) -> str:
    """ "the team meeting" -> "team meeting"; "my flight to Lima" -> "flight to lima" (one per destination
    or partner; a bare "the flight" later still matches it by its first word)."""
    tokens = [t for t in value_tokens(event, keep_of=False) if t.dep_ != "prep"]
    # "my lessons" and "the lesson" are one event: the head noun is lemmatised
    name = join_tokens(tokens, {event.i: lemma(event)} if event.pos_ == "NOUN" else None)
    target = first_pobj(event, ("to", "with"))
    if target is not None and target.pos_ == "PROPN":
        prep = next(c.lower_ for c in event.children if c.dep_ == "prep" and target in c.children)
        name += f" {prep} {phrase(target)}"
    return norm(name)


def _schedule_slot(pred: Token, subj: Token | None, feats: SentenceFeatures) -> Slot | None:
    """ "the meeting moved to Friday" -> Slot("meeting", "scheduled_for", "friday")."""
    word = lemma(pred)
    event: Token | None = None
    if word in TRAVEL_VERBS and feats.subject_kind == "first_person" and not feats.negated:
        # "I'm flying to Lima on October 2" schedules a flight like "my flight to Lima is on October 2"
        dest = first_pobj(pred, ("to",))
        value = time_value(pred, {t.i for t in subj.subtree} if subj is not None else set())
        if value and dest is not None and dest.pos_ == "PROPN":
            return Slot(f"{TRAVEL_VERBS[word]} to {phrase(dest)}", "scheduled_for", value)
        return None
    if feats.subject_kind == "event" and subj is not None:
        event = subj
    elif word in SCHEDULE_CHANGE_VERBS or word in ("schedule", "set", "plan", "book"):
        event = next((c for c in pred.children if c.dep_ in ("dobj", "nsubjpass")
                      and lemma(c) in EVENT_NOUNS), None)
    if event is None or feats.negated or feats.modal in ("would", "could", "might", "may", "should"):
        return None
    value = time_value(pred, {t.i for t in event.subtree})
    if not value and (word == "cancel" or (word == "call" and any(c.lower_ == "off" for c in pred.children))):
        value = "cancelled"
    if not value and word in SCHEDULE_CHANGE_VERBS:
        target = first_pobj(pred, ("to", "until", "for", "till"))
        value = phrase(target) if target is not None else ""
    if not value:
        return None
    subject = _event_name(event)
    # "Tom's wedding" and "the wedding" are one slot: the possessor stays in the text, not the key
    return Slot(subject, "scheduled_for", value)


def _preference_slot(pred: Token, who: str | None, feats: SentenceFeatures) -> Slot | None:
    """ "I love spicy food" -> likes_spicy_food=yes; "I prefer dark mode" -> prefers_mode=dark mode."""
    if who is None:
        return None
    word = lemma(pred)
    obj = preference_object(pred)
    if obj is None:
        return None
    if obj.pos_ in ("VERB", "AUX"):  # "I love hiking", "I like to cook"
        base = lemma(obj)
        thing = obj.lower_ if obj.tag_ == "VBG" else (base[:-1] if base.endswith("e") else base) + "ing"
    else:
        thing = phrase(obj, lemma_head=True, keep_of=False)
    if not thing:
        return None
    if word == "prefer":
        other = first_pobj(pred, ("over", "to", "than")) or first_pobj(obj, ("over", "to", "than"))
        head = lemma(obj)
        if other is not None:
            pair = sorted([snake(head), snake(lemma(other))])
            return Slot(who, f"prefers_{pair[0]}_or_{pair[1]}", thing)
        return Slot(who, f"prefers_{snake(head)}", thing)
    positive = word not in NEGATIVE_PREFERENCE and word != "stand"
    if feats.negated and word != "stand":
        positive = not positive
    return Slot(who, f"likes_{snake(thing)}", "yes" if positive else "no")


def _copula_slot(pred: Token, subj: Token | None, who: str | None, mentions: list[Mention],
                 ctx: Context) -> Slot | None:
    """Slots from "X is Y": "my gate code is 4512", "I'm 29", "Green is my favourite colour"."""
    if subj is None:
        return None
    comps = [c for c in pred.children if c.dep_ in ("attr", "acomp", "oprd")]
    preps = [c for c in pred.children if c.dep_ == "prep"]
    comp = comps[0] if comps else None
    if comp is not None and comp.pos_ == "NOUN" and any(c.lower_ in ("favorite", "favourite", "fave")
                                                        for c in comp.children):
        owner = owner_of(comp, mentions, ctx)  # the subject is the value
        return Slot(owner, attribute(comp), phrase(subj)) if owner else None
    subj_word = lemma(subj)
    owner = owner_of(subj, mentions, ctx) if subj.pos_ == "NOUN" else None
    if owner is not None and subj_word in RELATION_NOUNS | PET_NOUNS:
        if comp is not None and comp.pos_ == "PROPN":
            return Slot(owner, attribute(subj), phrase(comp))  # "my doctor is Dr. Okafor"
        return _person_copula(who or node_name(subj), comp, preps) if who != "user" else None
    if owner is not None:
        if any(c.lower_ in PAST_MODIFIERS for c in subj.lefts):
            return None  # "my old address was..." is history, not the current value
        attr = attribute(subj)
        if comp is not None:
            if attr == "age":
                return Slot(owner, "age", age_value(comp) or phrase(comp))
            return Slot(owner, attr, norm(comp.text) if comp.pos_ == "ADJ" else phrase(comp))
        value = time_value(pred, {t.i for t in subj.subtree})
        if not value and preps and preps[0].lower_ not in ("with", "about", "for", "like", "because"):
            pobj = next((g for g in preps[0].children if g.dep_ == "pobj"), None)
            value = phrase(pobj) if pobj is not None else ""
        return Slot(owner, attr, value) if value else None
    if who is None or lemma(subj) in EVENT_NOUNS:
        return None
    return _person_copula(who, comp, preps)


def _person_copula(who: str, comp: Token | None, preps: list[Token]) -> Slot | None:
    """ "I'm 29", "Tiago is a chef", "I'm Priya", "Maria is allergic to shellfish", "I'm from Porto"."""
    if comp is not None:
        age = age_value(comp)
        if age and (comp.like_num or comp.lower_ == "old"):
            return Slot(who, "age", age)
        if comp.pos_ == "PROPN" and comp.ent_type_ == "PERSON" and who == "user":
            return Slot(who, "name", phrase(comp))
        if is_occupation(comp):
            return Slot(who, "job_title", phrase(comp, keep_of=False))
        if comp.lower_ in ("allergic", "intolerant"):
            thing = first_pobj(comp, ("to",)) or next((c for c in comp.children if c.dep_ == "xcomp"), None)
            if thing is None:
                thing = next((g for p in preps if p.lower_ == "to" for g in p.children if g.dep_ == "pobj"), None)
            if thing is not None:
                return Slot(who, f"allergic_to_{snake(phrase(thing, lemma_head=True))}", "yes")
        return None
    for p in preps:
        if p.lower_ == "from":
            obj = next((g for g in p.children if g.dep_ == "pobj"), None)
            if obj is not None and obj.pos_ == "PROPN":
                return Slot(who, "hometown", phrase(obj))
    return None


def _quantity_slot(pred: Token, who: str, feats: SentenceFeatures) -> Slot | None:
    """ "I drink two coffees a day" -> Slot("user", "drink_coffee_count", "two a day")."""
    if pred.tag_ not in ("VBP", "VBZ") or feats.negated:
        return None
    obj = next((c for c in pred.children if c.dep_ == "dobj"), None)
    if obj is None:
        return None
    nums = [c for c in obj.children if c.dep_ == "nummod" and c.like_num]
    if not nums:
        return None
    freq = [c for c in list(obj.children) + list(pred.children) if c.dep_ == "npadvmod"]
    value = norm(" ".join([nums[0].text] + [join_tokens(list(f.subtree)) for f in freq]))
    return Slot(who, f"{snake(lemma(pred))}_{snake(lemma(obj))}_count", value)
