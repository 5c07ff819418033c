"""The rules extractor: messages in, memory candidates out.

Prepares each message (code blocks, emphasis, laughter and topic labels removed), parses them in one batch,
drops sentences the drop rules reject, splits the rest into clauses and assembles one :class:`Candidate` per
clause from its score, slot, entities and relations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from memstrata.ingest.candidate import Candidate, Message
from memstrata.ingest.dedup import normalize_text
from memstrata.ingest.entities import EntityIndex
from memstrata.ingest.importance import DEFAULT_THRESHOLD, WEIGHTS, score_features
from memstrata.ingest.lexicon import ADDRESS_ME, EXPLICIT_CUE, GRAPH_LABELS, LAUGHTER
from memstrata.ingest.nlp import parse_many
from memstrata.ingest.rules.clauses import clause_text, goes_on_about, joined_text, split_clauses
from memstrata.ingest.rules.mentions import Context, Mention, find_mentions, mention_at, referent
from memstrata.ingest.rules.relations import add_co_mentions, clause_relations
from memstrata.ingest.rules.slots import clause_slot
from memstrata.ingest.sentence import (
    SentenceFeatures,
    analyze,
    clause_instruction,
    is_sarcastic,
    set_predicate,
    strip_emphasis,
)
from memstrata.ingest.syntax import lemma

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span


TOPIC_LABEL = re.compile(
    r"^\s*(?:(?:hi|hey|hello|ok|okay|so|oh|yo)\b[,!.]*\s+)*(?P<label>[A-Za-z][A-Za-z' ]{0,30}?)\s*:\s+(?=\S)")
CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
TASK_LEMMAS_EXEMPT = frozenset({"remember", "note", "keep", "know", "forget", "update", "reminder"})
TASK_LABEL = re.compile(r"(?i)^(?:summari[sz]e|translate|rewrite|fix|explain|write|check|review|proofread)\b")


@dataclass
class RulesExtractor:
    """Extracts memory candidates from chat messages with spaCy and linguistic rules; no network, no LLM.

    ``threshold``: candidates scoring below it are not returned (the message stays in episodic storage).
    ``include_assistant``: also read assistant messages ("you" then means the user).
    """

    threshold: float = DEFAULT_THRESHOLD
    include_assistant: bool = False

    def extract(self, messages: Sequence[Message], now: datetime | None = None,
                known_entities: EntityIndex | Iterable[str] = ()) -> list[Candidate]:
        """Candidates for ``messages``, in message order.

        ``now`` is the reference time for relative dates when a message has no timestamp.
        ``known_entities`` are canonical names already stored in the scope (or an ``EntityIndex`` of
        them, cheaper to reuse): they resolve aliases ("Anna" -> "Anna Silva") and are not new entities.
        """
        base = known_entities if isinstance(known_entities, EntityIndex) else EntityIndex(known_entities)
        ctx = Context(base.overlay())
        roles = {"user", "assistant"} if self.include_assistant else {"user"}
        todo: list[tuple[Message, _Prepared]] = []
        for m in messages:
            if m.role not in roles or not m.content or not m.content.strip():
                continue
            if is_sarcastic(m.content):
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
                  ctx: Context) -> list[Candidate]:
        if _is_task_with_payload(doc):
            return []
        ctx.role = msg.role
        mentions = find_mentions(doc, ctx)
        produced: list[Candidate] = []
        spans: list[set[int] | None] = []  # each candidate's tokens in ``doc`` (None: read from another text)
        kept_out: list[set[int]] = []  # the tokens of each clause that gave no candidate
        for n, sent in enumerate(doc.sents):
            feats = analyze(sent, role=msg.role, cue=prep.cue and n == 0, banter=prep.banter)
            if feats.drop == "question" and (lead := leading_statement(sent.text)) is not None:
                led = self._from_doc(msg, parse_many([lead])[0], _Prepared(lead), now, ctx)
                produced.extend(led)
                spans.extend([None] * len(led))
                continue
            if feats.drop is not None or feats.root is None:
                continue
            clauses = split_clauses(sent, feats.root)
            for pred, text, ids in clauses:
                clause = feats if pred == feats.root else set_predicate(replace(feats), pred, msg.role)
                own = clause_instruction(sent, pred, ids) if len(clauses) > 1 and not feats.instruction else None
                if own is not None:  # "..., so from now on do X"
                    clause = replace(clause, instruction=True, explicit_cue=True)
                    text, ids = clause_text(sent, own), own
                cand = self._candidate(msg, sent, clause, text, ids, mentions, now, ctx)
                if cand is not None:
                    produced.append(cand)
                    spans.append(ids)
                elif ids:
                    kept_out.append(ids)
        produced = _with_what_it_goes_on_about(doc, produced, spans, kept_out)
        if prep.pleased:
            for cand in produced:
                text = _ADDED_PLEASE.sub("", cand.text, count=1)
                cand.text = text[:1].upper() + text[1:]
        for m in mentions:
            if m.label in GRAPH_LABELS and not m.unnamed:
                ctx.known.add(m.mention.canonical, m.label)
        if produced:
            add_co_mentions(produced[0], produced, mentions)
        return produced

    def _candidate(self, msg: Message, sent: Span, feats: SentenceFeatures, text: str, ids: set[int],
                   mentions: list[Mention], now: datetime | None, ctx: Context) -> Candidate | None:
        pred = feats.root
        assert pred is not None
        subj = feats.subject
        if feats.subject_kind == "thing" and subj is not None and (m := mention_at(subj, mentions)) is not None \
                and m.label in ("PERSON", "OTHER"):
            feats.subject_kind = "person"  # a known name the tagger took for a common noun ("Miso hates...")
        who = referent(subj, feats, mentions, ctx)
        slot = clause_slot(pred, subj, who, feats, mentions, ctx)
        extra: dict[str, float] = {}
        if slot is not None:
            if slot.subject == "user":
                extra["first_person_fact"] = WEIGHTS["first_person_fact"]
            elif slot.attribute == "scheduled_for":
                extra["plan"] = WEIGHTS["plan"]
            else:
                extra["relationship"] = WEIGHTS["relationship"]
        score, reasons = score_features(sent, feats, ctx.known, extra)
        if score < self.threshold or not reasons:
            return None
        own = [m for m in mentions if m.start in ids or m.end - 1 in ids]
        relations = clause_relations(pred, who, feats, mentions)
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


def _unique(items: list) -> list:  # type: ignore[type-arg]
    return list(dict.fromkeys(items))


def _with_what_it_goes_on_about(doc: Doc, produced: list[Candidate], spans: list[set[int] | None],
                                kept_out: list[set[int]]) -> list[Candidate]:
    """Each candidate joined with the clauses after it (in the order said) that go on about it through a
    pronoun ("..., now it's three 12-hour shifts"): one memory that says what it is about and its value. A
    following clause that gave a candidate of its own is folded in; one that gave none (too slight to keep
    alone) is added to the text, since it may hold the value."""
    placed = sorted([(min(ids), n, ids) for n, ids in enumerate(spans) if ids]
                    + [(min(ids), -1, ids) for ids in kept_out], key=lambda x: x[0])
    out: dict[int, Candidate] = dict(enumerate(produced))
    into: int | None = None
    covered: set[int] = set()
    for _, n, ids in placed:
        if into is not None and goes_on_about(doc, covered, ids) \
                and (text := joined_text(doc, out[into].text, covered, ids)) is not None:
            prev = out[into]
            if n < 0:
                out[into] = replace(prev, text=text)
            else:
                cand = out.pop(n)
                out[into] = replace(prev, text=text, importance=max(prev.importance, cand.importance),
                                    reasons=_unique(prev.reasons + cand.reasons),
                                    kind=cand.kind if prev.kind == "fact" else prev.kind,
                                    entities=_unique(prev.entities + cand.entities),
                                    relations=_unique(prev.relations + cand.relations),
                                    slot=prev.slot or cand.slot, event_time=prev.event_time or cand.event_time,
                                    confidence=min(prev.confidence, cand.confidence))
            covered = covered | ids
            continue
        into, covered = (n, ids) if n >= 0 else (None, set())
    return [out[n] for n in sorted(out)]


def _kind(reasons: list[str], feats: SentenceFeatures) -> str:
    if feats.instruction or feats.role == "user" and ADDRESS_ME.search(feats.text):
        return "instruction"  # "From now on call me Sam": how to address the user is a standing instruction
    if "schedule_change" in reasons:
        return "event"
    if "preference" in reasons:
        return "preference"
    if "plan" in reasons:
        return "plan"
    if "relationship" in reasons and feats.subject_kind != "first_person":
        return "relationship"
    return "fact"


# "Rent's 875", "My car's a Golf": the tagger reads such an "'s" as a possessive and finds no verb. Before a
# determiner, a number, a currency or an adverb it is "is" (a possessive is followed by a noun).
_IS_CONTRACTED = re.compile(
    r"(?<=[A-Za-z])(?<![Ll]et)['\u2019]s(?=\s+(?:a|an|the|my|our|his|her|their|its|in|at|on|with|from|now|"
    r"still|currently|just|not|no|very|really|so|too|about|around|over|under|up|down|back|done|off|finally|"
    r"always|never|usually|pretty|quite|only|also|gone|moved|going|getting|been|sorted|fine|great|good)\b|"
    r"\s*[\d£$€])"
)

# "im on giffgaff", "ive got a cold": the apostrophe left out. The tagger splits "im" into "i" and a verb "m" and
# may take a later word for a second verb; neither is any other English word.
_I_AM_UNMARKED = re.compile(r"\b([Ii])(m|ve)\b(?=\s+[a-z])")


# A bare imperative to the assistant with a lasting cue before or after it: "From now on, reply in German.",
# "Cite sources henceforth." The tagger takes such a verb for a noun unless "please" comes before it, so one is
# put there while parsing and taken out of what is kept.
_ASSISTANT_VERBS = (r"reply|respond|answer|write|use|cite|call|address|speak|talk|keep|give|show|list|format|"
                    r"include|add|avoid|stop|start|explain|send|put|make|ask|tell|try|refer|sign|summari[sz]e|"
                    r"translate|check|mention|remind|assume|treat|skip|spell|stick|switch|quote|link|number|"
                    r"label|limit|round|convert|default|suggest|recommend|greet|end|open|close")
_LASTING_LEAD = (r"from now on|from here on|going forward|moving forward|henceforth|hereafter|in (?:the )?future|"
                 r"from today(?: on)?|by default|until further notice")
_IMPERATIVE_AFTER_CUE = re.compile(rf"(?:(?<=^)|(?<=[.!?]\s))((?:{_LASTING_LEAD}),?\s+)(?=(?:{_ASSISTANT_VERBS})\b)",
                                   re.IGNORECASE)
_IMPERATIVE_BEFORE_CUE = re.compile(
    rf"(?:(?<=^)|(?<=[.!?]\s))(?=(?:{_ASSISTANT_VERBS})\b[^.!?]*\b(?:{_LASTING_LEAD})\b)", re.IGNORECASE)
_ADDED_PLEASE = re.compile(rf"\b[Pp]lease (?=(?:{_ASSISTANT_VERBS})\b)", re.IGNORECASE)


def _lasting_imperatives(text: str) -> tuple[str, bool]:
    marked = _IMPERATIVE_AFTER_CUE.sub(lambda m: m.group(1) + "please ", text)
    marked = _IMPERATIVE_BEFORE_CUE.sub("please ", marked)
    return marked, marked != text


@dataclass
class _Prepared:
    text: str
    cue: bool = False
    banter: bool = False
    pleased: bool = False  # "please" was put before a lasting imperative (see _lasting_imperatives)

_NAME_BEFORE = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w-]*$")
_DETERMINER_AFTER = re.compile(r"\s+(?:a|an|the|my|our|his|her|their)\b|\s*[\d£$€]")


def _expand_is(m: re.Match[str]) -> str:
    """"Rent's £875" and "Dave's a plumber" say "is"; "I'm at St Vincent's now" names a place: a name inside a
    sentence keeps its "'s" unless a determiner or a number follows."""
    before = m.string[: m.start()]
    if _NAME_BEFORE.search(before) and not _DETERMINER_AFTER.match(m.string, m.end()):
        return m.group(0)
    return " is"


def _prepare(content: str) -> _Prepared:
    """Drop code blocks, emphasis, laughter and a leading topic label ("Update:", "Reminder:") before parsing."""
    text = CODE_BLOCK.sub(" ", content)
    text = strip_emphasis(text)
    text = _IS_CONTRACTED.sub(_expand_is, text)
    text = _I_AM_UNMARKED.sub(lambda m: "I'" + m.group(2), text)
    banter = bool(LAUGHTER.search(text))
    if banter:
        # "Miso hates the vacuum haha": the parser takes a trailing "haha" for the object
        text = LAUGHTER.sub(" ", text)
        text = re.sub(r"\s+([.,!?])", r"\1", re.sub(r"[ \t]+", " ", text))
    text = text.strip()
    text, pleased = _lasting_imperatives(text) if "please" not in text.lower() else (text, False)
    cue = False
    m = TOPIC_LABEL.match(text)
    if m and len(m.group("label").split()) <= 3:
        label = m.group("label")
        cue = bool(EXPLICIT_CUE.match(label))
        if cue or not TASK_LABEL.match(label):
            text = text[m.end():]
    return _Prepared(text.strip(), cue, banter, pleased)


# "<statement>, <question>?": where the question begins after a comma.
_QUESTION_TAIL = re.compile(
    r",\s*(?:(?:so|and|but|then)\s+)?(?:what|which|who|whom|whose|where|when|why|how|do|does|did|can|could|"
    r"should|shall|would|will|is|are|am|was|were|has|have|any|anything|got any|thoughts|ideas|right|ok|okay|"
    r"yeah|no|tips|advice|suggestions|recommendations)\b[^?]*\?\s*$",
    re.IGNORECASE,
)
# A lead that only sets up a supposition is no statement ("If I moved to Cardiff, would ...?").
_SUPPOSING = re.compile(r"^\s*(?:if|what if|suppose|supposing|in case|unless|whether|say|imagine|when)\b",
                        re.IGNORECASE)
# A lead that only announces the question ("So I was wondering, ...").
_ASKING = re.compile(r"\b(?:wonder(?:ing|ed)?|curious|question|quick one|ask(?:ing)?|help|confused|not sure)\b",
                     re.IGNORECASE)
# A lead given as the reason for the question still states it ("Now that I'm vegan, what should I cook?").
_GIVEN = re.compile(r"^\s*(?:(?:so|and|but|ok|okay|well)\s*,?\s+)?(?:now that|since|given that|seeing as|as)\s+",
                    re.IGNORECASE)


def leading_statement(sentence: str) -> str | None:
    """The statement a question opens with, or None: "My phone's an iPhone 15, does that support eSIM?" ->
    "My phone's an iPhone 15." The question itself stays no fact; what the user said before it is one."""
    m = _QUESTION_TAIL.search(sentence)
    if m is None:
        return None
    lead = sentence[: m.start()].strip()
    if _SUPPOSING.match(lead):
        return None
    lead = _GIVEN.sub("", lead, count=1).strip()
    if len(lead.split()) < 2 or "?" in lead or _ASKING.search(lead):
        return None
    return lead[0].upper() + lead[1:] + "."


def _is_task_with_payload(doc: Doc) -> bool:
    """ "Summarize this for me: <pasted text>": the pasted text is material to work on, not memories."""
    colon = next((t for t in doc if t.text == ":"), None)
    if colon is None:
        return False
    head = [t for t in doc[: colon.i] if not t.is_punct and t.lower_ not in ("please", "pls", "can", "could",
                                                                            "you", "hey", "hi", "ok", "so")]
    return bool(head) and head[0].tag_ == "VB" and lemma(head[0]) not in TASK_LEMMAS_EXEMPT


def _event_time(text: str, ref: datetime | None) -> datetime | None:
    """Start of the first time expression in ``text``: forward for plans, backward for reports."""
    from memstrata.ingest.timing import event_time

    return event_time(text, ref)
