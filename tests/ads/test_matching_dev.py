"""Retrieval on the development set (tests/ads/data/matching_dev.json) and the
latest-turn rule.

The development set is what retrieval's floors, the earlier turns' weight and the
follow-up threshold were calibrated on (ads/selection.py, ads/services/decision.py);
the held-out set (test_matching_heldout.py) is only measured. Its conversations run
against the smoke-test campaigns of tests/ads/data/campaigns.json (plus a bike shop
for the latest-turn rule), through `decision_compute` (sensitive terms and topic
centroids, retrieval, eligibility, the auction: what retrieval is judged on, without
the request gates), with the context built as the chat builds it. Run with `-s` to see
the figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from ads import index as ad_index
from ads.matching import parse_keywords
from ads.services.decision import ads_warm_up, decision_compute
from ads.services.importing import ads_import
from tests.ads.test_matching_heldout import Score, _context, _positive_hits, _report

DATA = Path(__file__).resolve().parent / "data"
CONVERSATIONS = json.loads((DATA / "matching_dev.json").read_text())["conversations"]


def _of_kind(kind: str) -> list[dict]:
    return [c for c in CONVERSATIONS if c["kind"] == kind]


BIKE_SHOP = {
    "advertisers": [
        {
            "name": "Spoke & Chain",
            "paid_by": "Spoke & Chain Ltd.",
            "website": "https://spokeandchain.example",
            "credit_usd": "100.00",
            "campaigns": [
                {
                    "name": "Bike shop",
                    "status": "active",
                    "bid_type": "cpc",
                    "max_bid_usd": "0.80",
                    "daily_budget_usd": "20.00",
                    "lifetime_budget_usd": "200.00",
                    "keywords": ["\"road bike\"", "bike shop", "electric bike"],
                    "context_hints": "Buying a bicycle: road, city and electric bikes, frame sizes, gears and brakes.",
                    "creatives": [
                        {
                            "question": "Which bike should I buy to ride to work?",
                            "headline": "The bike that fits you",
                            "text": "City, road and electric bikes with a free fitting and servicing.",
                            "landing_url": "https://spokeandchain.example/bikes",
                            "display_domain": "spokeandchain.example",
                        }
                    ],
                }
            ],
        }
    ]
}


@pytest.fixture
def campaigns_and_bike_shop(labelled_campaigns):
    ads_import(data=BIKE_SHOP, auto_approve=True, source="tests")
    ad_index.reset()


def _served(*turns: str) -> str | None:
    """The campaign retrieval chooses for a conversation of these user turns (oldest
    first), or None."""
    selection = decision_compute(context_text=_context(list(turns)), now=timezone.now()).selection
    return selection.winner.entry.campaign_name if selection and selection.winner else None


def _measure(conversations: list[dict]) -> Score:
    ads_warm_up()
    score = Score()
    for conv in conversations:
        got = _served(*conv["turns"])
        score.total += 1
        if got is None:
            score.none += 1
        elif got in conv["acceptable"]:
            score.acceptable += 1
        else:
            score.wrong += 1
        if (got not in conv["acceptable"]) if conv["acceptable"] else got is not None:
            score.misses.append(f"{conv['id']}: got {got or 'no ad'}, expected {conv['acceptable'] or 'no ad'}")
    return score


def test_dev_set_is_what_it_claims():
    campaigns = json.loads((DATA / "campaigns.json").read_text())
    keywords = {
        c["name"]: parse_keywords("\n".join(c["keywords"])) for a in campaigns["advertisers"] for c in a["campaigns"]
    }
    assert len({c["id"] for c in CONVERSATIONS}) == len(CONVERSATIONS)
    for conv in CONVERSATIONS:
        assert set(conv["acceptable"]) <= set(keywords), conv["id"]
        if conv["kind"] == "keyword_free":
            text = _context(conv["turns"])
            assert not any(_positive_hits(keywords[n], text) for n in conv["acceptable"]), conv["id"]


# --- the latest turn weighs most --------------------------------------------------


def test_the_latest_turn_chooses_the_ad_when_the_conversation_moved_on(campaigns_and_bike_shop):
    """We talked about GPUs, now I want a bike: the bike shop's ad, never the GPUs',
    though the earlier turn names the GPU campaign's keywords exactly."""
    assert _served("Where can I rent an H100 to fine-tune llama?") == "GPU rental"
    got = _served(
        "Where can I rent an H100 to fine-tune llama?",
        "OK, thanks. Now I want a bike to ride to work, which one should I buy?",
    )
    assert got == "Bike shop"


def test_a_conversation_that_moved_on_to_small_talk_gets_no_ad(labelled_campaigns):
    assert _served("Which running shoes are good for flat feet?") == "Running shoes"
    assert _served("Where can I rent an H100 to fine-tune llama?", "Never mind. Who painted the Mona Lisa?") is None
    assert _served("Which running shoes are good for flat feet?", "Thanks! Now tell me a joke about penguins.") is None


def test_a_vague_follow_up_keeps_the_earlier_turns_topic(labelled_campaigns):
    """The latest turn says too little on its own; it follows the earlier one up, so the
    earlier turn still says what the conversation is about."""
    assert _served("My typing setup clacks so loudly my partner complains when I work late.") == "Mechanical keyboards"
    got = _served(
        "My typing setup clacks so loudly my partner complains when I work late.",
        "What can I change to make it quieter?",
    )
    assert got == "Mechanical keyboards"


# --- the figures ------------------------------------------------------------------

# What calibration reached on this set (docs/ads.md, "Matching, measured").
DEV_MIN_ACCEPTABLE = {"keyword_free": 0.85, "keyword": 0.90, "moved_on": 0.45}
DEV_MAX_WRONG = {"keyword_free": 0.05, "keyword": 0.0, "moved_on": 0.10}
DEV_OFF_TOPIC_MAX_WITH_AD = 0.10


@pytest.mark.parametrize("kind", ["keyword_free", "keyword", "moved_on"])
def test_dev_on_topic(labelled_campaigns, capsys, kind):
    score = _measure(_of_kind(kind))
    _report(capsys, f"dev {kind}", score)
    assert score.share(score.acceptable) >= DEV_MIN_ACCEPTABLE[kind]
    assert score.share(score.wrong) <= DEV_MAX_WRONG[kind]


def test_dev_off_topic(labelled_campaigns, capsys):
    score = _measure(_of_kind("off_topic"))
    _report(capsys, "dev off-topic", score)
    assert score.share(score.total - score.none) <= DEV_OFF_TOPIC_MAX_WITH_AD
