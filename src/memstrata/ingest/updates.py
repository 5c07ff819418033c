"""Which attribute a statement sets, and whether it replaces what was true before.

A statement about the user sets an attribute named by its predicate family: where they live, who they work
for, who their manager is, what they eat, what they drive, how much they weigh or pay in rent, when they
train, what they study, who they are with, which plans they hold. A family is either single-valued (one
current value: a new one replaces the old) or keyed by the thing it is about (several current values:
"I love sushi" and "I love ramen" coexist; "I can't eat sushi anymore" ends the first).

The decision uses three signals: the family (:func:`attribute_of` by words; by meaning, where words name none,
in :mod:`memstrata.ingest.prototypes`), the nearest current facts of the same subject (cosine of their
vectors) and change cues ("now", "anymore", "switched", "sold", "dropped out").
Statements that only ask, wish or suppose never replace anything (:func:`is_tentative`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# (family, single-valued, pattern). Order matters: the first matching family names the attribute.
_FAMILIES: list[tuple[str, bool, str]] = [
    ("manager", True, r"\b(?:boss|manager|supervisor|team lead|line manager|report(?:s|ing)? (?:to|directly to))\b"),
    ("partner", True, r"\b(?:girlfriend|boyfriend|partner|fianc[ée]e?|husband|wife|dating|going out with|"
                      r"broke up|split up|single again|seeing someone|seeing [A-Z]\w+|married to)\b"),
    ("diet", True, r"\b(?:vegetarian|vegan|pescatarian|keto|paleo|gluten[- ]free|dairy[- ]free|carnivore|"
                   r"eat(?:ing)? meat|plant[- ]based|diet|intermittent fasting|lactose)\b"),
    ("weight", True, r"\b(?:weigh(?:s|ed|ing)?|weight|kilos?|kg|lbs?|pounds)\b"),
    ("rent", True, r"\brent\b"),
    ("salary", True, r"\b(?:salary|pay raise|raise to|earn(?:s|ing)?|make \$|income|paid \$|hourly rate)\b"),
    ("gym_schedule", True, r"\b(?:gym|work(?:ing)? out|workouts?|training (?:days|sessions)|lift(?:ing)? weights|"
                           r"spin class|crossfit|pilates|yoga class)\b"),
    ("commute", True, r"\b(?:commute|to work by|(?:bike|cycle|drive|walk|bus|train|subway|tram) to (?:work|the office)|"
                      r"(?:take|catch) the (?:bus|train|subway|tram|metro|ferry) to)\b"),
    ("phone_model", True, r"\b(?:phone|iphone|pixel|galaxy s\d*|android|smartphone)\b"),
    ("laptop", True, r"\b(?:laptop|macbook|thinkpad|chromebook|notebook computer)\b"),
    ("vehicle", True, r"\b(?:car|drive an?|driving an?|sedan|suv|hatchback|pickup|truck|motorbike|motorcycle|scooter|"
                      r"tesla|civic|corolla|prius|golf|jeep|ev)\b"),
    ("medication", True, r"\b(?:medication|meds|prescri\w+|tablets?|pills?|inhaler|insulin|\d+ ?mg)\b"),
    ("studies", True, r"\b(?:residency|stud(?:y|ying|ies|ied)|degree|major(?:ing)?|enrolled|university|college|"
                      r"grad school|master'?s|phd|bootcamp|course in|classes in|school)\b"),
    ("job", True, r"\b(?:work(?:s|ing)? (?:at|for|as)|job|employer|hired|joined \w+ as|position|role as|"
                  r"promoted|new role|employed|career|occupation|i'?m an? \w*(?:er|or|ist|ian|ant)\b|"
                  r"started at|laid off|quit my job|freelanc\w*|self-employed|retired|unemployed)\b"),
    ("lives_in", True, r"\b(?:(?:live[sd]?|living)(?:\s+\w+){0,4}\s+in|"
                       r"(?:i|we)(?:'ve| have| just| recently| finally)*\s+moved (?:to|into|back|out)|"
                       r"moving (?:to|into)|relocat\w+|based in|home is|"
                       r"(?:flat|apartment|house|place|condo) (?:is )?in|settled in|"
                       r"bought a (?:house|flat|condo|home)|got my own place)\b"),
    ("wake_time", True, r"\b(?:wak(?:e|es|ing) up|wake at|wak(?:e|ing) at|get(?:ting)? up|alarm|bedtime|go to bed|"
                        r"sleep at)\b"),
    ("drink", True, r"\b(?:coffees?|lattes?|espresso|cappuccino|tea|matcha|flat whites?|rooibos|drink(?:ing)? \w+ "
                     r"(?:in the|every|each|at)|take my (?:coffee|tea))\b"),
    ("doctor", True, r"\b(?:my (?:new )?(?:doctor|dentist|therapist|gp|physio|physiotherapist|pediatrician))\b"),
    ("contact", True, r"\b(?:phone number|email(?: address)?|my number|mobile number)\b"),
    ("age", True, r"\b(?:years old|turned \d+|i'?m \d{2}\b)"),
    ("housemate", True, r"\b(?:roommate|flatmate|housemate|live alone|living alone|live on my own)\b"),
    ("children", True, r"\b(?:kids|children|(?:one|two|three|a) (?:daughters?|sons?)|baby (?:boy|girl))\b"),
    ("pets", False, r"\b(?:dogs?|cats?|puppy|kitten|pets?|hamsters?|rabbits?|parrots?|fish tank|aquarium)\b"),
    ("favorite", False, r"\bfavou?rite\b"),
    ("schedule", False, r"\b(?:(?:on|every|to|until) (?:mon|tues|wednes|thurs|fri|satur|sun)days?|"
                        r"(?:pushed|moved|rescheduled|changed|bumped)(?: \w+)?(?: back| forward)? to|"
                        r"appointment|meeting|check-?up|interview|lesson|session|class|call|dinner|party|"
                        r"wedding|flight|trip|visit|reservation|deadline|exam|concert|game|match|practice)\b"),
    ("plan", False, r"\b(?:marathon|half marathon|race|triathlon|trip|vacation|holiday|course|club|team|league|"
                    r"choir|band|volunteer\w*|membership|subscription|project|competition|tournament|signed up)\b"),
    ("preference", False, r"\b(?:love|like|enjoy|prefer|hate|dislike|can'?t stand|into|obsessed with|fan of|"
                          r"can'?t (?:eat|drink|have)|allergic|favou?r)\b"),
    ("hobby", False, r"\b(?:hobby|learning|practis\w+|practic\w+|playing|took up|taking up|paint\w*|knit\w*|"
                     r"garden\w*|climb\w*|surf\w*|swim\w*|run(?:ning)?|cycl\w+|hik\w+|play|xbox|playstation|ps5|"
                     r"nintendo|switch console|instrument|guitar|piano|cello|violin|drums)\b"),
]
# What each family is about, in the words people ask with: embedded with the fact (not stored in its text),
# so "where do I live?" meets "I moved to Lisbon last week!".
DESCRIPTIONS = {
    "manager": "who my boss or manager is", "partner": "my relationship, who I am dating",
    "diet": "my diet, what I eat", "weight": "how much I weigh", "rent": "how much rent I pay",
    "salary": "my salary, how much I earn", "gym_schedule": "when I go to the gym, my workout days",
    "commute": "how I get to work", "phone_model": "which phone I use", "laptop": "which laptop I use",
    "vehicle": "what car I drive", "studies": "what and where I study", "job": "my job, where I work",
    "lives_in": "where I live, my home city", "wake_time": "when I wake up", "drink": "what I drink",
    "doctor": "who my doctor is", "contact": "my contact details", "age": "how old I am",
    "pets": "my pets", "children": "my children", "medication": "which medication I take",
    "housemate": "who I live with",
    "favorite": "my favourite things", "schedule": "when it is scheduled",
    "plan": "my plans and activities", "preference": "what I like or dislike", "hobby": "my hobbies",
}
_COMPILED = [(name, single, re.compile(p, re.IGNORECASE)) for name, single, p in _FAMILIES]

# Words that say the statement reports a change of state rather than a first statement of it.
CHANGE_CUE = re.compile(
    r"\b(?:now|anymore|any more|no longer|not \w+ anymore|switch(?:ed|ing)?|chang(?:ed|ing)|moved|relocated|new|"
    r"instead|sold|quit|left|dropp(?:ed|ing) (?:out|to)|dropped|cancell?ed|called off|rescheduled|postponed|"
    r"pushed (?:back|to)|brought forward|moved (?:up|to)|got rid of|gave up|giving up|stopped|replaced|upgraded|"
    r"traded|these days|nowadays|lately|since|broke up|split up|promoted|transferred|actually|went up|went down|"
    r"raised|upped|bumped|increased|decreased|reduced|lowered|hiked|"
    r"down to|up to|lost|gained|put on|anymore|finally|ended|no more|done with|back to|started|"
    r"starting|joined|took over|took a job|got a job|accepted|bought|got a|picked up|adopted|passed away|"
    r"graduated|finished|dropped out|withdrew|pulled out|not going|won't be|isn't|aren't|am not|no longer|"
    r"turned|again|cut (?:out|down|back)|pushed|became|as of|from \w+ to|went (?:full|part)|got hired|"
    r"come around|retired|resigned|got my own|took (?:a|an|the) [\w -]{0,30}job|got (?:a|an) [\w -]{0,20}job)\b",
    re.IGNORECASE,
)
# A statement that ends, drops or reverses something (a negative state change).
ENDING_CUE = re.compile(
    r"\b(?:anymore|any more|no longer|quit|left|dropped out|dropp(?:ed|ing)|cancell?ed|called off|gave up|"
    r"giving up|stopped|sold|got rid of|broke up|split up|separated|divorced|withdrew|pulled out|not going|"
    r"won't be|done with|no more|can'?t stand|hate|dislike|allergic|can'?t (?:eat|drink|have))\b",
    re.IGNORECASE,
)
_TENTATIVE = re.compile(
    r"\?\s*$|^\s*(?:if|what if|suppose|imagine|should i|would it|do you think|maybe)\b|\bi wish\b|\bwish i\b|"
    r"\bi'?d (?:love|like|want) to\b|\bwould (?:love|like) to\b|\bif i (?:could|had|were|lived|moved)\b|"
    r"\b(?:thinking|thought) (?:about|of)\b|\bconsidering\b|\bmight\b|\bsomeday\b|\bdream(?:ing)? (?:of|about)\b|"
    r"\bwondering\b|\bnot sure (?:if|whether)\b|\bcould (?:i|we)\b|\bhypothetically\b|\bin theory\b",
    re.IGNORECASE,
)
_RELATIVES = (r"housemate|mate|buddy|pal|sister|brother|mom|mum|mother|dad|father|wife|husband|son|daughter|"
              r"partner|girlfriend|boyfriend|fianc[ée]e?|spouse|gf|bf|grandson|granddaughter|grandkids?|"
              r"friend|cousin|aunt|uncle|"
              r"neighbou?r|colleague|coworker|co-worker|roommate|flatmate|grandma|grandmother|grandpa|"
              r"grandfather|kids?|children|parents|niece|nephew|in-laws?|sister-in-law|brother-in-law|teammate")
_THIRD_PARTY = re.compile(
    r"^\s*(?:(?:and|but|so|also|oh|well),?\s+)?(?:my|our)\s+(?:\w+\s+){0,2}?(?:" + _RELATIVES + r")\b"
    # ... unless the statement says who they are: "is Anna" (a capital, even under IGNORECASE), "is a guy called
    # Femi"; "my housemate is doing a PhD" is the housemate's
    r"(?!\s+(?:is|was|will be)\s+(?:now\s+)?(?:(?-i:[A-Z])|an?\s+(?:\w+\s+){0,3}?(?:called|named)\b))"
    # ... or says what they did together: "my partner and I moved to Leeds" is the user's as well
    r"(?!\s+(?:\w+\s+)?(?:and|&)\s+(?:i|me|myself)\b)",
    re.IGNORECASE,
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|im|ive|me|my|mine|we|we're|we've|our|us)\b", re.IGNORECASE)
# "My housemate is a guy called Femi", "my mentor at work is Gloria": the user's own attribute.
_MY_ATTRIBUTE = re.compile(r"^\s*my\s+(?:new\s+|current\s+)?([a-z]+(?:\s+[a-z]+)?)(?:\s+at\s+\w+)?\s+(?:is|are)\s+"
                           r"(?!\w+ing\b)", re.IGNORECASE)
_OTHER_START = re.compile(r"^\s*(?:(?:and|but|so|oh|well|yeah|wow),?\s+)?(?![A-Z]{2})"
                          r"(he|she|they|it|you|this|that|these|those|there|his|her|their|your|its)\b(?!\s+(?:days|morning|evening|afternoon|week|weekend|month|year|"
                          r"time|season|spring|summer|autumn|fall|winter)\b)", re.IGNORECASE)
_NAMED_START = re.compile(r"^\s*([A-Z][a-z]+)(?:\s+and\s+[A-Z][a-z]+)?\s+(?!I\b)[a-z]")
_STOP = frozenset(
    "the a an and or but so my our your i me we to of in on at for with from by is are was were be been "
    "have has had do does did not no it its this that these those now new just really very also still "
    "anymore any more than then there here about into over after before since because got get going".split()
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
# Words that colour a statement without giving a value ("I really love my morning coffee").
_FILLER = frozenset("really love like usually always normally often mostly pretty quite honestly actually though "
                    "still lot lots much bit kind sort day".split())


@dataclass(frozen=True)
class Attribute:
    """What a statement sets: ``subject`` ("user" or who else), ``family`` and whether it holds one value."""

    subject: str
    family: str
    single: bool


# Attributes the extractor names itself, and the family each belongs to.
FAMILY_OF = {"works_at": "job", "job_title": "job", "phone": "contact", "email": "contact", "address": "lives_in",
             "scheduled_for": "schedule", "preferred_name": "name", "boss": "manager", "supervisor": "manager",
             "team_lead": "manager", "line_manager": "manager", "roommate": "housemate", "flatmate": "housemate",
             "girlfriend": "partner", "boyfriend": "partner", "husband": "partner", "wife": "partner"}
# Keyed families where one thing has one value ("the recital" has one date, "favourite food" one dish).
KEYED_SINGLE = frozenset({"schedule", "favorite", "pets"})
_TIME_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays fridays "
    "saturdays sundays morning mornings afternoon afternoons evening evenings night nights weekend weekends "
    "january february march april may june july august september october november december today tomorrow "
    "week month year weekly daily every back moved pushed rescheduled changed".split()
)
_IS_MY = re.compile(r"^\s*([A-Z][\w.]*(?:\s+[A-Z][\w.]*)?)\s+(?:is|'s)\s+(?:now\s+)?my\s+(?:new\s+)?"
                    r"([a-z]+(?:\s+(?!now\b|again\b|too\b|also\b|though\b|as\b|of\b|since\b|from\b|at\b|for\b|"
                    r"in\b|on\b|and\b|but\b)[a-z]+)?)\b")
_SINGLE = {name: single for name, single, _ in _FAMILIES}


def family_of(attribute: str) -> str:
    """The family of a slot attribute: ``works_at`` and ``job_title`` are both the user's job."""
    if attribute.startswith(("likes_", "prefers_", "allergic_to_")):
        return "preference"
    return FAMILY_OF.get(attribute, attribute)


