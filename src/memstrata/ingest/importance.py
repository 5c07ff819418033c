"""Is a sentence worth remembering? Linguistic drop rules plus a weighted importance score.

Everything here reads one parsed sentence (a spaCy ``Span``). Drops come first: questions,
hypotheticals, sarcasm, quoted speech and one-off requests are never memories. What is left is scored
from independent signals combined as a noisy-or, so two weak signals add up but never pass 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memstrata.ingest.entities import PET_NOUNS, RELATION_NOUNS, EntityIndex

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

DEFAULT_THRESHOLD = 0.5

REASONS = ("explicit_cue", "preference", "plan", "schedule_change", "relationship", "new_entity", "number",
           "date", "first_person_fact", "implicit_signal", "contradiction")

# Weights are probabilities that the signal alone marks a memory; 0.5 is the default cut-off, so
# a weak signal (< 0.5) needs a second one.
WEIGHTS = {
    "explicit_cue": 0.9,
    "schedule_change": 0.8,
    "preference": 0.7,
    "plan": 0.6,
    "relationship": 0.6,
    "relationship_weak": 0.3,
    "first_person_fact": 0.6,
    "first_person_weak": 0.25,
    "third_person_fact": 0.5,
    "concrete_value": 0.35,
    "new_entity": 0.35,
    "number": 0.3,
    "date": 0.25,
    "implicit_signal": 0.2,
    "contradiction": 0.5,
}

FIRST_PERSON = frozenset({"i", "me", "we", "us", "myself", "ourselves"})
FIRST_POSSESSIVE = frozenset({"my", "our", "mine", "ours"})
SECOND_PERSON = frozenset({"you", "your", "yours", "yourself"})
THIRD_PERSON = frozenset({"he", "she", "they", "him", "her", "them"})
VAGUE_SUBJECTS = frozenset({"it", "that", "this", "there", "everything", "something", "nothing", "anything",
                            "what", "which", "who", "here", "everyone", "someone", "nobody", "things"})

EVENT_NOUNS = frozenset({
    "meeting", "meetup", "standup", "stand-up", "call", "appointment", "class", "lesson", "session", "exam",
    "test", "interview", "flight", "train", "launch", "release", "deadline", "party", "wedding", "dinner",
    "lunch", "breakfast", "brunch", "game", "match", "concert", "show", "trip", "vacation", "holiday",
    "conference", "webinar", "presentation", "review", "demo", "surgery", "checkup", "check-up", "cleaning",
    "practice", "rehearsal", "ceremony", "reunion", "sync", "retro", "retrospective", "workshop", "course",
    "recital", "graduation", "tournament", "event", "visit", "massage", "haircut", "shift", "ride",
    "reservation", "booking", "performance", "seminar", "lecture", "training", "trial",
    "hearing", "festival", "race", "marathon", "appt", "playdate", "celebration",
})
SCHEDULE_CHANGE_VERBS = frozenset({"move", "reschedule", "postpone", "push", "delay", "shift", "change",
                                   "bump", "bring", "switch", "cancel", "call", "put", "pull"})
PREFERENCE_VERBS = frozenset({"love", "like", "enjoy", "prefer", "hate", "dislike", "adore", "detest",
                              "loathe", "despise", "fancy", "favor", "favour"})
NEGATIVE_PREFERENCE = frozenset({"hate", "dislike", "detest", "loathe", "despise"})
PLAN_VERBS = frozenset({"plan", "intend", "aim", "hope", "expect", "schedule", "book", "decide", "prepare",
                        "arrange", "organize", "organise"})
# Verbs that state lasting facts even in the past tense: moves, jobs, family events.
LIFE_EVENT_VERBS = frozenset({
    "move", "relocate", "marry", "divorce", "join", "leave", "quit", "start", "graduate", "adopt", "switch",
    "bear", "turn", "promote", "retire", "hire", "fire", "lose", "break", "engage", "die",
    "pass", "found", "launch", "sign", "enroll", "enrol", "transfer", "rent", "lease", "inherit", "name",
    "diagnose", "meet", "date", "separate", "change", "resign", "accept", "become", "finish", "complete",
    "book", "register", "stop", "begin", "pick", "cancel",
})
# Verbs that name lasting states when used in the simple present.
DURABLE_VERBS = frozenset({
    "live", "work", "study", "own", "speak", "teach", "drive", "use", "play", "eat", "drink", "smoke",
    "take", "wear", "run", "cook", "read", "write", "code", "program", "manage", "lead", "report", "belong",
    "attend", "volunteer", "practice", "practise", "train", "collect", "ride", "grow", "raise", "rent",
    "commute", "sleep", "exercise", "swim", "hike", "bike", "cycle", "paint", "sing", "dance", "go", "visit",
    "call", "need", "have", "keep", "follow", "support", "avoid", "handle", "cover", "meet", "do",
    "suffer", "struggle", "care",
})
# Mental and phatic verbs: "I think", "I see", "I guess" carry no fact by themselves.
LIGHT_VERBS = frozenset({"think", "guess", "see", "know", "mean", "suppose", "bet", "feel", "agree",
                         "understand", "wonder", "believe", "hope", "want", "wish", "say", "get", "try",
                         "appreciate", "thank", "apologize", "apologise", "forget", "remember", "look",
                         "sound", "seem", "hear", "laugh", "love", "like", "miss", "can", "promise"})
# Adjectives for passing states: "I'm good", "I'm tired" are not facts worth keeping.
TRANSIENT_ADJECTIVES = frozenset({
    "good", "fine", "ok", "okay", "great", "tired", "bored", "hungry", "thirsty", "busy", "sleepy", "sorry",
    "glad", "happy", "sad", "sure", "ready", "done", "back", "here", "there", "excited", "stressed",
    "nervous", "confused", "lost", "curious", "late", "early", "free", "alright", "awake", "upset",
    "annoyed", "angry", "terrible", "bad", "well", "cold", "hot", "grateful", "thankful", "right", "wrong",
    "serious", "kidding", "joking", "impressed", "jealous", "proud", "worried", "scared", "afraid",
    "exhausted", "fed", "sick", "home", "away", "around", "online", "offline", "interested", "aware",
    "amazing", "awesome", "cool", "nice", "funny", "hilarious", "weird", "crazy", "dramatic", "silly",
    "stuck", "full", "able", "unable", "surprised", "shocked", "relieved", "lucky", "new", "finished",
})
INTENSIFIERS = frozenset({"so", "very", "really", "super", "too", "pretty", "kinda", "totally", "extremely",
                          "incredibly", "such", "quite", "rather", "absolutely", "literally"})
LAUGHTER = re.compile(r"\b(?:lol|lmao|rofl|a?ha(?:ha)+h?|he(?:he)+|jk|xd)\b", re.IGNORECASE)
FUTURE_WORDS = frozenset({"tomorrow", "tonight", "next", "upcoming", "later", "soon", "weekend", "someday"})
REPORTING_VERBS = frozenset({"say", "tell", "write", "text", "yell", "reply", "ask", "shout", "scream",
                             "whisper", "announce", "post", "tweet", "mention", "read", "go"})
# Cues that the speaker wants something kept; matched at the start of a clause.
EXPLICIT_CUE = re.compile(
    r"^\W*(?:(?:please|pls|also|and|oh|btw|so|ok|okay)\W+)*"
    r"(?:remember|note|notice|don'?t\s+forget|do\s+not\s+forget|never\s+forget|keep\s+in\s+mind|"
    r"make\s+(?:a\s+)?note|for\s+the\s+record|for\s+future\s+reference|fyi|f\.y\.i\.|just\s+so\s+you\s+know|"
    r"so\s+you\s+know|heads\s+up|reminder|important|save\s+(?:this|that)|write\s+(?:this|that)\s+down|"
    r"can\s+you\s+(?:remember|note)|could\s+you\s+(?:remember|note)|would\s+you\s+(?:remember|note)|"
    r"psa|update|correction|big\s+news|news|quick\s+update)\b",
    re.IGNORECASE,
)
KEEP_IN_MIND = re.compile(r"\b(?:keep|bear)\s+(?:that|this|it)\s+in\s+mind\b|\bremember\s+(?:that|this)\b",
                          re.IGNORECASE)
PERSISTENCE = re.compile(
    r"\b(?:always|never|from\s+now\s+on|going\s+forward|in\s+(?:the\s+)?future|whenever|every\s+time|"
    r"by\s+default|moving\s+forward|each\s+time|all\s+the\s+time|no\s+longer|anymore|from\s+today)\b",
    re.IGNORECASE,
)
IMPLICIT = re.compile(
    r"\b(?:always|never|usually|every\s+(?:day|morning|evening|night|week|month|year|monday|tuesday|"
    r"wednesday|thursday|friday|saturday|sunday|weekend)|no\s+longer|anymore|actually|these\s+days|"
    r"still|now|allergic|intolerant|diagnosed|can'?t\s+(?:eat|drink|have|stand)|must\s+not|"
    r"(?:don'?t|do\s+not|never)\s+(?:eat|drink|smoke|fly|drive)|not\s+anymore)\b",
    re.IGNORECASE,
)
SARCASM_START = re.compile(
    r"^\W*(?:yeah,?\s+right|oh,?\s+(?:sure|great|joy|wonderful|fantastic|perfect|goody|lovely)|"
    r"as\s+if|sure,?\s+because|wow,?\s+thanks\s+a\s+lot|great,?\s+just\s+great|thanks\s+a\s+lot|"
    r"just\s+what\s+i\s+(?:needed|wanted)|because\s+that\s+always\s+works|not!|"
    # "Great, the train is late again": praise opening a complaint about a repeat annoyance
    r"(?:great|perfect|fantastic|wonderful|lovely|brilliant|awesome|nice|cool)\W+(?=.*\bagain\b))",
    re.IGNORECASE,
)
SARCASM_ANYWHERE = re.compile(
    r"(?:^|\s)/s\b|🙄|🙃|😒|\bjust\s+what\s+i\s+(?:needed|wanted)\b|\byeah,?\s+right\b|"
    r"\b(?:love|adore|enjoy)\s+(?:how|it\s+when)\b|\btotally\s+(?:thrilled|love|loving)\b",
    re.IGNORECASE,
)
EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s][^*]{0,40}?)\*(?![\w*])")
POSITIVE_EMPHASIS = frozenset({"love", "loved", "adore", "enjoy", "like", "thrilled", "great", "wonderful",
                               "fantastic", "awesome", "amazing", "favorite", "favourite", "best", "perfect",
                               "lovely", "fun", "delighted", "excited"})
HYPOTHETICAL_START = re.compile(
    r"^\W*(?:(?:so|ok|okay|hmm|and|but|well)\W+)*(?:what\s+if|imagine|suppose|supposing|pretend|"
    r"hypothetically|let'?s\s+say|let\s+us\s+say|say\s+(?:that\s+)?(?:i|we|my)|assuming|assume|in\s+theory|"
    r"in\s+a\s+(?:parallel|perfect|dream)|picture\s+this|if\s+only|if|unless|even\s+if|"
    r"in\s+an?\s+ideal\s+world|would\s+it\s+be)\b",
    re.IGNORECASE,
)
QUOTE = re.compile(r"[\"“”«»]([^\"“”«»]+)[\"“”«»]|(?:(?<=^)|(?<=[\s(:,]))['‘](.+?)['’](?=[\s.,!?;:)]|$)")


KNOWN_VERBS = (SCHEDULE_CHANGE_VERBS | PREFERENCE_VERBS | PLAN_VERBS | LIFE_EVENT_VERBS | DURABLE_VERBS
               | LIGHT_VERBS | REPORTING_VERBS)
# "I think X", "I guess X": the hedge is not the fact, X is
HEDGE_VERBS = frozenset({"think", "guess", "believe", "suppose", "reckon", "bet", "feel", "figure", "assume",
                         "suspect", "realize", "realise"})
PHATIC_IMPERATIVES = frozenset({"worry", "mind", "bother", "panic", "hesitate", "apologize", "apologise", "be",
                                "sweat", "stress", "judge", "laugh", "forget"})
# "X is not my thing", "Y is my jam": idioms that state a preference
PREFERENCE_IDIOMS = frozenset({"thing", "jam", "tea", "style", "vibe", "kind", "type", "favorite", "favourite"})
FREQUENCY_ADVERBS = frozenset({"always", "usually", "often", "never", "rarely", "seldom", "normally",
                               "generally", "typically", "regularly", "sometimes", "constantly"})
ASSIGN_VERBS = frozenset({"ask", "tell", "remind", "want", "need", "invite", "expect", "assign", "require"})
CUE_VERBS = frozenset({"remember", "note", "forget", "know", "notice", "mind"})
NAMED_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LANGUAGE",
                          "NORP", "LAW"})
NUMBER_LABELS = frozenset({"CARDINAL", "MONEY", "QUANTITY", "PERCENT"})
DATE_WORDS = frozenset({"day", "days", "week", "weeks", "month", "months", "year", "years", "am", "pm",
                        "o'clock", "hour", "hours", "minute", "minutes", "th", "st", "nd", "rd"})


@dataclass
class SentenceFeatures:
    """What the drop rules and the score read from one sentence (or clause); built by :func:`analyze`."""

    text: str
    role: str = "user"  # whose message: in an assistant's, "you"/"your" is the user
    drop: str | None = None  # question | hypothetical | sarcasm | quoted_speech | request | empty
    root: Token | None = None  # the content predicate (past a "remember that" cue or an "I think" hedge)
    subject: Token | None = None
    subject_kind: str = "none"  # first_person | second_person | person | event | thing | vague | assistant | none
    negated: bool = False
    modal: str | None = None  # would | could | might | may | should | must | can | will
    future: bool = False
    explicit_cue: bool = False
    instruction: bool = False
    banter: bool = False  # "lol", "haha": jokes are rarely facts
    signals: dict[str, float] = field(default_factory=dict)


def lemma(tok: Token) -> str:
    """Lower-case lemma; repairs "hates" -> "hat", "rides" -> "rid", and reads "I've got" as "have"."""
    base = (tok.lemma_ or tok.text).lower()
    if tok.pos_ in ("VERB", "AUX") and base not in KNOWN_VERBS and base + "e" in KNOWN_VERBS:
        return base + "e"
    if base == "get" and tok.tag_ == "VBN" and any(
            c.dep_ == "aux" and c.lower_ in ("'ve", "have", "'s", "has", "ve") for c in tok.children):
        return "have"
    return base


def strip_emphasis(text: str) -> str:
    """``*love*`` -> ``love``: markdown emphasis confuses the tagger; sarcasm checks see the raw text."""
    return EMPHASIS.sub(lambda m: m.group(1), text)


def quoted_segments(text: str) -> list[str]:
    """Text inside quotation marks; apostrophes in contractions and possessives are not quotes."""
    return [a or b for a, b in QUOTE.findall(text)]


def is_sarcastic(text: str) -> bool:
    """Explicit sarcasm markers: "/s", eye-roll emoji, "yeah right", "oh great", emphasised praise."""
    if SARCASM_START.search(text) or SARCASM_ANYWHERE.search(text):
        return True
    return any(m.group(1).lower() in POSITIVE_EMPHASIS for m in EMPHASIS.finditer(text))


def has_subject(tok: Token) -> bool:
    return any(c.dep_ in ("nsubj", "nsubjpass", "expl") for c in tok.children)


def subject_of(pred: Token) -> Token | None:
    """The nominal subject of a predicate, following conj and xcomp links to a shared subject."""
    tok = pred
    for _ in range(4):
        for c in tok.children:
            if c.dep_ in ("nsubj", "nsubjpass", "expl", "csubj"):
                return c
        if tok.dep_ in ("conj", "xcomp") and tok.head != tok:
            tok = tok.head
        else:
            return None
    return None


def possessor(noun: Token) -> Token | None:
    """``my`` in "my boss", ``Anna`` in "Anna's birthday"."""
    for c in noun.children:
        if c.dep_ == "poss":
            return c
    return None


def classify_subject(subj: Token | None) -> str:
    """first_person | second_person | person | event | thing | vague | none."""
    if subj is None:
        return "none"
    low = subj.lower_
    if low in FIRST_PERSON:
        return "first_person"
    if low in SECOND_PERSON:
        return "second_person"
    if low in THIRD_PERSON:
        return "person"
    if low in VAGUE_SUBJECTS:
        return "vague"
    head = lemma(subj)
    poss = possessor(subj)
    if subj.ent_type_ in ("PERSON", "NORP") or head in RELATION_NOUNS or head in PET_NOUNS:
        return "person"
    if any(c.dep_ in ("appos", "compound") and c.ent_type_ == "PERSON" for c in subj.children):
        return "person"
    if head in EVENT_NOUNS:
        return "event"
    if poss is not None and poss.lower_ in FIRST_POSSESSIVE:
        return "first_person"  # "my gate code is 4512" is a fact about the user
    if poss is not None and poss.lower_ in SECOND_PERSON:
        return "second_person"
    if poss is not None and (poss.lower_ in ("his", "her", "their") or poss.ent_type_ == "PERSON"
                             or lemma(poss) in RELATION_NOUNS):
        return "person"
    if subj.pos_ == "PROPN" and subj.ent_type_ in ("", "PERSON"):
        return "person"
    return "thing"


def modal_of(pred: Token) -> str | None:
    """The modal auxiliary of a predicate, normalised ("'d" -> "would")."""
    for c in pred.children:
        if c.dep_ == "aux" and c.tag_ == "MD":
            return {"'d": "would", "wo": "will", "'ll": "will", "ca": "can", "sha": "shall"}.get(
                c.lower_, lemma(c))
    return None


def is_negated(pred: Token) -> bool:
    return any(c.dep_ == "neg" for c in pred.children)


def _main_predicate(span: Span) -> Token:
    root = span.root
    if root.pos_ in ("INTJ", "NOUN", "PROPN", "ADJ", "X") and not has_subject(root):
        # "Reminder: the meeting is on Friday" parses the content as an acl/appos of "Reminder"
        for tok in span:
            if tok.pos_ in ("VERB", "AUX") and tok.head == root and has_subject(tok) and tok.dep_ in (
                    "acl", "appos", "relcl", "ccomp", "dep", "conj", "parataxis"):
                return tok
    return root


def _content_clause(root: Token) -> Token | None:
    """The clause that a cue ("remember that X") or a hedge ("I think X") governs."""
    word = lemma(root)
    subj = subject_of(root)
    if word in CUE_VERBS:
        if word == "forget" and not is_negated(root):
            return None
        if subj is not None and subj.lower_ not in SECOND_PERSON:
            return None  # "I remember that..." is the user recalling, not a cue
    elif word in HEDGE_VERBS:
        if subj is None or subj.lower_ not in FIRST_PERSON or is_negated(root):
            return None
    else:
        return None
    for c in root.children:
        if c.dep_ in ("ccomp", "xcomp") and c.pos_ in ("VERB", "AUX") and (word in CUE_VERBS or has_subject(c)):
            return c
    return None


def _is_question(span: Span) -> bool:
    if span.text.strip().endswith("?"):
        return True
    toks = [t for t in span if not t.is_punct and t.pos_ != "INTJ" and t.lower_ not in ("so", "and", "but",
                                                                                        "hey", "ok", "okay")]
    if not toks:
        return False
    first = toks[0]
    if first.tag_ in ("WP", "WRB", "WDT", "WP$") and first.lower_ != "when" and first.dep_ != "mark":
        return True
    if first.pos_ == "AUX" and len(toks) > 1 and toks[1].dep_ in ("nsubj", "nsubjpass", "expl"):
        return True  # "do I", "can you", "is it" without a question mark
    return False


def _is_hypothetical(span: Span, pred: Token, modal: str | None) -> bool:
    if HYPOTHETICAL_START.search(span.text) and not _relevance_conditional(span):
        return True
    for tok in span:
        if tok.lower_ in ("if", "unless") and tok.dep_ == "mark" and tok.head.dep_ == "advcl":
            if not _relevance_conditional(span, tok.head):
                return True
    word = lemma(pred)
    if word in ("wish", "imagine", "pretend", "suppose", "dream", "fantasize", "fantasise"):
        return True
    if modal in ("would", "could", "should", "might") and any(
            c.dep_ == "aux" and c.lower_ == "have" for c in pred.children):
        return True  # "I would have gone"
    if modal == "would":
        # "I'd never live in the suburbs", "I'd rather have tea" are preferences, not hypotheticals
        return not (is_negated(pred) or word == "prefer" or any(c.lower_ == "rather" for c in pred.children))
    return False


def _relevance_conditional(span: Span, clause: Token | None = None) -> bool:
    """ "if you need it", "if that helps", "if needed": the condition is on the listener, not the fact."""
    if clause is None:
        clause = next((t.head for t in span if t.lower_ in ("if", "unless") and t.dep_ == "mark"), None)
        if clause is None or clause.dep_ != "advcl":
            return False
    subj = subject_of(clause)
    if subj is None:
        return clause.tag_ in ("VBN", "JJ")  # "if needed", "if necessary"
    return subj.lower_ in ("you", "that", "it", "this")


def _is_quoted_speech(span: Span) -> bool:
    quotes = quoted_segments(span.text)
    if not quotes:
        return False
    reporting = any(lemma(t) in REPORTING_VERBS and t.pos_ == "VERB" for t in span)
    for q in quotes:
        words = q.split()
        pronoun = any(w.lower().strip(",.!?") in FIRST_PERSON | THIRD_PERSON | {"you", "i'm", "i've", "i'll"}
                      for w in words)
        if (reporting and len(words) >= 2) or (pronoun and len(words) >= 3):
            return True
    return False


def _request_kind(span: Span, root: Token) -> str | None:
    """ "request" for a one-off imperative to the assistant, "instruction" for a lasting one."""
    if root.tag_ not in ("VB", "VBP") or has_subject(root):  # the tagger sometimes calls an imperative VBP
        return None
    auxes = [c for c in root.children if c.dep_ == "aux"]
    if auxes:
        # "Don't recommend anything with gore" is a standing constraint; "don't worry" is phatic
        if len(auxes) == 1 and lemma(auxes[0]) == "do" and is_negated(root) and auxes[0].i < root.i \
                and lemma(root) not in PHATIC_IMPERATIVES and any(
                    c.dep_ in ("dobj", "prep", "xcomp", "ccomp") for c in root.children):
            return "instruction"
        return None
    # everything before the verb must be an interjection, adverb or fronted phrase: "From now on, always show"
    before = [t for t in span if t.i < root.i and not t.is_punct]
    fronted = {t.i for c in root.lefts if c.dep_ in ("prep", "advmod", "npadvmod", "intj", "discourse", "advcl")
               for t in c.subtree}
    if any(t.i not in fronted and t.pos_ not in ("INTJ", "ADV", "CCONJ") and t.lower_ not in ("please", "pls")
           for t in before):
        return None
    return "instruction" if PERSISTENCE.search(span.text) else "request"


def _polite_request(span: Span, pred: Token) -> str | None:
    """ "I'd like you to...", "I'd love it if you could...": a request, lasting when it says so."""
    if modal_of(pred) != "would" or lemma(pred) not in ("like", "love", "prefer", "appreciate"):
        return None
    subj = subject_of(pred)
    if subj is None or subj.lower_ not in FIRST_PERSON:
        return None
    addressed = any(t.lower_ in SECOND_PERSON and t.i > pred.i for t in pred.subtree)
    if not addressed:
        return None
    return "instruction" if PERSISTENCE.search(span.text) else "request"


def _spliced_clause(root: Token) -> Token | None:
    """ "Scratch that, the meeting moved to Thursday": the clause after a dismissive imperative."""
    for c in root.children:
        if c.dep_ in ("ccomp", "parataxis", "conj") and c.pos_ in ("VERB", "AUX") and has_subject(c) and c.i > root.i:
            return c
    return None


def analyze(span: Span, *, role: str = "user", cue: bool = False, banter: bool = False) -> SentenceFeatures:
    """Drop decision, content predicate, subject and modality of one sentence.

    ``cue`` marks an explicit cue the caller already stripped ("Reminder: ..."); ``banter`` a laughing
    marker it removed.
    """
    feats = SentenceFeatures(text=span.text, role=role, banter=banter or bool(LAUGHTER.search(span.text)))
    if not any(not t.is_punct and not t.is_space for t in span):
        feats.drop = "empty"
        return feats
    root = _main_predicate(span)
    content = _content_clause(root)
    is_cue = content is not None and lemma(root) in CUE_VERBS
    feats.explicit_cue = cue or is_cue or bool(EXPLICIT_CUE.search(span.text) or KEEP_IN_MIND.search(span.text))
    pred = content if content is not None else root
    set_predicate(feats, pred, role)
    if is_sarcastic(span.text):
        feats.drop = "sarcasm"
    elif not is_cue and _is_question(span):
        feats.drop = "question"
    elif _is_hypothetical(span, pred, feats.modal) and _polite_request(span, pred) is None:
        feats.drop = "hypothetical"
    elif _is_quoted_speech(span):
        feats.drop = "quoted_speech"
    elif content is None:
        kind = _request_kind(span, root) or _polite_request(span, pred)
        if kind == "instruction":
            feats.instruction = feats.explicit_cue = True
        elif kind == "request" and not feats.explicit_cue:
            spliced = _spliced_clause(root)
            if spliced is not None:
                set_predicate(feats, spliced, role)
            else:
                feats.drop = "request"
    return feats


def set_predicate(feats: SentenceFeatures, pred: Token, role: str = "user") -> SentenceFeatures:
    """Point ``feats`` at a (clause) predicate and recompute subject, negation, modality and tense."""
    feats.root = pred
    feats.subject = subject_of(pred)
    kind = classify_subject(feats.subject)
    if kind == "none" and pred.tag_ in ("VBG", "VBD", "VBN") and pred.dep_ == "ROOT" and pred.i == pred.sent.start:
        kind = "first_person"  # chat drops the "I": "starting at Verdant on Monday!", "moved to Lisbon"
    if role != "user" and kind in ("first_person", "second_person"):
        # in an assistant message "you" is the user and "I" is the assistant
        kind = "first_person" if kind == "second_person" else "assistant"
    feats.subject_kind = kind
    feats.negated = is_negated(pred)
    feats.modal = modal_of(pred)
    feats.future = _is_future(pred, feats.modal)
    feats.signals = {}
    return feats


def _is_future(pred: Token, modal: str | None) -> bool:
    if modal in ("will", "shall", "might", "may"):
        return True
    word = lemma(pred)
    if word in PLAN_VERBS and pred.tag_ != "VBN":
        return True
    if word == "go" and pred.tag_ == "VBG" and any(c.dep_ == "xcomp" for c in pred.children):
        return True  # "going to ask"
    if pred.dep_ == "xcomp" and lemma(pred.head) in PLAN_VERBS | {"go"} and pred.head.tag_ in ("VBG", "VBP",
                                                                                                "VBZ"):
        return True
    progressive = pred.tag_ == "VBG" and any(c.dep_ == "aux" and lemma(c) == "be" for c in pred.children)
    sub = list(pred.subtree)
    future_time = any(t.lower_ in FUTURE_WORDS for t in sub) or any(t.ent_type_ in ("DATE", "TIME") for t in sub)
    return progressive and future_time


def predicate_strength(feats: SentenceFeatures) -> str:
    """'durable' for lasting facts (jobs, homes, habits, traits), 'weak' for passing ones, '' without one."""
    pred = feats.root
    if pred is None:
        return ""
    word = lemma(pred)
    children = list(pred.children)
    deps = {c.dep_ for c in children}
    if word == "be" and not any(c.dep_ == "aux" for c in children):
        comps = [c for c in children if c.dep_ in ("attr", "acomp", "oprd")]
        preps = [c for c in children if c.dep_ == "prep"]
        if not comps:
            if any(c.dep_ == "npadvmod" and c.ent_type_ in ("DATE", "TIME") for c in children):
                return "durable"  # "my birthday is March 4"
            if not preps:
                return "weak"
            if preps[0].lower_ in ("at", "in") and feats.subject_kind == "first_person":
                return "weak"  # "I'm at home", "I'm in a meeting"
            return "durable"
        comp = comps[0]
        if comp.pos_ == "ADJ" or comp.dep_ == "acomp":
            mods = {c.lower_ for c in comp.children}
            complement = any(c.dep_ in ("prep", "xcomp") for c in comp.children) or bool(preps)
            if mods & INTENSIFIERS:
                return "weak"  # "so dramatic", "really tired": an evaluation, not an attribute
            if comp.lower_ in TRANSIENT_ADJECTIVES and not complement:
                return "weak"
            return "durable"
        if comp.lower_ in TRANSIENT_ADJECTIVES:
            return "weak"
        return "durable"
    if word in ("call", "name") and pred.tag_ == "VBN" and any(c.dep_ in ("oprd", "attr", "xcomp")
                                                                 for c in children):
        return "durable"  # "she is called Lucy"
    has_aux = any(c.dep_ == "aux" for c in children)
    present = _simple_present(pred) or (word == "have" and pred.tag_ == "VBN" and has_aux)  # "I've got"
    transient = any(t.lower_ in ("now", "currently", "moment", "today", "tonight") for t in pred.subtree)
    if present and not transient and any(c.lower_ in FREQUENCY_ADVERBS for c in children):
        return "durable"  # "I always get motion sickness": a habit, whatever the verb
    if feats.modal == "can" and word not in LIGHT_VERBS and not transient:
        return "durable"  # "I can't eat gluten", "I can speak Mandarin"
    if word in LIGHT_VERBS:
        return "weak"
    if word in LIFE_EVENT_VERBS:
        return "durable"
    if word in DURABLE_VERBS and not feats.modal:
        if present:
            return "durable"  # the simple present states a habit: "I drink two coffees a day"
        progressive = pred.tag_ == "VBG" and has_aux
        if progressive and not transient:
            return "durable"  # "I'm studying law" is an ongoing state, "I'm reading right now" is not
    if present and ("dobj" in deps or "prep" in deps):
        return "durable"
    return "weak"


def _simple_present(pred: Token) -> bool:
    """ "I eat", "she works", "I don't eat" (do-support), not "I ate" or "I am eating"."""
    auxes = [c for c in pred.children if c.dep_ in ("aux", "auxpass")]
    if pred.tag_ in ("VBP", "VBZ"):
        return not auxes
    return pred.tag_ == "VB" and len(auxes) == 1 and lemma(auxes[0]) == "do" and auxes[0].tag_ in ("VBP", "VBZ")


def _relation_phrase(span: Span) -> tuple[bool, bool]:
    """(a possessed relation noun is present, it names someone): "my boss", "my sister Anna"."""
    found = named = False
    for tok in span:
        if tok.pos_ != "NOUN" or lemma(tok) not in RELATION_NOUNS | PET_NOUNS:
            continue
        poss = possessor(tok)
        attr_of_proper = tok.dep_ == "attr" and (s := subject_of(tok.head)) is not None and s.pos_ == "PROPN"
        if poss is None and not attr_of_proper:
            continue
        found = True
        if any(c.dep_ in ("appos", "compound", "npadvmod") and c.pos_ == "PROPN" for c in tok.children):
            named = True  # "my sister Anna"
        elif tok.dep_ == "appos" and tok.head.pos_ == "PROPN":
            named = True  # "Anna, my sister"
        elif attr_of_proper or (poss is not None and poss.pos_ == "PROPN"):
            named = True  # "Anna Silva is my sister", "Tom's fiancée"
        elif tok.dep_ in ("nsubj", "nsubjpass") and any(
                c.dep_ in ("attr", "oprd") and c.pos_ == "PROPN" for c in tok.head.children):
            named = True  # "my manager is Sarah Chen", "his fiancée is called Lucy"
    return found, named


def preference_object(pred: Token) -> Token | None:
    """What a preference verb is about: the object, or a mis-parsed word after the verb ("I hate cilantro"
    comes out of the tagger as an adverb)."""
    for c in pred.rights:
        if c.lower_ in VAGUE_SUBJECTS | {"them", "him", "her", "you", "me", "us"}:
            continue
        if c.dep_ in ("dobj", "xcomp"):
            return c
        if c.dep_ in ("advmod", "acomp", "npadvmod", "oprd", "attr") and c.pos_ in ("NOUN", "PROPN", "ADJ"):
            return c
    return None


def preference_idiom(pred: Token) -> Token | None:
    """The attribute noun of "horror movies are not my thing" / "jazz is my jam", else None."""
    if lemma(pred) != "be":
        return None
    for c in pred.children:
        if c.dep_ == "attr" and c.lower_ in PREFERENCE_IDIOMS:
            poss = possessor(c) or (possessor(c.head) if c.head.dep_ == "pobj" else None)
            if poss is not None and poss.lower_ in FIRST_POSSESSIVE:
                return c
    return None


def _has_number(span: Span) -> bool:
    for t in span:
        digits = any(ch.isdigit() for ch in t.text)
        if t.ent_type_ in NUMBER_LABELS or (digits and t.ent_type_ not in ("DATE", "TIME")):
            return True
        # NER sometimes calls an amount or a code a date ("1450 euros", "my gate code is 4512")
        if digits and t.dep_ == "nummod" and t.head.lower_ not in DATE_WORDS and t.head.ent_type_ != "DATE":
            return True
        if _bare_number_date(t):
            return True
    return False


def _bare_number_date(t: Token) -> bool:
    """A lone number NER called a date although nothing makes it one ("my gate code is 4512")."""
    return t.text.isdigit() and t.ent_type_ == "DATE" and t.ent_iob_ == "B" and t.head.pos_ != "ADP" and (
        t.i + 1 >= len(t.doc) or t.doc[t.i + 1].ent_iob_ != "I")


def _concrete_value(feats: SentenceFeatures) -> bool:
    """ "The car's plate is 7KX-392", "Rent is 1450 euros": a definite thing given a specific value."""
    pred = feats.root
    if pred is None or lemma(pred) != "be" or feats.subject_kind != "thing" or feats.negated:
        return False
    subj = feats.subject
    if subj is None or subj.pos_ not in ("NOUN", "PROPN"):
        return False
    for c in pred.children:
        if c.dep_ in ("attr", "acomp", "npadvmod", "prep"):
            for t in c.subtree:
                if any(ch.isdigit() for ch in t.text) or t.ent_type_ in NAMED_LABELS | {"DATE", "TIME"}:
                    return True
    return False


def _signals(span: Span, feats: SentenceFeatures, known: EntityIndex) -> dict[str, float]:
    sig: dict[str, float] = {}
    pred = feats.root
    if pred is None:
        return sig
    word = lemma(pred)
    kind = feats.subject_kind
    ents = list(span.ents)
    if feats.explicit_cue:
        sig["explicit_cue"] = WEIGHTS["explicit_cue"]
    if kind in ("first_person", "person"):
        rather = any(c.lower_ == "rather" for c in pred.children)
        favourite = any(t.lower_ in ("favorite", "favourite", "fave") for t in span)
        object_ = preference_object(pred) is not None or any(c.dep_ in ("ccomp", "prep") for c in pred.children)
        if (word in PREFERENCE_VERBS and object_ and feats.modal != "would") or favourite or rather or (
                word == "stand" and feats.negated) or (feats.modal == "would" and feats.negated) or (
                preference_idiom(pred) is not None):
            sig["preference"] = WEIGHTS["preference"]
    if feats.future and kind not in ("vague", "second_person", "assistant", "none") and not feats.negated:
        sig["plan"] = WEIGHTS["plan"]
    if word in ASSIGN_VERBS and not feats.negated and any(c.dep_ == "xcomp" for c in pred.children) and any(
            c.dep_ in ("dobj", "nsubj") and c.lower_ in ("me", "us") for c in pred.children):
        sig["plan"] = WEIGHTS["plan"]  # "Sarah asked me to present the roadmap": a task for the user
    event_object = any(c.dep_ in ("dobj", "nsubjpass") and lemma(c) in EVENT_NOUNS for c in pred.children)
    if kind == "event" or event_object:
        if word in SCHEDULE_CHANGE_VERBS or (word == "be" and any(
                c.lower_ in ("now", "again", "instead") for c in pred.children)):
            sig["schedule_change"] = WEIGHTS["schedule_change"]
        elif any(e.label_ in ("DATE", "TIME") for e in ents) and not feats.negated:
            sig["plan"] = WEIGHTS["plan"]
    rel, named = _relation_phrase(span)
    if named:
        sig["relationship"] = WEIGHTS["relationship"]
    elif rel:
        sig["relationship"] = WEIGHTS["relationship_weak"]
    strength = predicate_strength(feats)
    if kind == "first_person" and strength:
        sig["first_person_fact"] = WEIGHTS["first_person_fact" if strength == "durable" else "first_person_weak"]
    elif kind == "person" and strength == "durable":
        sig["relationship"] = max(sig.get("relationship", 0.0), WEIGHTS["third_person_fact"])
    new = [e for e in ents if e.label_ in NAMED_LABELS and e.text not in known]
    if new:
        sig["new_entity"] = 1 - (1 - WEIGHTS["new_entity"]) ** min(len(new), 2)
    if _has_number(span):
        sig["number"] = WEIGHTS["number"]
    if any(e.label_ in ("DATE", "TIME") and not (len(e) == 1 and _bare_number_date(e[0])) for e in ents):
        sig["date"] = WEIGHTS["date"]
    implicit = WEIGHTS["implicit_signal"] if IMPLICIT.search(span.text) else 0.0
    if _concrete_value(feats):
        implicit = max(implicit, WEIGHTS["concrete_value"])
    if implicit:
        sig["implicit_signal"] = implicit
    return sig


def combine(signals: dict[str, float]) -> float:
    """Noisy-or of the signal weights."""
    miss = 1.0
    for w in signals.values():
        miss *= 1.0 - w
    return round(1.0 - miss, 4)


def score_features(span: Span, feats: SentenceFeatures, known_entities: EntityIndex | Iterable[str] = (),
                   extra: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """Score an analysed sentence; ``extra`` adds caller-side signals such as a slot or a contradiction."""
    if feats.drop is not None:
        feats.signals = {}
        return 0.0, []
    known = known_entities if isinstance(known_entities, EntityIndex) else EntityIndex(known_entities)
    sig = _signals(span, feats, known)
    for name, w in (extra or {}).items():
        sig[name] = max(sig.get(name, 0.0), w)
    if feats.subject_kind in ("assistant", "second_person") and not feats.explicit_cue:
        sig = {k: v for k, v in sig.items() if k in ("new_entity", "number", "date")}
    if "explicit_cue" not in sig:
        damp = 1.0
        if feats.negated and "preference" not in sig and predicate_strength(feats) != "durable":
            damp *= 0.6  # "I didn't go" says less than "I went"; "I don't eat pork" is still a fact
        if feats.banter:
            damp *= 0.8
        if damp < 1.0:
            sig = {k: round(v * damp, 4) for k, v in sig.items()}
    feats.signals = sig
    return combine(sig), [r for r in REASONS if r in sig]


def score_importance(sentence_or_doc: str | Span | Doc, *, known_entities: EntityIndex | Iterable[str] = (),
                     role: str = "user", extra: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """Importance in [0, 1] and the reasons behind it, for a sentence (or the best sentence of a text).

    Questions, hypotheticals, sarcasm, quoted speech, one-off requests and small talk score 0 with no
    reasons. ``known_entities`` are canonical names already stored for the scope ("new_entity" only counts
    others). ``extra`` lets a caller add signals it computed, e.g. ``{"contradiction": 0.5}``.
    """
    from spacy.tokens import Span as SpanType

    from memstrata.ingest import nlp as _nlp

    spans: list[Span]
    if isinstance(sentence_or_doc, str):
        raw = sentence_or_doc
        spans = list(_nlp.parse(strip_emphasis(raw)).sents)
    elif isinstance(sentence_or_doc, SpanType):
        raw = sentence_or_doc.text
        spans = [sentence_or_doc]
    else:
        raw = sentence_or_doc.text
        spans = list(sentence_or_doc.sents)
    if is_sarcastic(raw):
        return 0.0, []
    known = known_entities if isinstance(known_entities, EntityIndex) else EntityIndex(known_entities)
    best: tuple[float, list[str]] = (0.0, [])
    for span in spans:
        result = score_features(span, analyze(span, role=role), known, extra)
        if result[0] > best[0]:
            best = result
    return best
