"""Keyword targeting: parsing the advertiser's keyword list and matching it against a
conversation, with the three match types of search advertising.

- exact  ``[gpu rental]``: the words appear together, in this order, verbatim;
- phrase ``"gpu rental"``: the words appear together, in this order, plurals and
  "-ing" forms allowed ("renting gpus" does not match, "gpu rentals" does);
- broad  ``gpu rental``: every word appears somewhere, any order, same variants.
A leading ``-`` makes a negative keyword (same match types): the campaign is never
shown when it matches. A broad negative follows search ads' broad-match negative: it
blocks when every one of its words is in the conversation, in any order, with the
same variants (case, accents, singular and plural, -ing); no synonyms, no
misspellings. "-free trial" blocks "trials that are free", not "a gratis trial".

Hand-written rather than a stemming library: the rules are three suffixes, and the
matcher runs inside a 5 ms selection budget against tens of thousands of keywords.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+(?:['’.+#][^\W_]+)*\+*#*", re.UNICODE)

EXACT, PHRASE, BROAD = "exact", "phrase", "broad"
MATCH_SCORES = {EXACT: 1.0, PHRASE: 0.9, BROAD: 0.7}
MAX_KEYWORD_WORDS = 6
MAX_KEYWORD_CHARS = 80


def tokenize(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text or "")]


def fold_accents(word: str) -> str:
    """"café" and "cafe", "über" and "uber" are one word to phrase and broad matching
    (exact matching stays verbatim)."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stem(word: str) -> str:
    """A light English normaliser: accents folded, then plural, -ing and final-e
    forms map to one key ("courses" and "course", "running" and "run", "tuning" and
    "tune", "crème" and "creme")."""
    word = fold_accents(word)
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("ing") and len(word) > 5:
        word = word[:-3]
        if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz":
            word = word[:-1]
    elif word.endswith("s") and (not word.endswith(("ss", "us", "is")) or not set(word[:-2]) & set("aeiouy")):
        word = word[:-1]  # "gpus" and "cpus" are plurals; "status" and "virus" are not
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    elif word.endswith("y") and len(word) > 3:
        word = word[:-1] + "i"
    return word


@dataclass(frozen=True)
class Keyword:
    text: str
    match_type: str
    is_negative: bool = False

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(tokenize(self.text))

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(stem(w) for w in tokenize(self.text))

    def as_line(self) -> str:
        body = {EXACT: f"[{self.text}]", PHRASE: f'"{self.text}"', BROAD: self.text}[self.match_type]
        return ("-" if self.is_negative else "") + body


class KeywordError(ValueError):
    pass


def parse_keyword(line: str) -> Keyword:
    """One line of the keyword list: ``[exact]``, ``"phrase"``, ``broad``, ``-negative``."""
    raw = line.strip()
    negative = raw.startswith("-")
    if negative:
        raw = raw[1:].strip()
    if len(raw) >= 2 and raw[0] == "[" and raw[-1] == "]":
        match_type, body = EXACT, raw[1:-1]
    elif len(raw) >= 2 and raw[0] == raw[-1] == '"':
        match_type, body = PHRASE, raw[1:-1]
    else:
        match_type, body = BROAD, raw
    words = tokenize(body)
    if not words:
        raise KeywordError(f"{line.strip()!r} has no words.")
    if len(words) > MAX_KEYWORD_WORDS:
        raise KeywordError(f"{line.strip()!r} has more than {MAX_KEYWORD_WORDS} words.")
    text = " ".join(words)
    if len(text) > MAX_KEYWORD_CHARS:
        raise KeywordError(f"{line.strip()!r} is longer than {MAX_KEYWORD_CHARS} characters.")
    return Keyword(text=text, match_type=match_type, is_negative=negative)


def parse_keywords(text: str) -> list[Keyword]:
    """A keyword list, one per line or comma-separated; duplicates dropped. Raises
    KeywordError naming every bad entry."""
    keywords: list[Keyword] = []
    errors: list[str] = []
    for line in re.split(r"[\n,]", text or ""):
        if not line.strip():
            continue
        try:
            keyword = parse_keyword(line)
        except KeywordError as exc:
            errors.append(str(exc))
            continue
        if keyword not in keywords:
            keywords.append(keyword)
    if errors:
        raise KeywordError(" ".join(errors))
    return keywords


class Context:
    """A conversation prepared once for matching against many keywords."""

    __slots__ = ("words", "stems", "word_set", "stem_set", "stem_positions", "word_positions")

    def __init__(self, text: str) -> None:
        self.words = tokenize(text)
        self.stems = [stem(w) for w in self.words]
        self.word_set = set(self.words)
        self.stem_set = set(self.stems)
        self.stem_positions: dict[str, list[int]] = {}
        self.word_positions: dict[str, list[int]] = {}
        for i, (w, s) in enumerate(zip(self.words, self.stems, strict=True)):
            self.word_positions.setdefault(w, []).append(i)
            self.stem_positions.setdefault(s, []).append(i)

    @staticmethod
    def _contiguous(seq: list[str], positions: dict[str, list[int]], needle: tuple[str, ...]) -> bool:
        n = len(needle)
        for start in positions.get(needle[0], ()):
            if tuple(seq[start : start + n]) == needle:
                return True
        return False

    def matches(self, match_type: str, words: tuple[str, ...], stems: tuple[str, ...]) -> bool:
        if match_type == EXACT:
            return self._contiguous(self.words, self.word_positions, words)
        if match_type == PHRASE:
            return self._contiguous(self.stems, self.stem_positions, stems)
        return all(s in self.stem_set for s in stems)


def keyword_matches(keyword: Keyword, text: str) -> bool:
    return Context(text).matches(keyword.match_type, keyword.words, keyword.stems)