def single_valued(family: str) -> bool:
    """Families not in the table are the extractor's own "my X is Y" slots: one value each."""
    return _SINGLE.get(family, True)


def attributes_in(family: str) -> list[str]:
    """Every slot attribute stored for ``family`` (the family itself and the extractor's names for it)."""
    return [family, *(a for a, f in FAMILY_OF.items() if f == family)]


def own_attribute(text: str) -> tuple[str, str] | None:
    """(attribute, value) of "my X is Y" and "Y is my X" statements: the user's own X."""
    m = _MY_ATTRIBUTE.match(text)
    if m:
        return re.sub(r"\W+", "_", m.group(1).lower()), text[m.end():].strip(" .!")
    m = _IS_MY.match(text)
    if m:
        return re.sub(r"\W+", "_", m.group(2).lower()), m.group(1)
    return None


_WISHES = re.compile(r"\bi'?d (?:love|like) to\b|\bi would (?:love|like) to\b|\bi wish\b|\bsomeday\b|"
                     r"\bdream(?:ing)? (?:of|about)\b", re.IGNORECASE)
_ONLY_SUPPOSES = re.compile(r"^(?:if|what if|suppose|supposing|imagine|hypothetically|i wish)\b[^.!;]*[.!?]?$",
                            re.IGNORECASE)


