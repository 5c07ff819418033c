"""The offline ``rules`` extractor: spaCy parse -> clauses -> drop rules -> score -> entities, relations, slots.

Pure and I/O-free: the same messages always give the same candidates. Only user messages are read unless
``include_assistant`` is set; assistant text is mostly restatement and boilerplate.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from memstrata.ingest import importance as imp
from memstrata.ingest.candidate import Candidate, EntityMention, Message, Relation, Slot
from memstrata.ingest.dedup import normalize_text
from memstrata.ingest.entities import PET_NOUNS, RELATION_NOUNS, EntityIndex, canonical_key, canonical_name

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

LABELS = {"PERSON": "PERSON", "GPE": "PLACE", "LOC": "PLACE", "FAC": "PLACE", "ORG": "ORG",
          "PRODUCT": "PRODUCT", "WORK_OF_ART": "PRODUCT", "EVENT": "EVENT", "NORP": "OTHER",
          "LANGUAGE": "OTHER", "LAW": "OTHER"}
GRAPH_LABELS = frozenset({"PERSON", "PLACE", "ORG", "PROJECT", "PRODUCT", "EVENT"})

OCCUPATIONS = frozenset({
    "engineer", "developer", "programmer", "designer", "manager", "analyst", "scientist", "consultant",
    "architect", "director", "officer", "administrator", "specialist", "technician", "nurse", "doctor",
    "physician", "surgeon", "dentist", "teacher", "professor", "lecturer", "lawyer", "attorney", "paralegal",
    "accountant", "chef", "cook", "baker", "pilot", "firefighter", "police", "policeman", "policewoman",
    "student", "intern", "researcher", "writer", "journalist", "editor", "photographer", "artist",
    "musician", "actor", "actress", "therapist", "psychologist", "pharmacist", "veterinarian", "vet",
    "electrician", "plumber", "carpenter", "mechanic", "driver", "farmer", "librarian", "cashier",
    "waiter", "waitress", "bartender", "barista", "recruiter", "founder", "cofounder", "ceo", "cto",
    "cfo", "coo", "vp", "lead", "marketer", "salesperson", "translator", "interpreter", "tutor",
    "coach", "trainer", "paramedic", "midwife", "economist", "statistician", "mathematician",
    "physicist", "chemist", "biologist", "entrepreneur", "freelancer", "contractor", "clerk",
    "secretary", "receptionist", "assistant", "supervisor", "coordinator", "executive", "banker",
    "trader", "broker", "agent", "realtor", "soldier", "sailor", "nanny", "caregiver", "professional",
    "sre", "devops", "tester", "copywriter", "illustrator", "animator", "producer", "dancer", "singer",
})
ATTRIBUTE_SYNONYMS = {
    "phone_number": "phone", "number": "phone", "cell": "phone", "cell_number": "phone", "mobile": "phone",
    "mobile_number": "phone", "telephone": "phone", "telephone_number": "phone", "phone": "phone",
    "email_address": "email", "e-mail": "email", "mail": "email", "job": "job_title", "occupation": "job_title",
    "role": "job_title", "position": "job_title", "title": "job_title", "profession": "job_title",
    "home_address": "address", "birth_date": "birthday", "date_of_birth": "birthday", "dob": "birthday",
    "full_name": "name", "first_name": "name", "nickname": "preferred_name",
}
# Modifiers that mark a change of value, not a different attribute: "my new number" is still my number.
CHANGE_MODIFIERS = frozenset({"new", "current", "actual", "real", "correct", "updated", "present", "latest",
                              "exact", "proper", "right", "usual", "main", "primary", "own"})
PAST_MODIFIERS = frozenset({"old", "former", "previous", "ex", "last", "first"})
TIME_OF_DAY = frozenset({"morning", "mornings", "afternoon", "afternoons", "evening", "evenings", "night",
                         "nights", "noon", "midnight", "lunchtime"})
WEEKDAYS_MONTHS = frozenset({
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mondays", "tuesdays",
    "wednesdays", "thursdays", "fridays", "saturdays", "sundays", "january", "february", "march", "april",
    "may", "june", "july", "august", "september", "october", "november", "december", "today", "tomorrow",
    "tonight", "weekend",
})
CLOCK = re.compile(r"^\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|h)?$", re.IGNORECASE)
# Productive profession suffixes: cardiologist, pediatrician, choreographer, mechanical engineer
OCCUPATION_SUFFIX = re.compile(r"(?:ologist|iatrist|ician|ographer|ineer|wright|smith)$")
TRAVEL_VERBS = {"fly": "flight"}
JOB_NOUNS = frozenset({"job", "position", "role", "internship", "offer", "gig", "contract", "post"})
TOPIC_LABEL = re.compile(
    r"^\s*(?:(?:hi|hey|hello|ok|okay|so|oh|yo)\b[,!.]*\s+)*(?P<label>[A-Za-z][A-Za-z' ]{0,30}?)\s*:\s+(?=\S)")
CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
TASK_LEMMAS_EXEMPT = frozenset({"remember", "note", "keep", "know", "forget", "update", "reminder"})
TASK_LABEL = re.compile(r"(?i)^(?:summari[sz]e|translate|rewrite|fix|explain|write|check|review|proofread)\b")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().strip()
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"^(?:the|a|an|my|our|your)\s+", "", text)
    return text.strip(" \t.,;:!?\"'“”‘’()*")


def _snake(text: str) -> str:
    return re.sub(r"[^\w]+", "_", _norm(text)).strip("_")


def _third_singular(verb: str) -> str:
    irregular = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if verb in irregular:
        return irregular[verb]
    if re.search(r"(?:s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


@dataclass
class _Context:
    """State carried across the messages of one extract() call."""

    known: EntityIndex = field(default_factory=EntityIndex)  # names stored in the scope or seen so far
    last_person: str | None = None  # referent for "he"/"she"
    role: str = "user"  # role of the message being read


@dataclass
class RulesExtractor:
    """Extracts memory candidates from chat messages with spaCy and linguistic rules; no network, no LLM.

    ``threshold``: candidates scoring below it are not returned (the message stays in episodic storage).
    ``include_assistant``: also read assistant messages ("you" then means the user).
    """

    threshold: float = imp.DEFAULT_THRESHOLD
    include_assistant: bool = False

    def extract(self, messages: Sequence[Message], now: datetime | None = None,
                known_entities: EntityIndex | Iterable[str] = ()) -> list[Candidate]:
        """Candidates for ``messages``, in message order.

        ``now`` is the reference time for relative dates when a message has no timestamp.
        ``known_entities`` are canonical names already stored in the scope (or an ``EntityIndex`` of
        them, cheaper to reuse): they resolve aliases ("Anna" -> "Anna Silva") and are not new entities.
        """
        from memstrata.ingest.nlp import parse_many

        base = known_entities if isinstance(known_entities, EntityIndex) else EntityIndex(known_entities)
        ctx = _Context(base.overlay())
        roles = {"user", "assistant"} if self.include_assistant else {"user"}
        todo: list[tuple[Message, _Prepared]] = []
        for m in messages:
            if m.role not in roles or not m.content or not m.content.strip():
                continue
            if imp.is_sarcastic(m.content):
                continue  # "/s", "yeah right": the whole message is ironic
            prep = _prepare(m.content)
            if prep.text:
                todo.append((m, prep))
        docs = parse_many([p.text for _, p in todo]) if todo else []
        out: list[Candidate] = []
        seen: set[str] = set()
        for (msg, prep), doc in zip(todo, docs, strict=True):
            for cand in self._from_doc(msg, doc, prep, now, ctx):
                key = normalize_text(cand.text)
                if key not in seen:  # a pasted message can repeat itself; the store would merge it anyway
                    seen.add(key)
                    out.append(cand)
        return out

    def _from_doc(self, msg: Message, doc: Doc, prep: _Prepared, now: datetime | None,
                  ctx: _Context) -> list[Candidate]:
        if _is_task_with_payload(doc):
            return []
        ctx.role = msg.role
        mentions = _mentions(doc, ctx)
        produced: list[Candidate] = []
        for n, sent in enumerate(doc.sents):
            feats = imp.analyze(sent, role=msg.role, cue=prep.cue and n == 0, banter=prep.banter)
            if feats.drop is not None or feats.root is None:
                continue
            for pred, text, ids in _clauses(sent, feats.root):
                clause = feats if pred == feats.root else imp.set_predicate(replace(feats), pred, msg.role)
                cand = self._candidate(msg, sent, clause, text, ids, mentions, now, ctx)
                if cand is not None:
                    produced.append(cand)
        for m in mentions:
            if m.label in GRAPH_LABELS and not m.unnamed:
                ctx.known.add(m.mention.canonical, m.label)
        if produced:
            _add_co_mentions(produced[0], produced, mentions)
        return produced

    def _candidate(self, msg: Message, sent: Span, feats: imp.SentenceFeatures, text: str, ids: set[int],
                   mentions: list[_Mention], now: datetime | None, ctx: _Context) -> Candidate | None:
        pred = feats.root
        assert pred is not None
        subj = feats.subject
        if feats.subject_kind == "thing" and subj is not None and (m := _mention_at(subj, mentions)) is not None \
                and m.label in ("PERSON", "OTHER"):
            feats.subject_kind = "person"  # a known name the tagger took for a common noun ("Miso hates...")
        who = _referent(subj, feats, mentions, ctx)
        slot = _slot(pred, subj, who, feats, mentions, ctx)
        extra: dict[str, float] = {}
        if slot is not None:
            if slot.subject == "user":
                extra["first_person_fact"] = imp.WEIGHTS["first_person_fact"]
            elif slot.attribute == "scheduled_for":
                extra["plan"] = imp.WEIGHTS["plan"]
            else:
                extra["relationship"] = imp.WEIGHTS["relationship"]
        score, reasons = imp.score_features(sent, feats, ctx.known, extra)
        if score < self.threshold or not reasons:
            return None
        own = [m for m in mentions if m.start in ids or m.end - 1 in ids]
        relations = _relations(pred, who, feats, mentions)
        for m in own:
            relations.extend(m.relations)
        if who and who != "user" and feats.subject_kind == "person":
            ctx.last_person = who
        elif any(m.label == "PERSON" for m in own):
            ctx.last_person = next(m.mention.canonical for m in reversed(own) if m.label == "PERSON")
        confidence, why = 0.8, "rules extraction"
        if feats.modal in ("might", "may", "could"):
            confidence, why = 0.5, "rules extraction; tentative (modal verb)"
        return Candidate(
            text=text,
            importance=score,
            reasons=reasons,
            kind=_kind(reasons, feats),
            source_indexes=[msg.index],
            entities=_unique([m.mention for m in own]),
            relations=_unique(relations),
            slot=slot,
            event_time=_event_time(text, msg.timestamp or now),
            confidence=confidence,
            confidence_reason=why,
        )


def _add_co_mentions(first: Candidate, produced: list[Candidate], mentions: list[_Mention]) -> None:
    """Named entities mentioned in one message are linked ("mentioned_with"), once per pair."""
    names = sorted({m.mention.canonical for m in mentions if m.label in GRAPH_LABELS and not m.unnamed},
                   key=canonical_key)
    seen = {(r.subject, r.object) for c in produced for r in c.relations}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if (a, b) not in seen and (b, a) not in seen:
                first.relations.append(Relation(a, "mentioned_with", b))


def _unique(items: list) -> list:  # type: ignore[type-arg]
    return list(dict.fromkeys(items))


def _kind(reasons: list[str], feats: imp.SentenceFeatures) -> str:
    if feats.instruction:
        return "instruction"
    if "schedule_change" in reasons:
        return "event"
    if "preference" in reasons:
        return "preference"
    if "plan" in reasons:
        return "plan"
    if "relationship" in reasons and feats.subject_kind != "first_person":
        return "relationship"
    return "fact"


@dataclass
class _Prepared:
    text: str
    cue: bool = False
    banter: bool = False


def _prepare(content: str) -> _Prepared:
    """Drop code blocks, emphasis, laughter and a leading topic label ("Update:", "Reminder:") before parsing."""
    text = CODE_BLOCK.sub(" ", content)
    text = imp.strip_emphasis(text)
    banter = bool(imp.LAUGHTER.search(text))
    if banter:
        # "Miso hates the vacuum haha": the parser takes a trailing "haha" for the object
        text = imp.LAUGHTER.sub(" ", text)
        text = re.sub(r"\s+([.,!?])", r"\1", re.sub(r"[ \t]+", " ", text))
    text = text.strip()
    cue = False
    m = TOPIC_LABEL.match(text)
    if m and len(m.group("label").split()) <= 3:
        label = m.group("label")
        cue = bool(imp.EXPLICIT_CUE.match(label))
        if cue or not TASK_LABEL.match(label):
            text = text[m.end():]
    return _Prepared(text.strip(), cue, banter)


def _is_task_with_payload(doc: Doc) -> bool:
    """ "Summarize this for me: <pasted text>": the pasted text is material to work on, not memories."""
    colon = next((t for t in doc if t.text == ":"), None)
    if colon is None:
        return False
    head = [t for t in doc[: colon.i] if not t.is_punct and t.lower_ not in ("please", "pls", "can", "could",
                                                                            "you", "hey", "hi", "ok", "so")]
    return bool(head) and head[0].tag_ == "VB" and imp.lemma(head[0]) not in TASK_LEMMAS_EXEMPT


# ---------------------------------------------------------------- clauses


def _comma_between(clause: Token, root: Token) -> bool:
    if clause.i < root.i:
        lo, hi = clause.right_edge.i, root.i
    else:
        lo, hi = root.i, clause.left_edge.i
    return any(t.text in (",", ";", "—", "-", "–") for t in clause.doc[lo + 1: hi])


def _clause_roots(root: Token) -> list[Token]:
    """The root plus coordinated clauses and comma-spliced ones ("I hate X, it tastes like soap")."""
    out = [root]
    for c in root.children:
        if c.pos_ not in ("VERB", "AUX"):
            continue
        if c.dep_ == "conj" or (c.dep_ in ("ccomp", "parataxis") and imp.has_subject(c)
                                and _comma_between(c, root)):
            out.extend(_clause_roots(c))
    return out


def _let_us(pred: Token) -> set[int]:
    """ "Let's plan X": the parser makes "'s" the subject of "plan" under "Let", so the predicate's subtree
    alone reads "'s plan X". Keep the "Let" that the contraction belongs to."""
    head = pred.head
    if head is not pred and head.lower_ == "let" and any(
        c.dep_ == "nsubj" and c.lower_ in ("'s", "’s", "us") and c.i == head.i + 1 for c in pred.children
    ):
        return {head.i}
    return set()


def _clauses(sent: Span, root: Token) -> list[tuple[Token, str, set[int]]]:
    """(predicate, text, token ids) for each clause of a sentence."""
    roots = _clause_roots(root)
    if len(roots) == 1:  # the predicate's subtree: past a cue, "remember that X" keeps X only
        ids = {t.i for t in root.subtree if not (t.dep_ == "mark" and t.head == root)} | _let_us(root)
        return [(root, _clean(_tokens_text(sent, ids)), ids)]
    out: list[tuple[Token, str, set[int]]] = []
    for pred in roots:
        ids = {t.i for t in pred.subtree if not (t.dep_ == "mark" and t.head == pred)}
        for other in roots:
            if other != pred and pred.is_ancestor(other):
                ids -= {t.i for t in other.subtree}
        ids -= {c.i for c in pred.children if c.dep_ == "cc"}
        text = _tokens_text(sent, ids)
        subj = imp.subject_of(pred)
        if subj is not None and subj.i not in ids:  # "... and work at X" borrows the shared subject
            text = "".join(t.text_with_ws for t in subj.subtree).strip() + " " + text
            ids |= {t.i for t in subj.subtree}
        text = _clean(text)
        if text:
            out.append((pred, text, ids))
    return out


def _tokens_text(sent: Span, ids: set[int]) -> str:
    return "".join(t.text_with_ws for t in sent if t.i in ids)


def _clean(text: str) -> str:
    text = text.strip().strip(",;:-–— ")
    text = re.sub(r"^(?:and|but|so|also|then|plus|or)\s+", "", text, flags=re.IGNORECASE)
    if not text:
        return ""
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------- entities


@dataclass
class _Mention:
    mention: EntityMention
    start: int
    end: int
    relations: list[Relation] = field(default_factory=list)
    unnamed: bool = False  # "my boss": a node named by its relation to the user

    @property
    def label(self) -> str:
        return self.mention.label


def _project_spans(doc: Doc) -> list[tuple[int, int]]:
    """ "the Alpha project", "Project Phoenix": a capitalised name next to the word project."""
    spans: list[tuple[int, int]] = []
    for tok in doc:
        if tok.lower_ != "project":
            continue
        left = tok.i
        while left > 0 and doc[left - 1].pos_ == "PROPN" and doc[left - 1].text[:1].isupper():
            left -= 1
        if left < tok.i:
            spans.append((left, tok.i + 1))
            continue
        right = tok.i + 1
        while right < len(doc) and doc[right].pos_ == "PROPN" and doc[right].text[:1].isupper():
            right += 1
        if right > tok.i + 1 and tok.text[:1].isupper():
            spans.append((tok.i, right))
    return spans


def _mentions(doc: Doc, ctx: _Context) -> list[_Mention]:
    """Entity mentions of a message: projects, NER entities, names introduced by relation nouns, "my boss"."""
    out: list[_Mention] = []
    taken: set[int] = set()

    def add(text: str, start: int, end: int, label: str) -> _Mention | None:
        if any(i in taken for i in range(start, end)):
            return None
        name = ctx.known.resolve(canonical_name(text))
        if not name or canonical_key(name) in imp.FIRST_PERSON | imp.SECOND_PERSON:
            return None
        taken.update(range(start, end))
        m = _Mention(EntityMention(text, name, label), start, end)
        out.append(m)
        return m

    for start, end in _project_spans(doc):
        add(doc[start:end].text, start, end, "PROJECT")
    for ent in doc.ents:
        if ent.label_ not in LABELS:
            continue
        start = ent.start
        for i in range(ent.start, ent.end + 1):  # "Mochi and Tofu" names two entities, not one
            if i == ent.end or doc[i].pos_ == "CCONJ" or doc[i].text in (",", "&"):
                if i > start:
                    add(doc[start:i].text, start, i, LABELS[ent.label_])
                start = i + 1
    for tok in doc:
        if tok.i not in taken and tok.text[:1].isupper() and tok.pos_ in ("NOUN", "PROPN") and (
                tok.text in ctx.known):
            add(tok.text, tok.i, tok.i + 1, ctx.known.label(tok.text) or "OTHER")  # a name seen before
        if tok.pos_ != "PROPN" or tok.i in taken or not tok.text[:1].isupper():
            continue
        head_rel = imp.lemma(tok.head) in RELATION_NOUNS and tok.dep_ in ("appos", "compound", "npadvmod", "oprd")
        if tok.dep_ in ("oprd", "attr", "xcomp") and imp.lemma(tok.head) in ("name", "call") and \
                tok.head.dep_ == "acl":  # "a cat named Miso"
            owner_noun = imp.lemma(tok.head.head)
            add(tok.text, tok.i, tok.i + 1, "OTHER" if owner_noun in PET_NOUNS else "PERSON")
            continue
        appos_rel = any(c.dep_ == "appos" and imp.lemma(c) in RELATION_NOUNS for c in tok.children)
        if head_rel or appos_rel:  # "my dog Biscuit", "Anna, my sister": names NER missed
            rel = imp.lemma(tok.head) if head_rel else next(
                imp.lemma(c) for c in tok.children if c.dep_ == "appos")
            add(tok.text, tok.i, tok.i + 1, "OTHER" if rel in PET_NOUNS else "PERSON")
        elif tok.dep_ in ("nsubj", "nsubjpass") and tok.head.pos_ in ("VERB", "AUX"):
            add(tok.text, tok.i, tok.i + 1, "OTHER")  # a capitalised subject NER did not label: "Jess hates..."
    by_token = {i: m for m in out for i in range(m.start, m.end)}
    for tok in doc:
        word = imp.lemma(tok)
        if tok.pos_ != "NOUN" or word not in RELATION_NOUNS:
            continue
        poss = imp.possessor(tok)
        owner: str | None = None
        if poss is not None and poss.lower_ in _user_possessives(ctx):
            owner = "user"
        elif poss is not None and poss.i in by_token and by_token[poss.i].label in ("PERSON", "OTHER"):
            owner = by_token[poss.i].mention.canonical
        if owner is None:
            continue
        named = _named_by(tok, by_token)
        relation = f"{_snake(word)}_of"
        if named is not None:
            named.relations.append(Relation(named.mention.canonical, relation, owner))
            label = "PERSON" if named.label == "OTHER" and word not in PET_NOUNS else named.label
            named.mention = EntityMention(_relation_text(doc, tok, named) or named.mention.text,
                                          named.mention.canonical, label)
        elif owner == "user" and tok.i not in taken:
            taken.add(tok.i)
            label = "OTHER" if word in PET_NOUNS else "PERSON"
            text = doc[poss.i: tok.i + 1].text if poss is not None and poss.i < tok.i else tok.text
            m = _Mention(EntityMention(text, _node_name(tok), label), tok.i, tok.i + 1, unnamed=True)
            m.relations.append(Relation(m.mention.canonical, relation, "user"))
            out.append(m)
    out.sort(key=lambda m: m.start)
    return out


def _node_name(tok: Token) -> str:
    """ "my guitar teacher" -> "guitar teacher": an unnamed person is known by the relation."""
    parts = [c.lower_ for c in tok.lefts if c.dep_ == "compound"] + [imp.lemma(tok)]
    return " ".join(parts)


def _named_by(rel_noun: Token, by_token: dict[int, _Mention]) -> _Mention | None:
    """The named mention a relation noun describes, in any of the usual constructions."""
    for c in rel_noun.children:
        if c.dep_ in ("appos", "compound", "npadvmod", "attr") and c.i in by_token:
            return by_token[c.i]  # "my sister Anna"
        if c.dep_ == "acl":  # "a cat named Miso"
            for g in c.children:
                if g.dep_ in ("oprd", "attr", "dobj") and g.i in by_token:
                    return by_token[g.i]
    head = rel_noun.head
    if rel_noun.dep_ == "appos" and head.i in by_token:
        return by_token[head.i]  # "Anna, my sister"
    if rel_noun.dep_ == "attr" and imp.lemma(head) == "be":
        subj = imp.subject_of(head)
        if subj is not None and subj.i in by_token:
            return by_token[subj.i]  # "Anna Silva is my sister"
    if rel_noun.dep_ in ("nsubj", "nsubjpass") and imp.lemma(head) in ("be", "call", "name"):
        for c in head.children:
            if c.dep_ in ("attr", "oprd", "xcomp") and c.i in by_token:
                return by_token[c.i]  # "my manager is Sarah Chen", "his fiancée is called Lucy"
    return None


def _relation_text(doc: Doc, rel_noun: Token, named: _Mention) -> str | None:
    """ "my sister Anna" as written, when the phrase is contiguous and short."""
    poss = imp.possessor(rel_noun)
    lo = min(rel_noun.i, named.start, poss.i if poss is not None else rel_noun.i)
    hi = max(rel_noun.i + 1, named.end)
    if hi - lo > 5 or any(t.is_punct for t in doc[lo:hi]):
        return None
    return doc[lo:hi].text


def _mention_at(tok: Token, mentions: list[_Mention]) -> _Mention | None:
    for m in mentions:
        if m.start <= tok.i < m.end:
            return m
    return None


def _referent(subj: Token | None, feats: imp.SentenceFeatures, mentions: list[_Mention],
              ctx: _Context) -> str | None:
    """The canonical subject of a clause: "user", an entity name, a relation noun, or an event phrase."""
    if subj is None:
        return None
    kind = feats.subject_kind
    low = subj.lower_
    if kind == "first_person" and (low in imp.FIRST_PERSON or low in imp.SECOND_PERSON):
        return "user"
    if low in imp.THIRD_PERSON:
        return ctx.last_person if low in ("he", "she") else None
    m = _mention_at(subj, mentions)
    if m is not None:
        if m.unnamed:
            named = next((x for x in mentions if not x.unnamed and any(
                r.relation == m.relations[0].relation for r in x.relations)), None) if m.relations else None
            return named.mention.canonical if named is not None else m.mention.canonical
        return m.mention.canonical
    for c in subj.children:  # "my sister Anna" / "Anna, my sister"
        if c.dep_ in ("appos", "compound") and (cm := _mention_at(c, mentions)) is not None and not cm.unnamed:
            return cm.mention.canonical
    if kind == "event":
        return _phrase(subj, lemma_head=True)
    if kind == "first_person":
        return "user"
    return None


# ---------------------------------------------------------------- values


def _value_tokens(tok: Token, *, keep_of: bool = True) -> list[Token]:
    """Tokens of the noun phrase headed by ``tok``, without determiners, possessives or change words."""
    chosen: set[int] = {tok.i}
    for c in tok.lefts:
        if c.dep_ in ("amod", "compound", "nummod", "nmod", "quantmod", "npadvmod", "advmod") and (
                c.lower_ not in CHANGE_MODIFIERS):
            chosen.update(t.i for t in c.subtree if t.dep_ not in ("det", "poss", "case", "punct"))
    for c in tok.rights:
        if c.dep_ in ("compound", "flat", "nummod", "npadvmod") or (keep_of and c.dep_ == "prep" and c.lower_ == "of"):
            chosen.update(t.i for t in c.subtree if t.dep_ not in ("det",))
    if tok.ent_type_ and tok.ent_type_ not in ("CARDINAL",):
        for ent in tok.doc.ents:
            if ent.start <= tok.i < ent.end:
                chosen.update(range(ent.start, ent.end))
    # "555-0142", "7:45am": keep a token glued to its neighbours
    doc = tok.doc
    lo, hi = min(chosen), max(chosen)
    while lo > 0 and not doc[lo - 1].whitespace_ and any(ch.isdigit() for ch in doc[lo - 1].text):
        lo -= 1
    while hi + 1 < len(doc) and not doc[hi].whitespace_ and doc[hi + 1].text not in (".", ",", "!", "?", ";",
                                                                                    ":", ")"):
        hi += 1
    chosen.update(range(lo, hi + 1))
    # "my new number" drops "new"; "New York" keeps it
    return [doc[i] for i in sorted(chosen)
            if i == tok.i or doc[i].lower_ not in CHANGE_MODIFIERS or doc[i].ent_type_ or doc[i].pos_ == "PROPN"]


def _join(tokens: list[Token], replace: dict[int, str] | None = None) -> str:
    """Tokens as written (their own spacing between neighbours), optionally replacing some words."""
    out = ""
    for n, t in enumerate(tokens):
        out += (replace or {}).get(t.i, t.text)
        if n + 1 < len(tokens):
            out += t.whitespace_ if tokens[n + 1].i == t.i + 1 else " "
    return out


def _phrase(tok: Token, *, lemma_head: bool = False, keep_of: bool = True) -> str:
    """A normalised noun phrase value: compounds, modifiers, an "of" complement; entities kept whole."""
    tokens = _value_tokens(tok, keep_of=keep_of)
    if lemma_head and tok.pos_ == "NOUN":
        return _norm(_join(tokens, {tok.i: imp.lemma(tok)}))
    return _norm(canonical_name(_join(tokens)) if tok.pos_ == "PROPN" else _join(tokens))


def _attribute(noun: Token) -> str:
    """ "my new phone number" -> "phone", "my favourite cuisine" -> "favorite_cuisine"."""
    parts: list[str] = []
    for c in noun.lefts:
        if c.dep_ in ("compound", "amod", "nmod") and c.lower_ not in CHANGE_MODIFIERS:
            parts.extend(t.lower_ for t in c.subtree if t.dep_ not in ("det", "poss", "case", "punct"))
    parts.append(noun.lower_)
    attr = _snake(" ".join("favorite" if p in ("favourite", "fave") else p for p in parts))
    return ATTRIBUTE_SYNONYMS.get(attr, attr)


def _time_value(pred: Token, exclude: set[int]) -> str:
    """Date and time words under a predicate ("Friday", "June 14 at 7:45am" -> "june 14 7:45am")."""
    chosen: list[Token] = []
    for t in sorted(pred.subtree, key=lambda t: t.i):
        if t.i in exclude or t.lower_ in ("now", "again", "instead", "currently", "still"):
            continue
        dated = t.ent_type_ in ("DATE", "TIME") or t.lower_ in WEEKDAYS_MONTHS
        clock = bool(CLOCK.match(t.text)) or (t.lower_ in ("am", "pm") and t.i > 0 and t.doc[t.i - 1].like_num)
        part_of_day = t.lower_ in TIME_OF_DAY and any(
            c.ent_type_ in ("DATE", "TIME") or c.lower_ in WEEKDAYS_MONTHS for c in t.children)
        if dated or part_of_day or (clock and (t.head.lower_ in ("at", "by", "until", "from", "to", "till")
                                               or t.head.ent_type_ in ("DATE", "TIME") or t.lower_ in ("am",
                                                                                                      "pm"))):
            chosen.append(t)
    chosen = [t for t in chosen if not ((t.pos_ == "ADP" and t.lower_ != "of") or t.lower_ in ("the", "a", "an"))]
    return _norm(_join(chosen))


def _is_place(tok: Token) -> bool:
    """A named place ("Lisbon", "New York"), not "a two-bedroom apartment" or "next week".

    After "live in"/"move to" a proper noun is a place even when NER guessed PERSON ("Braga").
    """
    return tok.ent_type_ in ("GPE", "LOC", "FAC") or (tok.pos_ == "PROPN" and tok.ent_type_ not in (
        "DATE", "TIME"))


def _is_occupation(noun: Token) -> bool:
    word = imp.lemma(noun)
    return noun.pos_ in ("NOUN", "PROPN") and (word in OCCUPATIONS or bool(OCCUPATION_SUFFIX.search(word)))


def _age(tok: Token) -> str | None:
    """ "29", "4 years old" -> the number."""
    if tok.like_num:
        return _norm(tok.text)
    if tok.lower_ == "old":
        for c in tok.children:
            if c.dep_ == "npadvmod":
                nums = [g for g in c.children if g.like_num]
                if nums:
                    return _norm(nums[0].text)
    return None


def _first_pobj(tok: Token, preps: Iterable[str]) -> Token | None:
    wanted = set(preps)
    for c in tok.children:
        if c.dep_ in ("prep", "dative") and c.lower_ in wanted:
            for g in c.children:
                if g.dep_ == "pobj":
                    return g
    return None


def _nested_pobj(tok: Token, preps: Iterable[str], depth: int = 2) -> Token | None:
    """A pobj of one of ``preps`` on ``tok`` or on a noun hanging from it ("work as a nurse at X")."""
    wanted = tuple(preps)
    found = _first_pobj(tok, wanted)
    if found is not None or depth == 0:
        return found
    for c in tok.children:
        nouns = [c] if c.dep_ in ("dobj", "attr") else [g for g in c.children if g.dep_ == "pobj"] \
            if c.dep_ == "prep" else []
        for n in nouns:
            found = _nested_pobj(n, wanted, depth - 1)
            if found is not None:
                return found
    return None


def _owner(noun: Token, mentions: list[_Mention], ctx: _Context) -> str | None:
    """Whose attribute a possessed noun is: "my X" -> user, "Anna's X" -> Anna, "my mom's X" -> mom."""
    poss = imp.possessor(noun)
    if poss is None:
        return None
    if poss.lower_ in _user_possessives(ctx):
        return "user"
    m = _mention_at(poss, mentions)
    if m is not None and not m.unnamed:
        return m.mention.canonical
    if poss.lower_ in ("his", "her") and ctx.last_person:
        return ctx.last_person
    if poss.pos_ == "NOUN" and imp.lemma(poss) in RELATION_NOUNS | PET_NOUNS:
        inner = imp.possessor(poss)
        if inner is not None and inner.lower_ in _user_possessives(ctx):
            for c in poss.children:  # "my sister Anna's birthday"
                if c.dep_ in ("appos", "compound") and (cm := _mention_at(c, mentions)) is not None:
                    return cm.mention.canonical
            return _node_name(poss)
    return None


# ---------------------------------------------------------------- slots


def _user_possessives(ctx: _Context) -> frozenset[str]:
    return frozenset({"your", "yours"}) if ctx.role != "user" else imp.FIRST_POSSESSIVE


def _slot(pred: Token, subj: Token | None, who: str | None, feats: imp.SentenceFeatures,
          mentions: list[_Mention], ctx: _Context) -> Slot | None:
    """The (subject, attribute, value) a clause asserts, or None when it asserts no single-valued fact."""
    if feats.subject_kind in ("assistant", "vague", "second_person"):
        return None
    word = imp.lemma(pred)
    sched = _schedule_slot(pred, subj, feats)
    if sched is not None:
        return sched
    if word == "call" and not feats.negated:
        # "call me Pri", "my friends call me Pri"
        dobj = next((c for c in pred.children if c.dep_ == "dobj"), None)
        name = next((c for c in pred.children if c.dep_ in ("oprd", "xcomp", "attr", "npadvmod")), None)
        if dobj is not None and dobj.lower_ in ("me", "us") and name is not None:
            return Slot("user", "preferred_name", _phrase(name))
    if feats.modal in ("could", "might", "may", "should", "will", "shall") or feats.future:
        return None  # plans and possibilities do not replace current facts
    if word in imp.PREFERENCE_VERBS or (word == "stand" and feats.negated):
        return _preference_slot(pred, who, feats) if feats.modal != "would" else None
    idiom = imp.preference_idiom(pred)
    if idiom is not None and subj is not None and feats.modal is None:
        owner = _owner(idiom, mentions, ctx) or "user"
        thing = _phrase(subj, lemma_head=True, keep_of=False)  # "horror movies are not my thing"
        return Slot(owner, f"likes_{_snake(thing)}", "no" if feats.negated else "yes") if thing else None
    if feats.negated or feats.modal == "would":
        return None
    if word == "be" and not any(c.dep_ == "aux" for c in pred.children):
        return _copula_slot(pred, subj, who, mentions, ctx)
    if word in ("call", "name") and pred.tag_ == "VBN" and subj is not None:
        return _copula_slot(pred, subj, who, mentions, ctx)  # "my physio is called Greta"
    if who is None:
        return None
    return _verb_slot(pred, word, who, feats)


def _verb_slot(pred: Token, word: str, who: str, feats: imp.SentenceFeatures) -> Slot | None:
    if word in ("live", "reside") or (word == "base" and pred.tag_ == "VBN"):
        obj = _first_pobj(pred, ("in", "at", "near", "outside"))
        return Slot(who, "lives_in", _phrase(obj)) if obj is not None and _is_place(obj) else None
    if word in ("move", "relocate") and feats.subject_kind in ("first_person", "person"):
        obj = _first_pobj(pred, ("to",))
        if obj is None:
            for c in pred.children:  # "moved back to X" can hang "to X" under "back"
                if c.dep_ in ("advmod", "prt"):
                    obj = _first_pobj(c, ("to",))
        return Slot(who, "lives_in", _phrase(obj)) if obj is not None and _is_place(obj) else None
    if word in ("work", "intern"):
        org = _nested_pobj(pred, ("at", "for"))
        if org is not None and (org.pos_ == "PROPN" or org.ent_type_ in ("ORG", "GPE", "FAC", "PRODUCT")):
            return Slot(who, "works_at", _phrase(org))
        role = _first_pobj(pred, ("as",))
        return Slot(who, "job_title", _phrase(role, keep_of=False)) if role is not None else None
    if word == "join":
        obj = next((c for c in pred.children if c.dep_ == "dobj"), None)
        if obj is not None and obj.pos_ == "PROPN":
            return Slot(who, "works_at", _phrase(obj))
        return None
    if word in ("change", "update", "set", "switch", "reset") and feats.subject_kind == "first_person":
        # "I changed the bike lock code to 2745": the object is the attribute, "to" gives the value
        obj = next((c for c in pred.children if c.dep_ == "dobj" and c.pos_ == "NOUN"), None)
        value = _first_pobj(pred, ("to",))
        if obj is not None and value is not None and imp.lemma(obj) not in imp.EVENT_NOUNS:
            return Slot(who, _attribute(obj), _phrase(value))
        return None
    if word in ("get", "start", "land", "accept", "take", "begin", "find"):
        obj = next((c for c in pred.children if c.dep_ == "dobj"), None)
        if obj is not None and imp.lemma(obj) in JOB_NOUNS:
            org = _first_pobj(obj, ("at", "with", "in")) or _first_pobj(pred, ("at", "with"))
            if org is not None and org.pos_ == "PROPN":
                return Slot(who, "works_at", _phrase(org))
        return None
    if word == "employ" and pred.tag_ == "VBN":
        agent = next((c for c in pred.children if c.dep_ == "agent"), None)
        org = next((g for g in agent.children if g.dep_ == "pobj"), None) if agent is not None else None
        return Slot(who, "works_at", _phrase(org)) if org is not None else None
    if word == "promote":
        role = _first_pobj(pred, ("to",))
        return Slot(who, "job_title", _phrase(role, keep_of=False)) if role is not None else None
    if word == "turn":
        for c in pred.children:
            age = _age(c) if c.dep_ in ("dobj", "attr", "oprd", "npadvmod", "acomp") else None
            if age:
                return Slot(who, "age", age)
        return None
    if word == "bear" and pred.tag_ == "VBN":
        obj = _first_pobj(pred, ("on", "in"))
        if obj is None:
            return None
        if obj.ent_type_ == "DATE" or obj.lower_ in WEEKDAYS_MONTHS:
            return Slot(who, "birthday", _time_value(pred, set()))
        return Slot(who, "birthplace", _phrase(obj))
    return _quantity_slot(pred, who, feats)


def _event_name(event: Token) -> str:
    """ "the team meeting" -> "team meeting"; "my flight to Lima" -> "flight to lima" (one per destination
    or partner; a bare "the flight" later still matches it by its first word)."""
    tokens = [t for t in _value_tokens(event, keep_of=False) if t.dep_ != "prep"]
    # "my lessons" and "the lesson" are one event: the head noun is lemmatised
    name = _join(tokens, {event.i: imp.lemma(event)} if event.pos_ == "NOUN" else None)
    target = _first_pobj(event, ("to", "with"))
    if target is not None and target.pos_ == "PROPN":
        prep = next(c.lower_ for c in event.children if c.dep_ == "prep" and target in c.children)
        name += f" {prep} {_phrase(target)}"
    return _norm(name)


def _schedule_slot(pred: Token, subj: Token | None, feats: imp.SentenceFeatures) -> Slot | None:
    """ "the meeting moved to Friday" -> Slot("meeting", "scheduled_for", "friday")."""
    word = imp.lemma(pred)
    event: Token | None = None
    if word in TRAVEL_VERBS and feats.subject_kind == "first_person" and not feats.negated:
        # "I'm flying to Lima on October 2" schedules a flight like "my flight to Lima is on October 2"
        dest = _first_pobj(pred, ("to",))
        value = _time_value(pred, {t.i for t in subj.subtree} if subj is not None else set())
        if value and dest is not None and dest.pos_ == "PROPN":
            return Slot(f"{TRAVEL_VERBS[word]} to {_phrase(dest)}", "scheduled_for", value)
        return None
    if feats.subject_kind == "event" and subj is not None:
        event = subj
    elif word in imp.SCHEDULE_CHANGE_VERBS or word in ("schedule", "set", "plan", "book"):
        event = next((c for c in pred.children if c.dep_ in ("dobj", "nsubjpass")
                      and imp.lemma(c) in imp.EVENT_NOUNS), None)
    if event is None or feats.negated or feats.modal in ("would", "could", "might", "may", "should"):
        return None
    value = _time_value(pred, {t.i for t in event.subtree})
    if not value and (word == "cancel" or (word == "call" and any(c.lower_ == "off" for c in pred.children))):
        value = "cancelled"
    if not value and word in imp.SCHEDULE_CHANGE_VERBS:
        target = _first_pobj(pred, ("to", "until", "for", "till"))
        value = _phrase(target) if target is not None else ""
    if not value:
        return None
    subject = _event_name(event)
    # "Tom's wedding" and "the wedding" are one slot: the possessor stays in the text, not the key
    return Slot(subject, "scheduled_for", value)


def _preference_slot(pred: Token, who: str | None, feats: imp.SentenceFeatures) -> Slot | None:
    """ "I love spicy food" -> likes_spicy_food=yes; "I prefer dark mode" -> prefers_mode=dark mode."""
    if who is None:
        return None
    word = imp.lemma(pred)
    obj = imp.preference_object(pred)
    if obj is None:
        return None
    if obj.pos_ in ("VERB", "AUX"):  # "I love hiking", "I like to cook"
        base = imp.lemma(obj)
        thing = obj.lower_ if obj.tag_ == "VBG" else (base[:-1] if base.endswith("e") else base) + "ing"
    else:
        thing = _phrase(obj, lemma_head=True, keep_of=False)
    if not thing:
        return None
    if word == "prefer":
        other = _first_pobj(pred, ("over", "to", "than")) or _first_pobj(obj, ("over", "to", "than"))
        head = imp.lemma(obj)
        if other is not None:
            pair = sorted([_snake(head), _snake(imp.lemma(other))])
            return Slot(who, f"prefers_{pair[0]}_or_{pair[1]}", thing)
        return Slot(who, f"prefers_{_snake(head)}", thing)
    positive = word not in imp.NEGATIVE_PREFERENCE and word != "stand"
    if feats.negated and word != "stand":
        positive = not positive
    return Slot(who, f"likes_{_snake(thing)}", "yes" if positive else "no")


def _copula_slot(pred: Token, subj: Token | None, who: str | None, mentions: list[_Mention],
                 ctx: _Context) -> Slot | None:
    """Slots from "X is Y": "my gate code is 4512", "I'm 29", "Green is my favourite colour"."""
    if subj is None:
        return None
    comps = [c for c in pred.children if c.dep_ in ("attr", "acomp", "oprd")]
    preps = [c for c in pred.children if c.dep_ == "prep"]
    comp = comps[0] if comps else None
    if comp is not None and comp.pos_ == "NOUN" and any(c.lower_ in ("favorite", "favourite", "fave")
                                                        for c in comp.children):
        owner = _owner(comp, mentions, ctx)  # the subject is the value
        return Slot(owner, _attribute(comp), _phrase(subj)) if owner else None
    subj_word = imp.lemma(subj)
    owner = _owner(subj, mentions, ctx) if subj.pos_ == "NOUN" else None
    if owner is not None and subj_word in RELATION_NOUNS | PET_NOUNS:
        if comp is not None and comp.pos_ == "PROPN":
            return Slot(owner, _attribute(subj), _phrase(comp))  # "my doctor is Dr. Okafor"
        return _person_copula(who or _node_name(subj), comp, preps) if who != "user" else None
    if owner is not None:
        if any(c.lower_ in PAST_MODIFIERS for c in subj.lefts):
            return None  # "my old address was..." is history, not the current value
        attr = _attribute(subj)
        if comp is not None:
            if attr == "age":
                return Slot(owner, "age", _age(comp) or _phrase(comp))
            return Slot(owner, attr, _norm(comp.text) if comp.pos_ == "ADJ" else _phrase(comp))
        value = _time_value(pred, {t.i for t in subj.subtree})
        if not value and preps and preps[0].lower_ not in ("with", "about", "for", "like", "because"):
            pobj = next((g for g in preps[0].children if g.dep_ == "pobj"), None)
            value = _phrase(pobj) if pobj is not None else ""
        return Slot(owner, attr, value) if value else None
    if who is None or imp.lemma(subj) in imp.EVENT_NOUNS:
        return None
    return _person_copula(who, comp, preps)


def _person_copula(who: str, comp: Token | None, preps: list[Token]) -> Slot | None:
    """ "I'm 29", "Tiago is a chef", "I'm Priya", "Maria is allergic to shellfish", "I'm from Porto"."""
    if comp is not None:
        age = _age(comp)
        if age and (comp.like_num or comp.lower_ == "old"):
            return Slot(who, "age", age)
        if comp.pos_ == "PROPN" and comp.ent_type_ == "PERSON" and who == "user":
            return Slot(who, "name", _phrase(comp))
        if _is_occupation(comp):
            return Slot(who, "job_title", _phrase(comp, keep_of=False))
        if comp.lower_ in ("allergic", "intolerant"):
            thing = _first_pobj(comp, ("to",)) or next((c for c in comp.children if c.dep_ == "xcomp"), None)
            if thing is None:
                thing = next((g for p in preps if p.lower_ == "to" for g in p.children if g.dep_ == "pobj"), None)
            if thing is not None:
                return Slot(who, f"allergic_to_{_snake(_phrase(thing, lemma_head=True))}", "yes")
        return None
    for p in preps:
        if p.lower_ == "from":
            obj = next((g for g in p.children if g.dep_ == "pobj"), None)
            if obj is not None and obj.pos_ == "PROPN":
                return Slot(who, "hometown", _phrase(obj))
    return None


def _quantity_slot(pred: Token, who: str, feats: imp.SentenceFeatures) -> Slot | None:
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
    value = _norm(" ".join([nums[0].text] + [_join(list(f.subtree)) for f in freq]))
    return Slot(who, f"{_snake(imp.lemma(pred))}_{_snake(imp.lemma(obj))}_count", value)


# ---------------------------------------------------------------- relations


RELATION_MAP = {
    ("live", "in"): "lives_in", ("live", "at"): "lives_in", ("reside", "in"): "lives_in",
    ("move", "to"): "lives_in", ("relocate", "to"): "lives_in", ("base", "in"): "lives_in",
    ("work", "at"): "works_at", ("work", "for"): "works_at", ("intern", "at"): "works_at",
    ("join", ""): "works_at", ("bear", "in"): "born_in", ("bear", "on"): "born_on",
}


def _relation_name(verb: Token, prep: str) -> str:
    word = imp.lemma(verb)
    mapped = RELATION_MAP.get((word, prep))
    if mapped:
        return mapped
    if word == "be":
        return f"is_{prep}" if prep else "is"
    base = _third_singular(_snake(word))
    return f"{base}_{prep}" if prep else base


def _relations(pred: Token, who: str | None, feats: imp.SentenceFeatures,
               mentions: list[_Mention]) -> list[Relation]:
    """Subject–verb–object edges whose object is a named entity; the preposition joins the relation name."""
    if who is None or feats.negated or feats.subject_kind in ("assistant", "second_person", "vague"):
        return []
    if feats.modal in ("would", "could", "might", "may", "should"):
        return []
    out: list[Relation] = []

    def obj_name(tok: Token) -> str | None:
        m = _mention_at(tok, mentions)
        if m is None or m.label not in GRAPH_LABELS or m.mention.canonical == who:
            return None
        return m.mention.canonical

    word = imp.lemma(pred)
    for c in pred.children:
        if c.dep_ == "dobj" and (name := obj_name(c)):
            out.append(Relation(who, _relation_name(pred, ""), name))
        if c.dep_ == "prep":
            for g in c.children:
                if g.dep_ == "pobj" and (name := obj_name(g)):
                    rel = _relation_name(pred, c.lower_)
                    place = _mention_at(g, mentions)
                    if rel == "lives_in" and (place is None or place.label != "PLACE"):
                        continue
                    out.append(Relation(who, rel, name))
        if c.dep_ in ("dobj", "pobj") and imp.lemma(c) in JOB_NOUNS:
            org = _first_pobj(c, ("at", "with"))
            if org is not None and (name := obj_name(org)):
                out.append(Relation(who, "works_at", name))
    if word == "work":
        org = _nested_pobj(pred, ("at", "for"))
        if org is not None and (name := obj_name(org)):
            out.append(Relation(who, "works_at", name))
    return out


# ---------------------------------------------------------------- time


def _event_time(text: str, ref: datetime | None) -> datetime | None:
    """Start of the first time expression in ``text``: forward for plans, backward for reports."""
    from memstrata.ingest.timing import event_time

    return event_time(text, ref)
