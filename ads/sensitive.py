"""The sensitive-topic gate: no ad when a conversation touches health, mental
health, politics, religion, sexuality, ethnicity, trade unions and the like.

Two independent checks, either one is enough to refuse an ad:
1. a maintained term list (word-boundary regular expressions, below), and
2. a classifier: the conversation's sentence embedding compared with a centroid of
   descriptive sentences per topic (all-MiniLM-L6-v2, the model used for matching).
The list catches the explicit words; the classifier catches the same topics said
in other words ("I can't stop crying and I don't see the point any more").
Edit the lists here; tests/ads/test_matching.py measures them on labelled data.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from ads import embeddings

# Term lists. Stems end in \w* where inflections matter. Keep them specific: a
# generic word ("party", "union", "pressure") would block harmless conversations.
TERMS: dict[str, list[str]] = {
    "health": [
        r"cancer\w*",
        r"tumou?r\w*",
        r"chemo\w*",
        r"diabet\w*",
        r"insulin",
        r"hiv",
        r"symptom\w*",
        r"diagnos\w*",
        r"prescri\w*",
        r"medication\w*",
        r"antibiotic\w*",
        r"pregnan\w*",
        r"miscarriage\w*",
        r"abortion\w*",
        r"contracepti\w*",
        r"disease\w*",
        r"illness\w*",
        r"infection\w*",
        r"surgery",
        r"surgical",
        r"doctor\w*",
        r"hospital\w*",
        r"clinic\w*",
        r"vaccin\w*",
        r"covid\w*",
        r"blood pressure",
        r"heart attack",
        r"strokes? symptoms?",
        r"seizure\w*",
        r"epilep\w*",
        r"asthma",
        r"allerg\w*",
        r"rash\w*",
        r"migraine\w*",
        r"dementia",
        r"alzheimer\w*",
        r"parkinson\w*",
        r"disabilit\w*",
        r"chronic pain",
        r"weight loss",
        r"lose weight",
        r"obes\w*",
        r"overdose\w*",
        r"addict\w*",
        r"rehab",
        r"alcoholi\w*",
        r"std test\w*",
        r"pain ?killers?",
        r"opioid\w*",
        r"medical",
        r"sick",
        r"fever",
        r"chest pains?",
        r"numbness",
        r"nause\w*",
        r"vomit\w*",
    ],
    "mental_health": [
        r"depress\w*",
        r"anxiety",
        r"anxious",
        r"panic attack\w*",
        r"suicid\w*",
        r"self[- ]harm\w*",
        r"kill myself",
        r"end my life",
        r"want to die",
        r"therap(y|ist)\w*",
        r"psychiatr\w*",
        r"psycholog\w*",
        r"bipolar",
        r"schizo\w*",
        r"ptsd",
        r"trauma\w*",
        r"eating disorder\w*",
        r"anorexi\w*",
        r"bulimi\w*",
        r"adhd",
        r"autis\w*",
        r"ocd",
        r"lonel\w*",
        r"grief",
        r"grieving",
        r"mental health",
        r"burn(ed|t)? ?out",
        r"antidepressant\w*",
        r"ssris?",
    ],
    "politics": [
        r"politic\w*",
        r"election\w*",
        r"vot(e|es|ed|ing|er|ers)",
        r"ballot\w*",
        r"democrat\w*",
        r"republican\w*",
        r"liberal party",
        r"conservative party",
        r"labour party",
        r"tory",
        r"tories",
        r"parliament\w*",
        r"congress\w*",
        r"senat(e|or|ors)",
        r"president\w*",
        r"prime minister",
        r"government\w*",
        r"campaign for office",
        r"immigra\w*",
        r"refugee\w*",
        r"abortion law\w*",
        r"gun control",
        r"left[- ]wing",
        r"right[- ]wing",
        r"socialis\w*",
        r"communis\w*",
        r"fascis\w*",
        r"protest\w*",
        r"trump",
        r"biden",
        r"harris",
        r"putin",
        r"war in \w+",
        r"gaza",
        r"israel\w*",
        r"palestin\w*",
        r"ukrain\w*",
        r"brexit",
    ],
    "religion": [
        r"religio\w*",
        r"god",
        r"gods",
        r"jesus",
        r"christ\w*",
        r"church\w*",
        r"bible",
        r"islam\w*",
        r"muslim\w*",
        r"quran",
        r"koran",
        r"mosque\w*",
        r"jew(s|ish)?",
        r"juda\w*",
        r"synagogue\w*",
        r"torah",
        r"hindu\w*",
        r"buddhis\w*",
        r"sikh\w*",
        r"atheis\w*",
        r"a sin",
        r"sins",
        r"sinful",
        r"(sunday|catholic|skip|go to) mass",
        r"pray(er|ers|ing)?",
        r"faith",
        r"pope",
        r"ramadan",
        r"spiritual\w*",
        r"salvation",
        r"scripture\w*",
    ],
    "sexuality": [
        r"sex",
        r"sexual\w*",
        r"gay",
        r"lesbian\w*",
        r"bisexual\w*",
        r"transgender\w*",
        r"trans (wo)?m[ae]n",
        r"lgbt\w*",
        r"queer",
        r"coming out",
        r"gender identity",
        r"porn\w*",
        r"erotic\w*",
        r"nude\w*",
        r"dating app\w*",
        r"hook ?up\w*",
        r"orgasm\w*",
        r"fetish\w*",
        r"intercourse",
    ],
    "ethnicity": [
        r"ethnic\w*",
        r"racis\w*",
        r"racial\w*",
        r"race relations",
        r"black people",
        r"white people",
        r"asian people",
        r"hispanic\w*",
        r"latino\w*",
        r"indigenous",
        r"minorit(y|ies)",
        r"discriminat\w*",
        r"slur\w*",
        r"anti[- ]?semit\w*",
        r"xenophob\w*",
        r"nationality",
    ],
    "trade_unions": [
        r"trade unions?",
        r"labou?r unions?",
        r"unioni[sz]\w*",
        r"join(ing)? a union",
        r"strike action",
        r"on strike",
        r"collective bargaining",
        r"shop steward\w*",
        r"teamsters",
    ],
    "finance_hardship": [
        r"bankrupt\w*",
        r"debt collector\w*",
        r"can'?t pay (my )?rent",
        r"evict\w*",
        r"payday loan\w*",
        r"gambling",
        r"casino\w*",
    ],
    "crime_and_law": [
        r"arrest\w*",
        r"criminal record",
        r"lawsuit\w*",
        r"divorce\w*",
        r"custody",
        r"domestic (abuse|violence)",
        r"abus(e|ed|ive)",
        r"assault\w*",
        r"rape\w*",
        r"harass\w*",
    ],
    # Someone saying they are a child: conservative ("I'm 16 weeks into training" also
    # matches, and only costs an ad).
    "minors": [
        r"(i am|i'?m|im) (1[0-7]|[5-9])( years old| yo| y/o)?",
        r"(1[0-7]|[5-9]) (years old|yo|y/o) (boy|girl|kid|student)",
        r"my (school ?)?teacher",
        r"middle school",
        r"high school",
        r"my homework",
    ],
}

# Descriptions for the classifier: what a conversation on the topic sounds like.
DESCRIPTIONS: dict[str, list[str]] = {
    "health": [
        "I have symptoms and want to know what illness or disease it could be.",
        "My doctor prescribed medication; what are the side effects and the right dose?",
        "Medical question about pain, a condition, a treatment or a diagnosis.",
        "My child has a high fever and a cough; should we go to the hospital?",
        "Something hurts in my body: pain in my chest, back, stomach or head, numbness or dizziness.",
        "Is this lump, bleeding or swelling something serious that needs treatment?",
    ],
    "mental_health": [
        "I feel depressed, hopeless and anxious all the time.",
        "I can't stop crying and I don't see the point of anything any more.",
        "I have panic attacks and I am thinking about seeing a therapist.",
        "I feel so lonely and empty, nobody would notice if I disappeared.",
    ],
    "politics": [
        "Which party or candidate should I vote for in the election?",
        "What do you think about the government's policy and the politicians?",
        "Debate about immigration, taxes and political ideology.",
    ],
    "religion": [
        "Does God exist, and which religion is the true faith?",
        "Questions about prayer, church, the Bible, the Quran or spiritual beliefs.",
    ],
    "sexuality": [
        "Questions about my sexual orientation, being gay or coming out.",
        "Advice about sex, intimacy and my sexual relationship.",
    ],
    "ethnicity": [
        "Discussion about race, ethnic groups and racial discrimination.",
        "Questions about my ethnic background and experiences of racism.",
    ],
    "trade_unions": [
        "Should I join a trade union and go on strike with my coworkers for better pay?",
        "How does collective bargaining by a labour union work?",
    ],
}
CLASSIFIER_THRESHOLD = 0.42
_PATTERNS = {topic: re.compile(r"\b(?:" + "|".join(terms) + r")\b", re.IGNORECASE) for topic, terms in TERMS.items()}
_centroids: tuple[list[str], np.ndarray] | None = None
_lock = threading.Lock()


@dataclass(frozen=True)
class SensitiveResult:
    topic: str
    method: str  # "terms" or "classifier"
    detail: str  # the matched term, or the similarity

    def as_dict(self) -> dict:
        return {"topic": self.topic, "method": self.method, "detail": self.detail}


def match_terms(text: str) -> SensitiveResult | None:
    for topic, pattern in _PATTERNS.items():
        found = pattern.search(text or "")
        if found:
            return SensitiveResult(topic=topic, method="terms", detail=found.group(0).lower())
    return None


def _topic_centroids() -> tuple[list[str], np.ndarray]:
    global _centroids
    if _centroids is None:
        with _lock:
            if _centroids is None:
                topics = list(DESCRIPTIONS)
                rows = []
                for topic in topics:
                    mean = embeddings.embed_many(DESCRIPTIONS[topic]).mean(axis=0)
                    rows.append(mean / np.linalg.norm(mean))
                _centroids = (topics, np.vstack(rows).astype(np.float32))
    return _centroids


def classify(vector: np.ndarray) -> tuple[str, float]:
    """The closest sensitive topic and its cosine similarity."""
    topics, matrix = _topic_centroids()
    sims = matrix @ vector
    best = int(np.argmax(sims))
    return topics[best], float(sims[best])


def match_classifier(vector: np.ndarray, *, threshold: float = CLASSIFIER_THRESHOLD) -> SensitiveResult | None:
    topic, similarity = classify(vector)
    if similarity >= threshold:
        return SensitiveResult(topic=topic, method="classifier", detail=f"{similarity:.2f}")
    return None


def warm_up() -> None:
    _topic_centroids()


def is_loaded() -> bool:
    return _centroids is not None
