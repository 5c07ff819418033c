"""Fold messages into a conversation's working state: goals and tasks with their status, entities in focus
(latest first), the current topic and the user's constraints. Deterministic and I/O-free: the same messages
in the same order give the same state, which is what lets a restarted process rebuild exactly what the live
one had. Edits made through the API ride along as ``Said`` items carrying ``edit``.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memstrata.errors import NotFoundError
from memstrata.tiers.base import Constraint, WorkingState, WorkItem
from memstrata.working import cues

if TYPE_CHECKING:
    from spacy.tokens import Doc

MAX_ENTITIES = 20
MAX_CONSTRAINTS = 12
MAX_ITEMS = 50  # per kind; the oldest closed ones go first
TOPIC_SPAN = 6  # messages an item keeps the topic before the talk's own nouns take over
ENTITY_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "FAC", "WORK_OF_ART", "NORP"})
_NAMED_HEADS = frozenset({"project", "release", "team", "app", "launch", "service", "campaign", "program"})


@dataclass(frozen=True)
class Said:
    """One message (or one recorded API edit) of a conversation, in the conversation's own time."""

    role: str
    content: str
    at: float
    episode_id: str
    position: int = 0
    edit: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[float, int, str]:
        return (self.at, self.position, self.episode_id)


def order(messages: Sequence[Said]) -> list[Said]:
    """The order a rebuild folds messages in (time, position in its batch, id)."""
    return sorted(messages, key=lambda m: m.key)


def in_order(state: WorkingState, messages: Sequence[Said]) -> bool:
    """Whether ``messages`` all come after what ``state`` has folded in (else the state must be rebuilt)."""
    if not messages or not state.cursor:
        return True
    first = order(messages)[0]
    return (first.at, first.position) > (state.cursor[0], state.cursor[1])


def fold(state: WorkingState | None, messages: Sequence[Said], docs: Sequence[Doc] | None = None) -> WorkingState:
    """A new state: ``state`` with ``messages`` folded in, in rebuild order. ``docs`` are the spaCy parses
    of the messages' texts in that order (parsed here when omitted)."""
    out = copy.deepcopy(state) if state is not None else WorkingState()
    ordered = order(messages)
    if docs is None:
        docs = _parse(focus_texts(ordered))
    for msg, doc in zip(ordered, docs, strict=True):
        if msg.edit is not None:
            try:
                apply_edit(out, msg.edit, msg.at, msg.episode_id)
            except NotFoundError:
                pass  # checked when it was made; a replay over changed history skips it rather than fail
        else:
            _observe(out, msg, doc)
        out.updated_at = max(out.updated_at, msg.at)
        out.cursor = [msg.at, float(msg.position)]
    return out


FOCUS_CHARS = 500  # what of a message is parsed for its named things and topic
_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


def focus_text(text: str) -> str:
    """The part of a message its entities and topic are read from: code blocks left out, and a long message
    cut at the last sentence end within ``FOCUS_CHARS`` (its opening says what it is about; parsing a
    2,000-character reply whole costs about 90 ms of CPU, its opening about 15)."""
    text = _CODE_BLOCK.sub(" ", text)
    if len(text) <= FOCUS_CHARS:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, FOCUS_CHARS)]
    return text[: ends[-1]] if ends else text[:FOCUS_CHARS].rsplit(" ", 1)[0]


def focus_texts(messages: Sequence[Said]) -> list[str]:
    """What :func:`fold` parses, one text per message in the order given (edits have none)."""
    return [focus_text(m.content) if m.edit is None else "" for m in messages]


def _parse(texts: list[str]) -> list[Doc]:
    from memstrata.ingest.nlp import parse_many

    return parse_many(texts)


def item_id(kind: str, episode_id: str, n: int) -> str:
    return f"{kind[0]}-" + hashlib.sha256(f"{episode_id}:{n}".encode()).hexdigest()[:10]


def _observe(state: WorkingState, msg: Said, doc: Doc) -> None:
    state.messages += 1
    touched: WorkItem | None = None
    n = 0
    for sentence in cues.sentences(msg.content):
        opened = cues.opened(sentence, msg.role)
        head = sentence if opened is None else opened.head
        if head.strip():
            touched = _close_or_change(state, head, msg) or touched
        if opened is not None:
            item = WorkItem(
                id=item_id(opened.kind, msg.episode_id, n), kind=opened.kind, text=opened.text, by=msg.role,
                opened_at=msg.at, updated_at=msg.at, episode_id=msg.episode_id,
            )
            n += 1
            if msg.role != "user":
                parent = _latest(state, lambda i: i.by == "user" and i.status == "open")
                item.parent_id = parent.id if parent is not None else None
            _add(state, item)
            touched = item
        elif msg.role == "user":
            for text in cues.constraints(sentence):
                _constrain(state, text, msg, len(state.constraints))
    _focus(state, doc, touched)


