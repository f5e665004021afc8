"""Does the person say, in the conversation, that they are under 18?

`turns_say_minor(turns)` reads each user turn on its own against a small rule set
(regular expressions, in the ad languages: en, fr, de, es) and returns the first
statement found, or None. The rules look for the person speaking about themselves:

- an age statement in the first person with an age from 6 to 17, in digits or words
  ("I'm 15", "I am fifteen", "i'm 14 years old", "as a 16-year-old", "j'ai 14 ans",
  "ich bin 15", "ich bin 15 Jahre alt", "tengo 14 años"), not followed by a unit
  ("I'm 15 minutes late", "I'm 15% sure", "j'ai 14 ans d'expérience", "tengo 14 años
  de experiencia" are not ages);
- a school year the person is in, mapped to ages under 18: US grades 1–12 ("I'm in
  8th grade", "I'm a freshman in high school"), UK years 1–13 ("I'm in year 9"),
  middle or high school ("I'm in high school"), the French collège and lycée
  classes ("je suis en 4e", "je suis en seconde", "je suis au lycée"), German
  classes ("ich bin in der 8. Klasse", "ich gehe in die 9. Klasse"), the Spanish ESO
  and bachillerato ("estoy en 3º de la ESO", "estoy en la secundaria").

It does not count: other people ("my son is 12", "mon fils a 12 ans"), the past
("I was 15 when…", "when I was in year 9"), ages of 18 or more, ages written in
words past seventeen, slang ("I'm a teen"), and anything implied but not said ("my
mom won't let me" alone). docs/ads.md, "Gate rules", lists these limits.

Once said, it sticks to the conversation: `minor_conversation_gate(...)` records the
conversation (ads.models.MinorConversation, its id and when; not what was said) and
answers for it from then on, after the statement has left the gate's window too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ads.models import MinorConversation

_WORD_AGES_EN = "six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
_WORD_AGES_FR = "six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|dix-sept"
_WORD_AGES_DE = "sechs|sieben|acht|neun|zehn|elf|zwölf|dreizehn|vierzehn|fünfzehn|sechzehn|siebzehn"
_WORD_AGES_ES = "seis|siete|ocho|nueve|diez|once|doce|trece|catorce|quince|dieciséis|dieciseis|diecisiete"
_AGE = r"(?:[6-9]|1[0-7])"
# What may follow "I'm 15" when it is a quantity, not an age.
_UNIT = (
    r"(?:minutes?|mins?|hours?|hrs?|h\b|days?|weeks?|months?|seconds?|secs?|%|percent|km|k\b|miles?|kg|lbs?|"
    r"pounds?|euros?|dollars?|bucks|cm|inch|inches|feet|foot|ft|points?|pages?|items?|times|steps?|"
    r"th\b|st\b|nd\b|rd\b|x\b|:|[.,]\d|\d|-?(?:minute|hour|day|week|month)|years? (?:in|into|of|ago|later|experience)|"
    r"years? (?:at|with|since|on)|in line|on the list|out of)"
)

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "en_age",
        re.compile(
            rf"\b(?:i'?m|i am|im)\s+(?:only\s+|just\s+)?(?:{_AGE}|{_WORD_AGES_EN})\b(?!\s*{_UNIT})"
            r"(?:\s*(?:years?|yrs?)[\s-]*old|\s*y/?o\b)?",
            re.IGNORECASE,
        ),
    ),
    (
        "en_year_old",
        re.compile(
            rf"\b(?:i'?m|i am|im|as)\s+an?\s+(?:{_AGE}|{_WORD_AGES_EN})[\s-]*(?:years?|yrs?)[\s-]*old\b",
            re.IGNORECASE,
        ),
    ),
    ("en_age_is", re.compile(rf"\bmy age is\s+{_AGE}\b(?!\s*{_UNIT})", re.IGNORECASE)),
    (
        "en_grade",
        re.compile(
            r"\b(?:i'?m|i am|im)\s+(?:now\s+|currently\s+)?(?:in\s+(?:the\s+)?"
            r"(?:(?:[1-9]|1[0-2])(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
            r"eleventh|twelfth)\s+grade|in\s+(?:the\s+)?grade\s+(?:[1-9]|1[0-2])\b"
            r"|in\s+(?:middle|high|junior high|secondary|elementary|primary)\s+school"
            r"|an?\s+(?:freshman|sophomore|junior|senior)\s+in\s+high\s+school"
            r"|in\s+year\s+(?:[1-9]|1[0-3])\b(?!\s*(?:of|at)\b))",
            re.IGNORECASE,
        ),
    ),
    (
        "fr_age",
        re.compile(
            rf"\bj'?\s?ai\s+(?:seulement\s+)?(?:{_AGE}|{_WORD_AGES_FR})\s+ans\b(?!\s*(?:d'|de\s|d’))",
            re.IGNORECASE,
        ),
    ),
    (
        "fr_school",
        re.compile(
            r"\bje\s+suis\s+(?:en\s+(?:6|5|4|3)(?:e|ème|eme)\b|en\s+(?:sixième|cinquième|quatrième|troisième|seconde|"
            r"première|terminale)\b|au\s+(?:collège|lycée)\b)",
            re.IGNORECASE,
        ),
    ),
    (
        "de_age",
        re.compile(
            rf"\bich\s+bin\s+(?:erst\s+|nur\s+)?(?:{_AGE}|{_WORD_AGES_DE})\b"
            r"(?!\s*(?:minuten|stunden|tage|wochen|monate|sekunden|km|kilo|%|prozent|euro|mal|cm|[.,]\d|\d))",
            re.IGNORECASE,
        ),
    ),
    (
        "de_school",
        re.compile(
            r"\bich\s+(?:bin|gehe)\s+in\s+(?:der|die)\s+(?:[1-9]|1[0-3])\.?\s*klasse\b",
            re.IGNORECASE,
        ),
    ),
    (
        "es_age",
        re.compile(
            rf"\btengo\s+(?:solo\s+|sólo\s+)?(?:{_AGE}|{_WORD_AGES_ES})\s+años\b(?!\s*(?:de\s|en\s))",
            re.IGNORECASE,
        ),
    ),
    (
        "es_school",
        re.compile(
            r"\b(?:estoy|voy)\s+(?:en|a)\s+(?:(?:[1-4])\s*(?:º|°|o)?\s*(?:de\s+)?(?:la\s+)?eso\b|la\s+secundaria\b|"
            r"el\s+(?:instituto|colegio)\b|(?:1|2)\s*(?:º|°|o)?\s*de\s+bachillerato\b|"
            r"(?:sexto|séptimo|septimo|octavo|noveno)\s+grado\b)",
            re.IGNORECASE,
        ),
    ),
]


def text_says_minor(text: str) -> str | None:
    """The first under-18 statement in `text` (the matched words), or None."""
    normalised = (text or "").replace("’", "'")
    for _name, pattern in _RULES:
        found = pattern.search(normalised)
        if found:
            return found.group(0)
    return None


def turns_say_minor(turns: Iterable[str]) -> str | None:
    """The first under-18 statement in any of the person's turns, or None."""
    for text in turns:
        said = text_says_minor(text)
        if said:
            return said
    return None


def minor_conversation_gate(*, conversation_id: str, is_adult: bool | None, turns: Sequence[str]) -> bool:
    """Whether the conversation is one of a person under 18, for good.

    The request says so (`is_adult` False: the account's answer, or the assistant read
    an under-18 statement in the person's turns) — and when the statement is in the
    window's turns, the conversation is recorded, so later requests are answered from
    the record once the statement has left the window. `is_adult` False with no
    statement (the account's answer alone) is not recorded: it is the account's, and
    the account answers for every conversation already. Answers from the record are
    never undone, also when the account later confirms "18 or older"."""
    if is_adult is False:
        if conversation_id and turns_say_minor(turns):
            MinorConversation.objects.get_or_create(conversation_id=conversation_id)  # a race: get_or_create gets
        return True
    return bool(conversation_id) and MinorConversation.objects.filter(conversation_id=conversation_id).exists()
