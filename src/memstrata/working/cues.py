"""What a sentence does to a conversation's goals and tasks: opens one, closes one, changes one, or sets a
constraint. Pure text rules (regular expressions over one sentence); no I/O, no model.

A goal is an aim the conversation works toward ("let's …", "I want to …", "we're trying to …"); a task is
an action someone owes ("I need to …", "remind me to …", "can you …", "please …", "I'll …"). A cue counts
only at the start of a clause, so reported speech ("my friend said we should …") and hypotheticals ("if I
wanted to …") open nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Openers of a clause that carry no content: "Yes please. Also remind me …", "Not yet, I need to …".
_LEAD = re.compile(
    r"^(?:(?:yes|yeah|yep|ok|okay|sure|great|thanks|thank you|perfect|nice|good|lovely|cool|right|also|"
    r"and|so|then|plus|oh|hey|well|alright|hmm|update|one more thing|by the way|not yet|actually|now)"
    r"\b[\s,.:!-]*)+",
    re.IGNORECASE,
)
_BOUNDARY = r"(?:^|(?<=[,;:])\s*|\b(?:and|also|but|so|then|plus)\s+)"
_ME = r"(?:i|we)"

GOAL_CUES = re.compile(
    _BOUNDARY + r"(?:"
    r"let'?s(?!\s+(?:say|not|see|hope|just say)\b)|let us|"
    rf"{_ME} should|{_ME} ought to|"
    rf"{_ME}(?:'d| would)? (?:really )?(?:want|wanna|like|love|hope|plan|intend|aim)(?: to)?|"
    rf"{_ME}(?:'m| am|'re| are) (?:hoping|planning|trying|aiming|looking|going to try)(?: to)?|"
    rf"{_ME}(?:'re| are|'m| am) working on|"
    r"(?:my|our|the) (?:goal|plan|aim|objective) (?:is|for \w+ is)(?: to)?|"
    r"help me(?: to)?"
    r")\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
TASK_CUES = re.compile(
    _BOUNDARY + r"(?:"
    rf"(?:please )?(?:{_ME}|you)(?:'ve got| (?:also )?(?:need|have|must|have got))(?: to)?|"
    r"i've to|(?:(?:i|we) )?gotta|(?<![\w'])(?:need|have) to|"
    r"(?:please )?(?:also )?remind me(?: to| that i need to)?|don'?t let me forget(?: to)?|"
    r"make sure i (?:don'?t forget|remember)(?: to)?|don'?t forget(?: to)?|"
    r"(?:can|could|would|will) you(?: please| also| kindly)*|"
    r"please(?: also| kindly)*|"
    rf"(?P<commit>{_ME}(?:'ll| will|'m going to| am going to|'m gonna))(?: also)?"
    r")\s+(?P<rest>.+)$",
    re.IGNORECASE,
)
# Commitments that are acknowledgements, not work: "I'll remind you", "I'll keep that in mind".
_NOT_WORK = re.compile(
    r"^(?:remind you|keep (?:that|it|this) in mind|let you know|think about it|be (?:there|fine|ok)|"
    r"see|try|have (?:a|to)|take a look|get back to you|do (?:that|it|my best))\b",
    re.IGNORECASE,
)
_LIMIT_VERB = re.compile(r"^(?:keep (?:it|them|things|answers|replies|this)|avoid|use only|only|don'?t|do not|"
                         r"never|no more|nothing)\b", re.IGNORECASE)
_ADD_TO_LIST = re.compile(r"^(?:please )?add .{1,80}? to (?:my|our|the) (?:[\w-]+ )?(?:list|calendar|agenda)\b.*",
                          re.IGNORECASE)
_FIGURE = re.compile(r"^(?:say|admit|agree|hand it to)\b", re.IGNORECASE)  # "I have to say, …"
_FILLER_TAIL = re.compile(r"[\s,]*(?:please|for me|thanks|thank you|ok|okay|first)?[\s.!?,;:]*$", re.IGNORECASE)

DROP_CUES = re.compile(
    r"\b(?:never ?mind|forget (?:about )?(?:it|that|this|the|about|my|our)|scratch that|"
    r"cancel (?:the|that|it|my|our|this)|call (?:it|that|the \w+) off|let'?s (?:drop|skip|not|forget)|"
    r"(?:drop|skip) (?:the|that|it|this)|no need (?:to|for)|(?:don'?t|do not|doesn'?t) need (?:to|the|that)|"
    r"not (?:\w+ing|going to \w+) .*after all|(?:won'?t|will not|aren'?t going to|are not going to) \w+|"
    r"(?:we're|we are|i'm|i am) not \w+ing|no longer|not \w+ anymore|forget it)\b",
    re.IGNORECASE,
)
DONE_CUES = re.compile(
    r"\b(?:done|finished|completed?|sorted|taken care of|took care of|dealt with|all set|achieved|accomplished|"
    r"published|submitted|sent(?! to)|posted|paid|bought|booked|ordered|filed|cancell?ed|renewed|set up|"
    r"added|checked|defrosted|fixed|signed|returned|delivered|scheduled|got (?:the|my|our)|managed(?: it)?|"
    r"ticked off|crossed off|handled|wrapped up)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:not|n't|never|yet|haven'?t|hasn'?t|didn'?t|isn'?t|aren'?t|wasn'?t|half|almost|nearly|"
                      r"partly|partially|mostly)\b", re.IGNORECASE)
CHANGE_CUES = re.compile(
    r"\b(?:make it|move (?:it|that|this|the \w+) to|change (?:it|that|this|the \w+)(?: \w+)? to|"
    r"switch (?:it |that )?to|instead|rather than|push (?:it|that) to|bring (?:it|that) forward)\b",
    re.IGNORECASE,
)
CONSTRAINT_CUES = re.compile(
    r"\b(?:keep (?:it|them|things|answers|replies|this|the \w+)\s+(?:to|under|below|within|short|brief|simple)|"
    r"(?:no|not|nothing|anything) (?:more|longer|later|earlier|bigger|over|fewer) than|"
    r"(?:nothing|not|no \w+) (?:before|after|over|above|below|under)|at most|at least|max(?:imum)?\b|"
    r"(?:don'?t|do not|never) (?:spend|go over|exceed|use|include|mention|book|schedule|suggest|want)|"
    r"budget (?:is|of)|(?:must|has to|needs to|should) (?:stay|be|remain) (?:under|below|within|less)|"
    r"\bavoid\b|\bonly\b|without)\b",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])|\n+")
_CLAUSES = re.compile(r"\s*(?:[,;]\s*(?:and|but)?|\band\b)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Opened:
    kind: str  # goal | task
    text: str
    commitment: bool
    head: str = ""  # what the sentence says before the cue ("Forget the quiz, I'll use the book")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text) if s and s.strip()]


def _strip_lead(sentence: str) -> str:
    return _LEAD.sub("", sentence.strip()).strip()


def _tail(rest: str) -> str:
    return _FILLER_TAIL.sub("", rest).strip().strip("\"'")


def opened(sentence: str, role: str) -> Opened | None:
    """The goal or task a sentence opens, if any. Goals are the user's; the assistant opens tasks only by
    committing to one ("I'll draft the agenda") or asking the user for one."""
    body = _strip_lead(sentence)
    if not body or body.endswith("?") and not re.search(r"\b(?:can|could|would|will) you\b", body, re.I):
        return None
    if re.match(r"^(?:if|when|whether|in case)\b", body, re.IGNORECASE):
        return None
    if re.match(r"^(?:can|could) you (?:believe|imagine|guess)\b", body, re.IGNORECASE):
        return None
    listed = _ADD_TO_LIST.match(body)
    if listed is not None and role == "user":
        return Opened("task", _tail(re.sub(r"^please ", "", listed.group(0), flags=re.IGNORECASE)), False)
    if role == "user" and CHANGE_CUES.search(body) and re.search(r"\blet'?s (?:make|do|look|go|try)\b", body, re.I):
        return None  # "let's make it a dinner instead" revises, it does not open
    if role == "user":
        goal = GOAL_CUES.search(body)
        if goal is not None and not DROP_CUES.match(goal.group("rest")):
            text = _tail(goal.group("rest"))
            return Opened("goal", text, False, body[: goal.start()]) if len(text.split()) >= 2 else None
    task = TASK_CUES.search(body)
    if task is None:
        return None
    commit = task.group("commit") is not None
    text = _tail(task.group("rest"))
    if commit and _NOT_WORK.match(text) or len(text.split()) < 2 and not commit or _FIGURE.match(text):
        return None
    if role != "user" and not commit and not re.match(r"(?:can|could|would|will) you", body, re.I):
        return None
    if not text or _LIMIT_VERB.match(text):
        return None  # "please keep it under 800 words" sets a constraint
    return Opened("task", text, commit, body[: task.start()])


def dropped(sentence: str) -> bool:
    return bool(DROP_CUES.search(sentence))


def done(sentence: str) -> bool:
    if sentence.rstrip().endswith("?") or not DONE_CUES.search(sentence):
        return False
    head = sentence[: DONE_CUES.search(sentence).start()]  # type: ignore[union-attr]
    return not _NEGATED.search(head[-30:])


def changed(sentence: str) -> bool:
    return bool(CHANGE_CUES.search(sentence))


def constraints(sentence: str) -> list[str]:
    """The clauses of a user sentence that set a limit ("nothing before 10", "keep it under 800 words")."""
    if sentence.rstrip().endswith("?"):
        return []
    out = []
    for clause in _CLAUSES.split(_strip_lead(sentence)):
        clause = re.sub(r"^please\s+", "", _tail(_strip_lead(clause)), flags=re.IGNORECASE)
        if clause and CONSTRAINT_CUES.search(clause) and len(clause.split()) >= 2:
            out.append(clause[0].lower() + clause[1:] if clause[:2] != "I " else clause)
    return out


_STOP = frozenset(
    "a an the to of for on in at by with and or but my our your their his her its this that these those it "
    "is are was were be been i we you he she they me us them so up out about from into over under before after "
    "now today tonight tomorrow week month year all also please just some any new first then there here "
    "will would can could should need have has had got get do does did done make made go going".split()
)


def stem(word: str) -> str:
    w = word.lower().strip(".,!?;:'\"()")
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "s", "e"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def content_words(text: str) -> set[str]:
    """Stemmed content words, for matching a closing sentence to the item it closes."""
    return {stem(w) for w in re.findall(r"[A-Za-z][\w'-]*|\d+", text) if w.lower() not in _STOP and len(w) > 1}