def _close_or_change(state: WorkingState, sentence: str, msg: Said) -> WorkItem | None:
    if cues.dropped(sentence):
        target = _target(state, sentence, prefer_user=True)
        if target is not None:
            _set_status(state, target, "dropped", msg.at)
            for child in state.items():
                if child.parent_id == target.id and child.status == "open" and not child.pinned:
                    _set_status(state, child, "dropped", msg.at)
            return target
    elif cues.done(sentence):
        target = _target(state, sentence, prefer_user=False)
        if target is not None:
            _set_status(state, target, "done", msg.at)
            return target
    elif msg.role == "user" and cues.changed(sentence):
        target = _target(state, sentence, prefer_user=True)
        if target is not None:
            target.revisions.append(sentence.strip())
            target.updated_at = msg.at
            return target
    return None


def _target(state: WorkingState, sentence: str, *, prefer_user: bool) -> WorkItem | None:
    """The open item a closing or changing sentence is about: the best word overlap, else the latest one."""
    pool = [i for i in state.items() if i.status == "open" and not i.pinned]
    if "goal" in sentence.lower().split() or "goal" in cues.content_words(sentence):
        pool = [i for i in pool if i.kind == "goal"] or pool
    if not pool:
        return None
    words = cues.content_words(sentence)
    scored = [(len(words & cues.content_words(i.text)), i.opened_at, i) for i in pool]
    best = max(s for s, _, _ in scored)
    if best > 0:
        return max((x for x in scored if x[0] == best), key=lambda x: (x[1], _rank(state, x[2])))[2]
    if any(words & cues.content_words(i.text) for i in state.items() if i.status != "open"):
        return None  # it names an item already closed ("Submitted the proposal" after it was marked done)
    if prefer_user:
        mine = [i for i in pool if i.by == "user"]
        pool = mine or pool
    return max(pool, key=lambda i: (i.opened_at, _rank(state, i)))


def _rank(state: WorkingState, item: WorkItem) -> int:
    """Tie-break for items opened at the same moment: the later one in its list wins."""
    return (state.goals if item.kind == "goal" else state.tasks).index(item)


def _latest(state: WorkingState, keep: Any) -> WorkItem | None:
    found = [i for i in state.items() if keep(i)]
    return max(found, key=lambda i: (i.opened_at, _rank(state, i))) if found else None


def _set_status(state: WorkingState, item: WorkItem, status: str, at: float) -> None:
    item.status, item.updated_at = status, at


def _add(state: WorkingState, item: WorkItem) -> None:
    items = state.goals if item.kind == "goal" else state.tasks
    if any(i.id == item.id for i in items):
        return
    items.append(item)
    while len(items) > MAX_ITEMS:
        closed = next((i for i in items if i.status != "open"), items[0])
        items.remove(closed)


def _constrain(state: WorkingState, text: str, msg: Said, n: int) -> None:
    if any(c.text.lower() == text.lower() for c in state.constraints):
        return
    cid = "c-" + hashlib.sha256(f"{msg.episode_id}:{text}".encode()).hexdigest()[:10]
    state.constraints.append(Constraint(cid, text, msg.at, msg.episode_id))
    del state.constraints[:-MAX_CONSTRAINTS]


def _focus(state: WorkingState, doc: Doc, touched: WorkItem | None) -> None:
    """Entities named in this message go to the front; the topic follows the item the message touched."""
    named = entities(doc)
    if named:
        state.entities = list(dict.fromkeys([*named, *state.entities]))[:MAX_ENTITIES]
    if state.topic_pinned:
        return
    if touched is not None and touched.status == "open":
        topic = main_phrase(touched.text, doc) or main_phrase(None, _parse([touched.text])[0])
        if topic:
            state.topic, state.topic_turn = topic, state.messages
            return
    if state.topic is None or state.messages - state.topic_turn >= TOPIC_SPAN:
        topic = main_phrase(None, doc)
        if topic:
            state.topic, state.topic_turn = topic, state.messages


def entities(doc: Doc) -> list[str]:
    """Named things of a message in text order: NER spans plus "Alpha project"-style proper-noun phrases."""
    spans: list[tuple[int, str]] = []
    taken: set[int] = set()
    for chunk in doc.noun_chunks:
        toks = [t for t in chunk if t.dep_ not in ("det", "poss", "case")]
        first = toks[0] if toks else None
        named = first is not None and (
            first.pos_ == "PROPN" or first.text[:1].isupper() and first.i != first.sent.start
        )
        if len(toks) >= 2 and toks[-1].lower_ in _NAMED_HEADS and named:
            i = toks.index(next(t for t in toks if t.lower_ in _NAMED_HEADS))
            spans.append((toks[0].idx, " ".join(t.text for t in toks[: i + 1])))
            taken.update(t.i for t in toks)
    for ent in doc.ents:
        if ent.label_ in ENTITY_LABELS and not any(t.i in taken for t in ent):
            text = ent.text[4:] if ent.text.lower().startswith("the ") else ent.text
            if text and any(ch.isupper() for ch in text):
                spans.append((ent.start_char, text.strip()))
    return list(dict.fromkeys(t for _, t in sorted(spans)))