def is_tentative(text: str) -> bool:
    """A question, wish or supposition: it changes nothing about what is true."""
    return bool(_TENTATIVE.search(text))


def has_change_cue(text: str) -> bool:
    return bool(CHANGE_CUE.search(text))


# "My accountant retired", "My old teacher is touring": what was the user's is no longer. "..., so I'm with
# Ledgerly now", "it's green tea instead": the statement gives the new value as well.
_WAS_MINE = re.compile(r"\b(?:retired|my (?:old|former|ex)\b|closed down|shut down|moved away|passed away)",
                       re.IGNORECASE)
_NEW_VALUE = re.compile(r"\b(?:instead|now|these days|nowadays|switched to|moved to|started|joined|"
                        r"so i'?m|so i am|replaced (?:it|them) with|went with|got a)\b", re.IGNORECASE)


def is_ending(text: str) -> bool:
    return bool(ENDING_CUE.search(text))


# Roles and things that act on the user's own attributes: "Landlord is charging 1,240 now", "Scale said 84
# kilos", "IT swapped my Dell for a MacBook". A statement opening with one is about the user, not about them.
ACTS_ON_USER = frozenset(
    "landlord landlady scale scales bank boss manager employer company work office school uni university gym "
    "doctor gp dentist clinic hospital pharmacy vet insurer insurance council payroll hr it management "
    "coach physio therapist nutritionist studio salon barber hairdresser".split()
)


