"""How the sensitive-topic gate's model is made: the labelled conversations, their
split, and the training that writes ads/data/gate_model.npz (read by ads/sensitive.py).

Nothing here runs in a web process; scikit-learn (a development dependency) is
imported only inside gate_train(). Commands: `manage.py ads_gate_split` and
`manage.py ads_gate_train`; docs/ads.md ("Sensitive topics") says when to run them.

The labelled set is JSON Lines, one conversation a line:
    {"id": "s-grief-en-001", "turns": ["...", "..."], "label": "sensitive" | "ok",
     "topic": "death_grief", "lang": "en", "mixed": true, "sensitive_turns": [0]}
`turns` are the person's messages (1-4). `mixed` marks a sensitive conversation that
also asks a commercial question. `sensitive_turns` are the turns that are sensitive
read on their own (the others, such as "which laptop should I buy?" after a
sensitive turn, are left out of training: they are neither example). The held-out
measure is per conversation: any turn over the threshold blocks it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN_PATH = DATA_DIR / "gate_train.jsonl"
MODEL_PATH = DATA_DIR / "gate_model.npz"
HELDOUT_PATH = Path(__file__).resolve().parent.parent / "tests" / "ads" / "data" / "gate_heldout.jsonl"

SPLIT_SEED = "lhama-gate-2026"
HELDOUT_SHARE = 0.4
LABELS = ("sensitive", "ok")
LANGS = ("en", "fr", "de", "es")


class LabelledSetError(ValueError):
    pass


def labelled_load(path: Path) -> list[dict]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            items.append(json.loads(line))
            _check(items[-1], where=f"{path.name}:{number}")
    return items


def labelled_write(path: Path, items: Iterable[dict]) -> None:
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _check(item: dict, *, where: str) -> None:
    turns = item.get("turns")
    if not (isinstance(turns, list) and 1 <= len(turns) <= 4 and all(isinstance(t, str) and t.strip() for t in turns)):
        raise LabelledSetError(f"{where}: 'turns' must be 1-4 non-empty strings")
    if item.get("label") not in LABELS:
        raise LabelledSetError(f"{where}: 'label' must be one of {LABELS}")
    if not item.get("id") or not item.get("topic") or item.get("lang") not in LANGS:
        raise LabelledSetError(f"{where}: 'id', 'topic' and 'lang' ({', '.join(LANGS)}) are required")
    marked = item.get("sensitive_turns", [])
    if not all(isinstance(i, int) and 0 <= i < len(turns) for i in marked):
        raise LabelledSetError(f"{where}: 'sensitive_turns' must index 'turns'")
    if (item["label"] == "sensitive") != bool(marked):
        raise LabelledSetError(f"{where}: a sensitive conversation marks its sensitive turns, an ok one none")


def labelled_split(
    items: list[dict], *, seed: str = SPLIT_SEED, heldout_share: float = HELDOUT_SHARE
) -> tuple[list[dict], list[dict]]:
    """(train, held-out), stratified by label, topic and language: within each
    stratum the conversations are ordered by a hash of the seed and their id, and the
    first round(share x n) are held out. The order of `items` does not matter, and
    adding a conversation moves at most one other of its stratum across the line."""
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        raise LabelledSetError("conversation ids must be unique")
    strata: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for item in items:
        strata[(item["label"], item["topic"], item["lang"])].append(item)
    heldout_ids: set[str] = set()
    for members in strata.values():
        members.sort(key=lambda it: hashlib.sha256(f"{seed}:{it['id']}".encode()).hexdigest())
        count = math.floor(heldout_share * len(members) + 0.5)
        heldout_ids.update(it["id"] for it in members[:count])
    ordered = sorted(items, key=lambda it: it["id"])
    return [it for it in ordered if it["id"] not in heldout_ids], [it for it in ordered if it["id"] in heldout_ids]


@dataclass
class Examples:
    """Training examples: one text per turn, its label (1 sensitive) and topic, and
    the conversation it came from (cross-validation folds never split one)."""

    texts: list[str]
    labels: np.ndarray
    topics: list[str]
    groups: np.ndarray


def training_examples(items: list[dict]) -> Examples:
    texts: list[str] = []
    labels: list[int] = []
    topics: list[str] = []
    groups: list[int] = []
    for number, item in enumerate(items):
        sensitive_turns = set(item.get("sensitive_turns", []))
        for index, turn in enumerate(item["turns"]):
            if item["label"] == "sensitive" and index not in sensitive_turns:
                continue
            texts.append(turn)
            labels.append(int(item["label"] == "sensitive"))
            topics.append(item["topic"])
            groups.append(number)
    return Examples(texts=texts, labels=np.array(labels), topics=topics, groups=np.array(groups))


# How the model is fitted and its threshold chosen (docs/ads.md gives the figures
# these choices were made with).
C = 1.0  # inverse L2 strength of the logistic regression
CV_FOLDS = 5
CV_SEED = 0
CV_RECALL_TARGET = 0.99  # the threshold keeps at least this share of the training conversations blocked
WINDOW_TOKENS = 48  # a little over the longest training turn (42 tokens); a longer turn is scored sentence by sentence


def _fit(vectors: np.ndarray, labels: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, class_weight="balanced", max_iter=10_000, tol=1e-8).fit(vectors, labels)


def conversation_scores(items: list[dict], probability) -> np.ndarray:
    """Per conversation: its highest turn probability (`probability(turns) -> array`)."""
    return np.array([float(np.max(probability(item["turns"]))) for item in items])


def floor_hits(items: list[dict]) -> np.ndarray:
    from ads.sensitive import match_terms

    return np.array([any(match_terms(turn) for turn in item["turns"]) for item in items])


def threshold_for_recall(scores: np.ndarray, floor: np.ndarray, sensitive: np.ndarray, target: float) -> float:
    """The highest threshold at which (floor or score >= threshold) blocks at least
    `target` of the sensitive conversations."""
    for candidate in np.sort(np.unique(scores[sensitive]))[::-1]:
        if (floor | (scores >= candidate))[sensitive].mean() >= target:
            return float(candidate)
    return float(scores.min())


def gate_train(items: list[dict]) -> dict[str, np.ndarray]:
    """Fit the model on `items` (the training part only) and choose its threshold by
    cross-validation on them; returns the arrays of ads/data/gate_model.npz."""
    import sklearn
    from sklearn.model_selection import StratifiedGroupKFold

    from ads import embeddings

    texts = sorted({turn for item in items for turn in item["turns"]})
    vector_of = dict(zip(texts, embeddings.embed_many(texts), strict=True))

    def examples(subset: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        found = training_examples(subset)
        return np.array([vector_of[t] for t in found.texts]), found.labels

    sensitive = np.array([item["label"] == "sensitive" for item in items])
    floor = floor_hits(items)
    out_of_fold = np.zeros(len(items))
    folds = StratifiedGroupKFold(n_splits=CV_FOLDS, shuffle=True, random_state=CV_SEED)
    for fit_rows, score_rows in folds.split(np.zeros(len(items)), sensitive, groups=np.arange(len(items))):
        model = _fit(*examples([items[i] for i in fit_rows]))
        for i in score_rows:
            out_of_fold[i] = model.predict_proba(np.array([vector_of[t] for t in items[i]["turns"]]))[:, 1].max()
    threshold = threshold_for_recall(out_of_fold, floor, sensitive, CV_RECALL_TARGET)
    blocked = floor | (out_of_fold >= threshold)

    found = training_examples(items)
    vectors = np.array([vector_of[t] for t in found.texts])
    model = _fit(vectors, found.labels)
    topics = sorted({topic for topic, label in zip(found.topics, found.labels, strict=True) if label})
    centroids = []
    for topic in topics:
        rows = [i for i, (t, label) in enumerate(zip(found.topics, found.labels, strict=True)) if label and t == topic]
        mean = vectors[rows].mean(axis=0)
        centroids.append(mean / np.linalg.norm(mean))
    return {
        "weights": model.coef_[0].astype(np.float64),
        "bias": np.float64(model.intercept_[0]),
        "threshold": np.float64(threshold),
        "window_tokens": np.int64(WINDOW_TOKENS),
        "topics": np.array(topics),
        "centroids": np.array(centroids, dtype=np.float32),
        "info_C": np.float64(C),
        "info_cv_folds": np.int64(CV_FOLDS),
        "info_cv_recall_target": np.float64(CV_RECALL_TARGET),
        "info_cv_recall": np.float64(blocked[sensitive].mean()),
        "info_cv_false_positive_rate": np.float64(blocked[~sensitive].mean()),
        "info_train_conversations": np.int64(len(items)),
        "info_train_turns": np.int64(len(found.texts)),
        "info_sklearn": np.array(sklearn.__version__),
    }


def gate_model_write(arrays: dict[str, np.ndarray], path: Path = MODEL_PATH) -> None:
    np.savez_compressed(path, **arrays)