def main_phrase(text: str | None, doc: Doc) -> str | None:
    """The first content noun phrase of ``text`` within the message (or of the whole message)."""
    start = 0
    if text is not None:
        found = doc.text.find(text)
        if found < 0:
            return None
        start = found
    for chunk in doc.noun_chunks:
        if chunk.start_char < start or chunk.root.pos_ == "PRON":
            continue
        toks = [t for t in chunk if t.dep_ not in ("det", "poss", "case") and not t.is_punct]
        if toks and any(t.pos_ in ("NOUN", "PROPN") for t in toks):
            return " ".join(t.text for t in toks)
    return None


# -- edits through the API ---------------------------------------------------------------------------

EDIT_OPS = ("add_item", "update_item", "set_topic", "add_constraint", "remove_constraint")


def check_edit(edit: Any) -> dict[str, Any]:
    """A validated copy of an edit, or InvalidInputError naming the field."""
    from memstrata.errors import InvalidInputError
    from memstrata.tiers.base import ITEM_KINDS, ITEM_STATUSES

    if not isinstance(edit, dict):
        raise InvalidInputError("edit", "must be an object with an 'op'")
    op = edit.get("op")
    if op not in EDIT_OPS:
        raise InvalidInputError("op", f"must be one of {', '.join(EDIT_OPS)}, got {op!r}")
    allowed = {
        "add_item": {"kind", "text", "pinned"},
        "update_item": {"item_id", "status", "text", "pinned"},
        "set_topic": {"topic"},
        "add_constraint": {"text"},
        "remove_constraint": {"constraint_id"},
    }[op]
    extra = set(edit) - allowed - {"op"}
    if extra:
        raise InvalidInputError(sorted(extra)[0], f"is not a field of {op}")

    def text(name: str, required: bool) -> str | None:
        value = edit.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(name, "must be a non-empty string")
        if len(value) > 1000:
            raise InvalidInputError(name, f"is {len(value)} characters long; the limit is 1000")
        return value.strip()

    out: dict[str, Any] = {"op": op}
    if op == "add_item":
        if edit.get("kind") not in ITEM_KINDS:
            raise InvalidInputError("kind", f"must be one of {', '.join(ITEM_KINDS)}")
        out.update(kind=edit["kind"], text=text("text", True), pinned=_flag(edit.get("pinned", True), "pinned"))
    elif op == "update_item":
        out["item_id"] = text("item_id", True)
        if edit.get("status") is not None and edit["status"] not in ITEM_STATUSES:
            raise InvalidInputError("status", f"must be one of {', '.join(ITEM_STATUSES)}")
        out.update(status=edit.get("status"), text=text("text", False))
        out["pinned"] = None if edit.get("pinned") is None else _flag(edit["pinned"], "pinned")
        if out["status"] is None and out["text"] is None and out["pinned"] is None:
            raise InvalidInputError("status", "give status, text and/or pinned to change")
    elif op == "set_topic":
        out["topic"] = text("topic", False)
    elif op == "add_constraint":
        out["text"] = text("text", True)
    else:
        out["constraint_id"] = text("constraint_id", True)
    return out


def _flag(value: Any, name: str) -> bool:
    from memstrata.errors import InvalidInputError

    if not isinstance(value, bool):
        raise InvalidInputError(name, "must be true or false")
    return value


def apply_edit(state: WorkingState, edit: dict[str, Any], at: float, episode_id: str) -> None:
    """Apply a checked edit in place; NotFoundError when it names an item or constraint the state lacks."""
    op = edit["op"]
    if op == "add_item":
        _add(state, WorkItem(
            id=item_id(edit["kind"], episode_id, 0), kind=edit["kind"], text=edit["text"], by="agent",
            opened_at=at, updated_at=at, episode_id=episode_id, pinned=edit["pinned"],
        ))
    elif op == "update_item":
        item = next((i for i in state.items() if i.id == edit["item_id"]), None)
        if item is None:
            raise NotFoundError("working item", edit["item_id"])
        if edit["text"] is not None and edit["text"] != item.text:
            item.revisions.append(edit["text"])
            item.text = edit["text"]
        if edit["status"] is not None:
            item.status = edit["status"]
        if edit["pinned"] is not None:
            item.pinned = edit["pinned"]
        item.updated_at = at
    elif op == "set_topic":
        state.topic, state.topic_pinned, state.topic_turn = edit["topic"], edit["topic"] is not None, state.messages
    elif op == "add_constraint":
        _constrain(state, edit["text"], Said("agent", "", at, episode_id), 0)
    else:
        before = len(state.constraints)
        state.constraints = [c for c in state.constraints if c.id != edit["constraint_id"]]
        if len(state.constraints) == before:
            raise NotFoundError("constraint", edit["constraint_id"])
