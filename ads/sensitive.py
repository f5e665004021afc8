"""The sensitive-topic gate: no ad when a conversation touches health, mental
health, politics, religion, sexuality, ethnicity, trade unions and the like.

The gate (for the decision to call per turn):
- `turns_sensitive(turns: list[str]) -> SensitiveResult | None` — the first turn of
  the window that is sensitive, or None. Every turn is checked on its own and in
  full: first the term lists below (the floor), then a logistic-regression model over
  the turn's all-MiniLM-L6-v2 embeddings (ads/embeddings.py). A turn longer than
  the model's window (48 tokens, a little over the longest training turn's 42) is
  cut into its sentences (embeddings.windows) and each is scored on its own, so
  nothing is truncated and one sensitive sentence is not diluted by the rest of
  the turn. Any one turn (window) over the model's frozen threshold blocks.
  The result carries `turn` (its index in `turns`) and `method` "terms" or "model".
- `turn_sensitive(text) -> SensitiveResult | None` — the same for one turn.
- `turn_probability(text) -> float` — the model's highest window probability.
The model is ads/data/gate_model.npz: weights, bias, threshold and per-topic
centroids (which topic a model hit is reported as), made by `manage.py
ads_gate_train` from ads/data/gate_train.jsonl (ads/sensitive_training.py). Its
measured error on the held-out conversations (tests/ads/data/gate_heldout.jsonl)
is in docs/ads.md, "Sensitive topics", and asserted by tests/ads/test_sensitive_gate.py.

Also here, as the decision path uses them today:
- `match_terms(text)` — the term lists (word-boundary regular expressions).
- `match_classifier(vector)` / `classify(vector)` — the earlier check: the vector of
  the whole (truncated) conversation compared with centroids of descriptive
  sentences per topic, cosine >= CLASSIFIER_THRESHOLD. It is what ads.services'
  decision calls until the decision moves to `turns_sensitive`; it is not measured.
- `warm_up()` loads both; `is_loaded()` says whether both are loaded.
Edit the term lists here; retrain the model after editing the labelled set.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

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


MODEL_PATH = Path(__file__).resolve().parent / "data" / "gate_model.npz"


@dataclass(frozen=True)
class SensitiveResult:
    topic: str
    method: str  # "terms", "model" (the per-turn gate) or "classifier" (the centroid check)
    detail: str  # the matched term, the model's probability, or the similarity
    turn: int | None = None  # which of the turns given to turns_sensitive()

    def as_dict(self) -> dict:
        out: dict = {"topic": self.topic, "method": self.method, "detail": self.detail}
        if self.turn is not None:
            out["turn"] = self.turn
        return out


@dataclass(frozen=True)
class GateModel:
    """The per-turn model: P(sensitive | window) = sigmoid(weights . vector + bias)."""

    weights: np.ndarray  # (DIM,)
    bias: float
    threshold: float  # a window at or over it is sensitive
    window_tokens: int
    topics: list[str]
    centroids: np.ndarray  # (len(topics), DIM), normalised: which topic a hit is
    info: dict = field(default_factory=dict)  # how it was made and its cross-validated figures

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        logits = np.asarray(vectors, dtype=np.float64) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def topic(self, vector: np.ndarray) -> str:
        return self.topics[int(np.argmax(self.centroids @ vector))]


_gate_model: GateModel | None = None


def model_load(path: Path = MODEL_PATH) -> GateModel:
    with np.load(path, allow_pickle=False) as data:
        info = {key[5:]: data[key].item() for key in data.files if key.startswith("info_")}
        return GateModel(
            weights=data["weights"].astype(np.float64),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            window_tokens=int(data["window_tokens"]),
            topics=[str(t) for t in data["topics"]],
            centroids=data["centroids"].astype(np.float32),
            info=info,
        )


def gate_model() -> GateModel:
    global _gate_model
    if _gate_model is None:
        with _lock:
            if _gate_model is None:
                _gate_model = model_load()
    return _gate_model


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


def _windows_of(text: str, model: GateModel) -> list[str]:
    return embeddings.windows(text, max_tokens=model.window_tokens)


def turn_probability(text: str) -> float:
    """The model's probability that this turn is sensitive: its highest window's."""
    model = gate_model()
    return float(model.probabilities(embeddings.embed_many(_windows_of(text, model))).max())


def turn_sensitive(text: str) -> SensitiveResult | None:
    return turns_sensitive([text])


def turns_sensitive(turns: list[str]) -> SensitiveResult | None:
    """The first sensitive turn of `turns` (each checked on its own, in full), or None.
    The term lists are checked on every turn first (cheap); then every window of
    every turn is embedded in one batch and scored by the model."""
    for index, text in enumerate(turns):
        hit = match_terms(text)
        if hit:
            return SensitiveResult(topic=hit.topic, method=hit.method, detail=hit.detail, turn=index)
    model = gate_model()
    pieces: list[str] = []
    owners: list[int] = []
    for index, text in enumerate(turns):
        if not (text or "").strip():
            continue
        for piece in _windows_of(text, model):
            pieces.append(piece)
            owners.append(index)
    if not pieces:
        return None
    # Batched by length, so short pieces are not padded to the longest one.
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    vectors = np.empty((len(pieces), embeddings.DIM), dtype=np.float32)
    vectors[order] = embeddings.embed_many([pieces[i] for i in order])
    probabilities = model.probabilities(vectors)
    for row in np.flatnonzero(probabilities >= model.threshold):
        # rows are in turn order: the first over the threshold is the first sensitive turn
        return SensitiveResult(
            topic=model.topic(vectors[row]),
            method="model",
            detail=f"{probabilities[row]:.2f}",
            turn=owners[int(row)],
        )
    return None


def warm_up() -> None:
    _topic_centroids()
    gate_model()


def is_loaded() -> bool:
    return _centroids is not None and _gate_model is not None