def people_named(entities: Iterable[str]) -> list[str]:
    """The names a stored fact's entities give for a subject check: each name and its first word ("Anna
    Silva", "Anna")."""
    return [w for e in entities for w in (e, e.split()[0])]


def subject_of(text: str, slot_subject: str | None = None, people: Iterable[str] = ()) -> str:
    """A name or relation word when the statement is about someone else, else "user" (callers only ask
    about the speaker's own messages). ``people``: names of persons the statement mentions."""
    if slot_subject and slot_subject != "user":
        return slot_subject
    m = _THIRD_PARTY.match(text)
    if m:
        word = re.findall(_RELATIVES, m.group(0), re.IGNORECASE)
        return word[-1].lower() if word else "someone"
    named = _NAMED_START.match(text)
    if named and named.group(1).lower() not in ACTS_ON_USER and (
            named.group(1) in set(people) or _unknown_name(named.group(1), text)):
        return named.group(1)
    other = _OTHER_START.match(text)
    if other:
        return other.group(1).lower()  # "They love the park", "You got a new job": not the speaker's own
    return "user"  # the speaker's own message with no one else as its subject


def _unknown_name(word: str, text: str) -> bool:
    """A capitalised word opening a statement that says nothing of the speaker and goes on about "he" or
    "she" ("Tomasz stayed behind in Leeds, he got a job at the uni."): a person, even when no entity was
    recognised for it. Common words and words naming an attribute are not names."""
    low = word.lower()
    if _FIRST_PERSON.search(text) or not _HE_SHE.search(text) or low in _STOP or low in _CUE_WORDS:
        return False
    return not (low in _FILLER or low in _TIME_WORDS or any(p.search(word) for _, _, p in _COMPILED))


