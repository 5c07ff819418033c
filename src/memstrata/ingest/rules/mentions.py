"""Who a message talks about: entity mentions, the referent of a subject, and whose attribute a noun names.

Finds named entities (NER, "Project Phoenix", names introduced by relation nouns such as "my sister Anna",
unnamed relations such as "my boss"), resolves them against the names already known, and follows "he"/"she"
and possessives ("my", "Anna's", "my mom's") to a canonical subject. :class:`Context` carries what one
``extract`` call has learnt across its messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memstrata.ingest.candidate import EntityMention, Relation
from memstrata.ingest.entities import PET_NOUNS, RELATION_NOUNS, EntityIndex, canonical_key, canonical_name
from memstrata.ingest.lexicon import FIRST_PERSON, FIRST_POSSESSIVE, LABELS, SECOND_PERSON, THIRD_PERSON
from memstrata.ingest.rules.phrases import phrase, snake
from memstrata.ingest.sentence import SentenceFeatures
from memstrata.ingest.syntax import lemma, possessor, subject_of

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token


@dataclass
class Context:
    """State carried across the messages of one extract() call."""

    known: EntityIndex = field(default_factory=EntityIndex)  # names stored in the scope or seen so far
    last_person: str | None = None  # referent for "he"/"she"
    role: str = "user"  # role of the message being read


@dataclass
class Mention:
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


def find_mentions(doc: Doc, ctx: Context) -> list[Mention]:
    """Entity mentions of a message: projects, NER entities, names introduced by relation nouns, "my boss"."""
    out: list[Mention] = []
    taken: set[int] = set()

    def add(text: str, start: int, end: int, label: str) -> Mention | None:
        if any(i in taken for i in range(start, end)):
            return None
        name = ctx.known.resolve(canonical_name(text))
        if not name or canonical_key(name) in FIRST_PERSON | SECOND_PERSON:
            return None
        taken.update(range(start, end))
        m = Mention(EntityMention(text, name, label), start, end)
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
        head_rel = lemma(tok.head) in RELATION_NOUNS and tok.dep_ in ("appos", "compound", "npadvmod", "oprd")
        if tok.dep_ in ("oprd", "attr", "xcomp") and lemma(tok.head) in ("name", "call") and \
                tok.head.dep_ == "acl":  # "a cat named Miso"
            owner_noun = lemma(tok.head.head)
            add(tok.text, tok.i, tok.i + 1, "OTHER" if owner_noun in PET_NOUNS else "PERSON")
            continue
        appos_rel = any(c.dep_ == "appos" and lemma(c) in RELATION_NOUNS for c in tok.children)
        if head_rel or appos_rel:  # "my dog Biscuit", "Anna, my sister": names NER missed
            rel = lemma(tok.head) if head_rel else next(
                lemma(c) for c in tok.children if c.dep_ == "appos")
            add(tok.text, tok.i, tok.i + 1, "OTHER" if rel in PET_NOUNS else "PERSON")
        elif tok.dep_ in ("nsubj", "nsubjpass") and tok.head.pos_ in ("VERB", "AUX"):
            add(tok.text, tok.i, tok.i + 1, "OTHER")  # a capitalised subject NER did not label: "Jess hates..."
    by_token = {i: m for m in out for i in range(m.start, m.end)}
    for tok in doc:
        word = lemma(tok)
        if tok.pos_ != "NOUN" or word not in RELATION_NOUNS:
            continue
        poss = possessor(tok)
        owner: str | None = None
        if poss is not None and poss.lower_ in user_possessives(ctx):
            owner = "user"
        elif poss is not None and poss.i in by_token and by_token[poss.i].label in ("PERSON", "OTHER"):
            owner = by_token[poss.i].mention.canonical
        if owner is None:
            continue
        named = _named_by(tok, by_token)
        relation = f"{snake(word)}_of"
        if named is not None:
            named.relations.append(Relation(named.mention.canonical, relation, owner))
            label = "PERSON" if named.label == "OTHER" and word not in PET_NOUNS else named.label
            named.mention = EntityMention(_relation_text(doc, tok, named) or named.mention.text,
                                          named.mention.canonical, label)
        elif owner == "user" and tok.i not in taken:
            taken.add(tok.i)
            label = "OTHER" if word in PET_NOUNS else "PERSON"
            text = doc[poss.i: tok.i + 1].text if poss is not None and poss.i < tok.i else tok.text
            m = Mention(EntityMention(text, node_name(tok), label), tok.i, tok.i + 1, unnamed=True)
            m.relations.append(Relation(m.mention.canonical, relation, "user"))
            out.append(m)
    out.sort(key=lambda m: m.start)
    return out


def node_name(tok: Token) -> str:
    """ "my guitar teacher" -> "guitar teacher": an unnamed person is known by the relation."""
    parts = [c.lower_ for c in tok.lefts if c.dep_ == "compound"] + [lemma(tok)]
    return " ".join(parts)


def _named_by(rel_noun: Token, by_token: dict[int, Mention]) -> Mention | None:
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
    if rel_noun.dep_ == "attr" and lemma(head) == "be":
        subj = subject_of(head)
        if subj is not None and subj.i in by_token:
            return by_token[subj.i]  # "Anna Silva is my sister"
    if rel_noun.dep_ in ("nsubj", "nsubjpass") and lemma(head) in ("be", "call", "name"):
        for c in head.children:
            if c.dep_ in ("attr", "oprd", "xcomp") and c.i in by_token:
                return by_token[c.i]  # "my manager is Sarah Chen", "his fiancée is called Lucy"
    return None


def _relation_text(doc: Doc, rel_noun: Token, named: Mention) -> str | None:
    """ "my sister Anna" as written, when the phrase is contiguous and short."""
    poss = possessor(rel_noun)
    lo = min(rel_noun.i, named.start, poss.i if poss is not None else rel_noun.i)
    hi = max(rel_noun.i + 1, named.end)
    if hi - lo > 5 or any(t.is_punct for t in doc[lo:hi]):
        return None
    return doc[lo:hi].text


def mention_at(tok: Token, mentions: list[Mention]) -> Mention | None:
    for m in mentions:
        if m.start <= tok.i < m.end:
            return m
    return None


def referent(subj: Token | None, feats: SentenceFeatures, mentions: list[Mention],
              ctx: Context) -> str | None:
    """The canonical subject of a clause: "user", an entity name, a relation noun, or an event phrase."""
    if subj is None:
        return None
    kind = feats.subject_kind
    low = subj.lower_
    if kind == "first_person" and (low in FIRST_PERSON or low in SECOND_PERSON):
        return "user"
    if low in THIRD_PERSON:
        return ctx.last_person if low in ("he", "she") else None
    m = mention_at(subj, mentions)
    if m is not None:
        if m.unnamed:
            named = next((x for x in mentions if not x.unnamed and any(
                r.relation == m.relations[0].relation for r in x.relations)), None) if m.relations else None
            return named.mention.canonical if named is not None else m.mention.canonical
        return m.mention.canonical
    for c in subj.children:  # "my sister Anna" / "Anna, my sister"
        if c.dep_ in ("appos", "compound") and (cm := mention_at(c, mentions)) is not None and not cm.unnamed:
            return cm.mention.canonical
    if kind == "event":
        return phrase(subj, lemma_head=True)
    if kind == "first_person":
        return "user"
    return None


def owner_of(noun: Token, mentions: list[Mention], ctx: Context) -> str | None:
    """Whose attribute a possessed noun is: "my X" -> user, "Anna's X" -> Anna, "my mom's X" -> mom."""
    poss = possessor(noun)
    if poss is None:
        return None
    if poss.lower_ in user_possessives(ctx):
        return "user"
    m = mention_at(poss, mentions)
    if m is not None and not m.unnamed:
        return m.mention.canonical
    if poss.lower_ in ("his", "her") and ctx.last_person:
        return ctx.last_person
    if poss.pos_ == "NOUN" and lemma(poss) in RELATION_NOUNS | PET_NOUNS:
        inner = possessor(poss)
        if inner is not None and inner.lower_ in user_possessives(ctx):
            for c in poss.children:  # "my sister Anna's birthday"
                if c.dep_ in ("appos", "compound") and (cm := mention_at(c, mentions)) is not None:
                    return cm.mention.canonical
            return node_name(poss)
    return None


def user_possessives(ctx: Context) -> frozenset[str]:
    return frozenset({"your", "yours"}) if ctx.role != "user" else FIRST_POSSESSIVE
