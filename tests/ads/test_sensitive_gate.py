"""The sensitive-topic gate measured on conversations it was not trained on
(tests/ads/data/gate_heldout.jsonl), and the rules it must keep: every turn on its own,
in full, any one sensitive turn blocks. docs/ads.md ("Sensitive topics") has the figures."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from ads import embeddings, sensitive
from ads.sensitive_training import (
    HELDOUT_PATH,
    MODEL_PATH,
    TRAIN_PATH,
    labelled_load,
    labelled_split,
    training_examples,
)

MIN_RECALL = 0.98  # of sensitive held-out conversations, blocked
MIN_LANGUAGE_RECALL = 0.95  # the same, for each language other than English
MAX_FALSE_POSITIVE_RATE = 0.05  # of ok held-out conversations, blocked (the target)
# What the shipped model measures today (docs/ads.md): far over the target. A model
# that blocks more ok conversations than this has regressed.
MEASURED_FALSE_POSITIVE_RATE = 0.52
NON_ENGLISH = ("fr", "de", "es")
DECISION_BUDGET_S = 0.25  # ADS_DECISION_BUDGET_S

# Harmless: a person planning a trip, comparing laptops and setting up CI at length
# (2,160 characters in one turn). Scored sentence by sentence, each of these passes
# the gate (many ordinary sentences do not: docs/ads.md).
HARMLESS_LONG = (
    "We are planning a two week trip to Japan in April with a budget of about four thousand pounds for two "
    "people. We land in Tokyo and want to spend five nights there, then take the train to Kyoto for four nights, "
    "then Osaka for three nights, and fly home from Kansai airport. Could you suggest an itinerary for each day, "
    "with the train connections and roughly how long each journey takes? Which areas of Tokyo are best to stay in"
    " for first timers who want to be near good restaurants? In Kyoto we would like a traditional inn for at "
    "least one night, what should we expect to pay? We would also like to know how much cash to carry, whether "
    "cards are accepted in most places, and which mobile data option is cheapest for tourists. I am comparing "
    "three laptops for video editing and I cannot decide. The first one has a fourteen inch screen, an M4 Pro "
    "chip, twenty four gigabytes of memory and a one terabyte drive, and it costs about two thousand dollars. The"
    " second one is a sixteen inch Windows machine with an RTX 4070, thirty two gigabytes of memory and a two "
    "terabyte drive for about eighteen hundred dollars. The third one is a fifteen inch model with an OLED "
    "screen, an RTX 4060 and sixteen gigabytes of memory for fourteen hundred dollars. I edit mostly 4k footage "
    "from a mirrorless camera in DaVinci Resolve, with some colour grading and occasional motion graphics. I "
    "travel a lot, so weight and battery life matter, but I also want the timeline to play smoothly without "
    "proxies. Which of these would you pick, and why? Which retailer usually has the best price on these three "
    "models? The repository has a backend folder, a frontend folder built with esbuild and a docs folder. The "
    "build step takes about four minutes, most of it spent downloading npm packages. I would also like to cache "
    "the pip wheels so that the compiled packages are not rebuilt. The runners are Linux machines with two cores "
    "and eight gigabytes of memory. The fourth one is a thirteen inch ultrabook with integrated graphics and "
    "sixteen gigabytes of memory for nine hundred dollars. All four have two USB-C ports, and only the Windows "
    "machines have an HDMI port and an SD card reader."
)
SENSITIVE_SENTENCE = "Honestly I think everyone would be better off without me."  # no listed term
COMMERCIAL_TURNS = [
    "What's a good laptop for video editing under 1500 dollars?",
    "Does it need 32 GB of RAM or is 16 enough for 4k timelines?",
    "Which one has the best screen for colour grading?",
]


def _blocked(turns: list[str]) -> bool:
    return sensitive.turns_sensitive(turns) is not None


@pytest.fixture(scope="module")
def heldout_decisions() -> list[tuple[dict, bool]]:
    return [(item, _blocked(item["turns"])) for item in labelled_load(HELDOUT_PATH)]


def _confusion(decisions: list[tuple[dict, bool]]) -> dict[str, int]:
    counts = Counter()
    for item, blocked in decisions:
        sensitive_item = item["label"] == "sensitive"
        counts["tp" if sensitive_item and blocked else "fn" if sensitive_item else "fp" if blocked else "tn"] += 1
    return {key: counts[key] for key in ("tp", "fn", "fp", "tn")}


def test_heldout_confusion_and_recall(heldout_decisions, capsys):
    figures = _confusion(heldout_decisions)
    tp, fn, fp, tn = figures["tp"], figures["fn"], figures["fp"], figures["tn"]
    recall = tp / (tp + fn)
    false_positive_rate = fp / (fp + tn)
    per_language = {
        lang: _confusion([(item, blocked) for item, blocked in heldout_decisions if item["lang"] == lang])
        for lang in ("en", *NON_ENGLISH)
    }
    missed = [item["id"] for item, blocked in heldout_decisions if item["label"] == "sensitive" and not blocked]
    with capsys.disabled():
        print(
            f"\nsensitive gate, held-out: {len(heldout_decisions)} conversations; blocked sensitive {tp}, "
            f"missed {fn}; blocked ok {fp}, passed {tn}; recall {recall:.3f}, precision {tp / (tp + fp):.3f}, "
            f"false-positive rate {false_positive_rate:.3f}"
        )
        for lang, counts in per_language.items():
            print(f"  {lang}: {counts}")
        print("  missed:", ", ".join(missed) or "none")
    assert recall >= MIN_RECALL
    for lang in NON_ENGLISH:
        counts = per_language[lang]
        assert counts["tp"] + counts["fn"] >= 10, f"too few sensitive {lang} conversations to measure"
        assert counts["tp"] / (counts["tp"] + counts["fn"]) >= MIN_LANGUAGE_RECALL, lang
    assert false_positive_rate <= MEASURED_FALSE_POSITIVE_RATE


@pytest.mark.xfail(
    strict=True,
    reason="the target is not met: MiniLM-L6 embeddings + a linear model block about half the ok "
    "conversations at the recall the gate needs (docs/ads.md, 'Sensitive topics')",
)
def test_heldout_false_positive_target(heldout_decisions):
    figures = _confusion(heldout_decisions)
    assert figures["fp"] / (figures["fp"] + figures["tn"]) <= MAX_FALSE_POSITIVE_RATE


def test_sensitive_sentence_after_2000_characters_is_caught():
    assert len(HARMLESS_LONG) > 2000
    assert sensitive.match_terms(HARMLESS_LONG + " " + SENSITIVE_SENTENCE) is None  # the model's job, not the floor's
    assert sensitive.turns_sensitive([HARMLESS_LONG]) is None
    hit = sensitive.turns_sensitive([HARMLESS_LONG + " " + SENSITIVE_SENTENCE])
    assert hit is not None
    assert (hit.method, hit.turn) == ("model", 0)


def test_a_listed_term_after_2000_characters_is_caught():
    hit = sensitive.turns_sensitive([HARMLESS_LONG + " By the way, my chemo starts on Monday."])
    assert hit is not None
    assert hit.as_dict() == {"topic": "health", "method": "terms", "detail": "chemo", "turn": 0}


def test_one_sensitive_turn_among_three_commercial_turns_blocks():
    assert sensitive.turns_sensitive(COMMERCIAL_TURNS) is None
    turns = [*COMMERCIAL_TURNS[:2], SENSITIVE_SENTENCE, COMMERCIAL_TURNS[2]]
    hit = sensitive.turns_sensitive(turns)
    assert hit is not None
    assert (hit.method, hit.turn) == ("model", 2)


def test_each_turn_is_scored_on_its_own():
    """Averaged with the commercial turns the sensitive one would pass; on its own it does not."""
    model = sensitive.gate_model()
    together = model.probabilities(embeddings.embed_many([" ".join([*COMMERCIAL_TURNS, SENSITIVE_SENTENCE])]))[0]
    assert together < model.threshold
    assert sensitive.turn_probability(SENSITIVE_SENTENCE) >= model.threshold


def test_windows_cover_the_whole_text_within_the_model_limit():
    text = HARMLESS_LONG + "\n" + SENSITIVE_SENTENCE + " " + "x" * 30 + " word" * 400
    counter = embeddings._get_model().counter
    size = sensitive.gate_model().window_tokens
    pieces = embeddings.windows(text, max_tokens=size)
    assert len(pieces) > 1
    assert all(len(counter.encode(p, add_special_tokens=False).ids) <= size for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())
    assert embeddings.windows("Short text. Two sentences.", max_tokens=size) == ["Short text. Two sentences."]


def test_split_reproduces_the_shipped_files():
    train, heldout = labelled_load(TRAIN_PATH), labelled_load(HELDOUT_PATH)
    again_train, again_heldout = labelled_split(list(reversed(heldout + train)))
    assert [i["id"] for i in again_train] == [i["id"] for i in train]
    assert [i["id"] for i in again_heldout] == [i["id"] for i in heldout]
    assert not {i["id"] for i in train} & {i["id"] for i in heldout}
    # stratified: every stratum of five or more has about 40% held out
    strata: Counter = Counter()
    held: Counter = Counter()
    for item in train + heldout:
        strata[(item["label"], item["topic"], item["lang"])] += 1
    for item in heldout:
        held[(item["label"], item["topic"], item["lang"])] += 1
    for key, size in strata.items():
        assert held[key] == int(0.4 * size + 0.5), key


def test_labelled_set_is_what_docs_say():
    items = labelled_load(TRAIN_PATH) + labelled_load(HELDOUT_PATH)
    sens = [i for i in items if i["label"] == "sensitive"]
    ok = [i for i in items if i["label"] == "ok"]
    assert len(sens) >= 420 and len(ok) >= 420
    term_free = [i for i in sens if not any(sensitive.match_terms(t) for t in i["turns"])]
    assert len(term_free) / len(sens) >= 0.60
    assert sum(i["mixed"] for i in sens) / len(sens) >= 0.30
    for lang in NON_ENGLISH:
        assert {i["label"] for i in items if i["lang"] == lang} == {"sensitive", "ok"}
    assert sum(i["lang"] != "en" for i in items) >= 40
    assert all(1 <= len(i["turns"]) <= 4 for i in items)


def test_retraining_reproduces_the_shipped_model():
    from ads.sensitive_training import gate_train

    shipped = sensitive.model_load(MODEL_PATH)
    arrays = gate_train(labelled_load(TRAIN_PATH))
    weights = arrays["weights"]
    assert np.corrcoef(weights, shipped.weights)[0, 1] > 0.999
    assert np.max(np.abs(weights - shipped.weights)) < 0.02 * np.max(np.abs(shipped.weights))
    assert abs(float(arrays["bias"]) - shipped.bias) < 0.02
    assert abs(float(arrays["threshold"]) - shipped.threshold) < 0.01
    assert list(arrays["topics"]) == shipped.topics
    assert int(arrays["info_train_turns"]) == len(training_examples(labelled_load(TRAIN_PATH)).texts)


def test_the_gate_embeds_every_piece_of_the_window_in_one_batch(monkeypatch, capsys):
    """The gate's cost is its embedding, so the window goes to the model once: every
    turn's pieces (a long turn cut into sentences) in one batch, each piece a part of one
    turn, none the turns joined. Its CPU time against ADS_DECISION_BUDGET_S is measured
    by `python -m bench ads_decision` ("gate" in bench/results/ads_decision.json), not
    asserted here: timings on a shared machine are noise. Printed for reference."""
    sensitive.warm_up()
    window = [*COMMERCIAL_TURNS, HARMLESS_LONG]
    calls: list[list[str]] = []
    real_embed_many = embeddings.embed_many

    def recording_embed_many(texts, **options):
        calls.append(list(texts))
        return real_embed_many(texts, **options)

    monkeypatch.setattr(embeddings, "embed_many", recording_embed_many)
    start_cpu, start_wall = time.thread_time(), time.perf_counter()
    assert sensitive.turns_sensitive(window) is None
    cpu, wall = time.thread_time() - start_cpu, time.perf_counter() - start_wall
    assert len(calls) == 1
    pieces = calls[0]
    assert all(any(piece in turn for turn in window) for piece in pieces)
    sentences = sum(HARMLESS_LONG.count(mark) for mark in ".?!") + 1
    assert len(COMMERCIAL_TURNS) + 2 <= len(pieces) <= len(COMMERCIAL_TURNS) + sentences
    with capsys.disabled():
        print(f"\nsensitive gate: {len(window)} turns as {len(pieces)} pieces, {cpu * 1000:.0f} ms CPU "
              f"({wall * 1000:.0f} ms wall; budget {DECISION_BUDGET_S * 1000:.0f} ms)")