_HE_SHE = re.compile(r"\b(?:he|she|he's|she's|him|his|her|hers)\b", re.IGNORECASE)


def attribute_of(text: str, slot_subject: str | None = None, slot_attribute: str | None = None,
                 people: Iterable[str] = ()) -> Attribute | None:
    """The attribute a statement sets, or None when no family applies (it is then only a keyed fact)."""
    subject = subject_of(text, slot_subject, people)
    own = own_attribute(text)
    if own and re.fullmatch(_RELATIVES, own[0].replace("_", "-"), re.IGNORECASE) and not own[1][:1].isupper():
        own = None  # "my housemate is doing a PhD" is the housemate's; "my sister is Anna" names the user's
    if own and (not slot_attribute or subject != "user"):
        slot_attribute, subject = own[0], "user"
    if slot_attribute:
        family = family_of(slot_attribute)
        if family == "schedule" and subject == subject.lower():
            subject = "user"  # an event of the user's ("the recital"): keyed by what it is about
        return Attribute(subject, family, single_valued(family))
    for name, single, pattern in _COMPILED:
        if pattern.search(text):
            return Attribute(subject, name, single)
    return None


def content_words(text: str) -> set[str]:
    """Lower-case words that carry the topic (stop words and short words dropped, plurals folded)."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in _STOP or len(w) < 3:
            continue
        out.add(w[:-1] if w.endswith("s") and len(w) > 4 else w)
    return out


_CUE_WORDS = frozenset(
    "dropped drop quit left switched switch changed moved new now anymore instead sold cancelled canceled called "
    "rescheduled postponed pushed replaced upgraded traded stopped started starting joined finally since lately "
    "gave giving broke split promoted transferred actually went raised lost gained ended done back turned again "
    "cut became got took accepted adopted bought finished graduated withdrew pulled retired resigned come around "
    "out off longer".split()
)


def _topic_words(text: str) -> set[str]:
    """Content words without the words that only mark a change ("dropped out", "switched", "now")."""
    return content_words(text) - _CUE_WORDS


# Words that say the thing named was put aside for another: the old value is named, the new one given.
_DISPLACE = re.compile(
    r"\b(?:switch(?:ed|ing)|swapp?(?:ed|ing)?|replac(?:ed|ing)|ditch(?:ed|ing)|instead of|from [\w' -]{1,30} to|"
    r"traded|moved on from|sold|quit|gave up|giving up|no longer|anymore|any more)\b",
    re.IGNORECASE,
)


_DIGITS = re.compile(r"\d[\d,.:]*(?:\s?(?:k|am|pm)\b|[a-z]+)?", re.IGNORECASE)
_CAPITALISED = re.compile(r"(?:^|(?<=[\s(\"'/-]))([A-Z][\w&]*(?:'s)?)")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\s[-\u2013]\s)$")


def value_words(text: str) -> tuple[set[str], set[str]]:
    """(numbers, names) a statement gives as values: "Rent is 1,240 now" -> ({"1240"}, set()); "Aldi opened
    round the corner" -> (set(), {"aldi"}). A capitalised word opening a sentence is a name unless it is a
    common word (stop words, change words, words with a common ending); "I" is never one."""
    numbers = {m.group(0).replace(",", "").replace(" ", "").lower().rstrip(".:") for m in _DIGITS.finditer(text)}
    names: set[str] = set()
    for m in _CAPITALISED.finditer(text):
        word = m.group(1).removesuffix("'s")
        low = word.lower()
        if low in _TIME_WORDS or low in ("i", "i'm", "i've", "i'd", "i'll") or len(word) < 2:
            continue
        if _SENTENCE_START.search(text[: m.start(1)]) and (
                low in _STOP or low in _CUE_WORDS or low in _FILLER or low in ACTS_ON_USER
                or re.search(r"(?:ed|ing|ly|s)$", low) or not word[1:].islower() and not word.isupper()):
            continue
        names.add(low)
    return numbers, names


_PAST_EVENT = re.compile(
    r"^\s*(?:[\w']+,?\s+){0,3}?(?:i|we)\s+(?:just\s+|finally\s+|recently\s+|once\s+)?"
    r"(?!(?:lived|used|moved|started|joined|switched|changed|weighed)\b)"
    r"(?:\w+ed|bought|went|did|made|ran|took|saw|met|won|spent|paid|found|gave|wrote|read|built|came|ate|drank)\b",
    re.IGNORECASE)


def reports_event(text: str) -> bool:
    """A one-off past happening of the user's ("I deadlifted 140 kg for the first time", "I bought a pair
    of 16 kg kettlebells"): it stays true, so a later number or name does not replace it."""
    return bool(_PAST_EVENT.match(text))


