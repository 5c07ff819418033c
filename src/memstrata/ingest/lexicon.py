"""The words and patterns the sentence reader knows: pronouns, verb classes, event nouns, cue and drop patterns.

Plain data shared by :mod:`memstrata.ingest.syntax`, :mod:`memstrata.ingest.sentence` (drop rules) and
:mod:`memstrata.ingest.importance` (scoring). One vocabulary in one place, so the drop rules and the score
never disagree on what a word means.
"""

from __future__ import annotations

import re

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
ADDRESS_ME = re.compile(r"\b(?:call|address|refer\s+to)\s+me\b", re.IGNORECASE)  # how to address the user
PERSISTENCE = re.compile(
    r"\b(?:always|never|going\s+forward|in\s+(?:the\s+)?future|whenever|every\s+time|"
    r"by\s+default|moving\s+forward|each\s+time|all\s+the\s+time|no\s+longer|anymore|from\s+today|"
    r"from\s+(?:now|here|this\s+point|this\s+moment|today|this\s+day)\s+(?:on|onwards?|out|forward)|"
    r"henceforth|hereafter|(?:for|in)\s+(?:all\s+)?(?:future|later|subsequent)\s+(?:\w+\s+)?"
    r"(?:chats?|conversations?|sessions?|answers?|replies|messages|requests|questions|code|suggestions?)|"
    r"until\s+(?:further\s+notice|i\s+(?:say|tell\s+you)\s+otherwise)|for\s+good|as\s+a\s+rule)\b",
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

# The rules extractor's own words: entity labels, occupations, attribute names, times of day.
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