def gives_other_value(new_text: str, old_text: str) -> bool:
    """Does ``new_text`` give another value of the kind ``old_text`` gives: a number where the old one has a
    number, or a name where the old one has a name, that the old statement does not hold?"""
    new_nums, new_names = value_words(new_text)
    old_nums, old_names = value_words(old_text)
    return bool(old_nums and new_nums - old_nums) or bool(old_names and new_names - old_names - {"dr", "mr", "ms"})


def ends_it(new_text: str, old_text: str) -> bool:
    """Does ``new_text`` end what ``old_text`` states, naming the same thing ("Gave up the season ticket, it was
    700 quid" after "I have a season ticket at Elland Road")?"""
    return is_ending(new_text) and not is_ending(old_text) and bool(
        (_topic_words(new_text) & _topic_words(old_text)) - _TIME_WORDS)


def names_differ(new_text: str, old_text: str) -> bool:
    """Each statement names something the other does not ("a data analyst at Klarna" after "a data analyst at
    Spotify"): one slot value read from both does not make them the same value."""
    new_names, old_names = value_words(new_text)[1], value_words(old_text)[1]
    return bool(new_names - old_names) and bool(old_names - new_names)


@dataclass(frozen=True)
class Decision:
    """Whether a new statement replaces an old fact, and whether it said so itself (``explicit``)."""

    replaces: bool
    explicit: bool
    reason: str


# The main clause says what the statement is about; "the buses were always late" after it is only a reason.
_CLAUSE_BREAK = re.compile(r"[,;:]|\s(?:but|because|since|as|so)\s", re.IGNORECASE)
_PAST_STATE = re.compile(r"\b(?:was|were|used to|had been|back when|back then)\b", re.IGNORECASE)


_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|a second|a third|no)\b",
                     re.IGNORECASE)
_TIME_VALUE = re.compile(r"\d|\b(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b|"
                         r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\b(?:noon|midnight|morning|evening|afternoon|tonight|tomorrow)\b",
                         re.IGNORECASE)
_NAME_VALUE = re.compile(r"\d|(?<!^)(?<![.!?] )\b[A-Z][A-Za-z]+")
_OWN_START = re.compile(r"^\s*(?:[\w']+,?\s+){0,3}?(?:i|i'm|i've|i'd|i'll|we|we're|we've|my|our)\b", re.IGNORECASE)
_COUNTED = frozenset({"pets", "children", "weight", "rent", "salary", "age"})


def states_value(text: str, family: str, explicit: bool) -> bool:
    """Does the statement give the attribute a value, rather than mention its topic in passing ("my dogs
    go nuts on hikes" says nothing about how many dogs)? Counted families need a number, schedules a time,
    favourites the "favourite X is" form; others a name or number, or a change said in the first person."""
    if family in _COUNTED:
        return bool(_NUMBER.search(text))
    if family == "schedule":
        return bool(_TIME_VALUE.search(text))
    if family == "favorite":
        return bool(re.search(r"favou?rite \w+(?: \w+)? (?:is|are|'s)\b", text, re.IGNORECASE))
    return bool(_NAME_VALUE.search(text.strip())) or explicit and bool(_OWN_START.match(text))


def decide(new_text: str, new_attr: Attribute, old_text: str, old_attr: Attribute | None, cosine: float,
           *, same_value: bool, message: str = "") -> Decision:
    """Does ``new_text`` replace the current fact ``old_text``?

    Single-valued families: any other value of the same subject's attribute replaces it. Keyed families:
    only a statement about the same thing (shared topic words or a close vector) that marks a change or
    an ending replaces it. Without a family, only a close, cued statement about the same thing does.
    """
    explicit = has_change_cue(new_text) or has_change_cue(message)  # the message as a whole may say it
    if same_value:
        return Decision(False, explicit, "same value")
    if _PAST_STATE.search(_CLAUSE_BREAK.split(new_text, 1)[0]) and "now" not in new_text.lower():
        return Decision(False, explicit, "says how things were")
    if reports_event(new_text) and reports_event(old_text):
        return Decision(False, explicit, "two happenings")  # "I deadlifted 140 kg" after "I bought 16 kg weights"
    if old_attr is not None and old_attr.subject != new_attr.subject:
        return Decision(False, explicit, "another subject")
    shared = _topic_words(new_text) & _topic_words(old_text)
    if old_attr is not None and _DISPLACE.search(new_text) and shared - _TIME_WORDS and cosine >= DISPLACE_COSINE:
        return Decision(True, True, "says the old value was replaced")  # "switched me from amlodipine to ..."
    if old_attr is not None and old_attr.family == new_attr.family:
        restated = explicit and cosine >= RESTATED_COSINE  # a marked change of the same thing, however worded
        # the same frame with other words in it ("I drink rooibos in the afternoon" after "... green tea ...")
        reframed = (new_attr.single and new_attr.family not in _COUNTED and cosine >= REFRAMED_COSINE
                    and bool(_topic_words(new_text) - _topic_words(old_text) - _TIME_WORDS - _FILLER))
        if (new_attr.single or new_attr.family in KEYED_SINGLE) and not (restated or reframed) and not states_value(
                new_text, new_attr.family, explicit):
            return Decision(False, explicit, "gives no new value")
        if new_attr.single:
            named = bool(_NAME_VALUE.search(new_text.strip()))  # a name or number is a value in itself
            if not named and cosine < (SINGLE_COSINE_CUED if explicit else SINGLE_COSINE):
                return Decision(False, explicit, "too far from the old fact")
            return Decision(True, explicit, f"new value for {new_attr.family}")
        about_same = cosine >= KEYED_COSINE or bool(shared - _TIME_WORDS) and cosine >= KEYED_SHARED_COSINE
        if about_same and new_attr.family in KEYED_SINGLE:
            return Decision(True, explicit, f"new value for this {new_attr.family}")
        if about_same and (explicit or is_ending(new_text) != is_ending(old_text)):
            return Decision(True, True, f"{new_attr.family} changed")
        return Decision(False, explicit, "another item of a keyed attribute")
    if explicit and shared and (cosine >= CUED_COSINE or is_ending(new_text) and cosine >= ENDING_COSINE):
        return Decision(True, True, "cued change of a close fact")
    return Decision(False, explicit, "unrelated")


DISPLACE_COSINE = 0.4  # a statement naming the old thing as replaced ("swapped X for Y") this close
REFRAMED_COSINE = 0.5  # an unmarked statement of a one-valued family this close, with other words, is a new value
RESTATED_COSINE = 0.7  # a marked change this close to a fact of its family gives a new value, named or not
KEYED_COSINE = 0.72  # two statements of one keyed family this close are about the same thing
KEYED_SHARED_COSINE = 0.5  # ... or this close and sharing a topic word
SINGLE_COSINE = 0.45  # an unmarked new value with no name or number must be this close to the old fact
SINGLE_COSINE_CUED = 0.35  # a marked one ("now", "switched") this close
ENDING_COSINE = 0.45  # ... or this close when it ends the thing ("I sold the Fiesta")
CUED_COSINE = 0.6  # a cued statement this close to a fact of no family is about the same thing
