"""The vectorised campaign index and the scalar rules agree on the same inputs.

The index keeps the auction's and pacing's rules as columns and applies them to every
candidate at once (ads/selection.py); the scalar code (ads/auction.py, ads/pacing.py) is
what the rules are written in. Whatever campaigns, bids, spend and clock hypothesis
draws, the index must exclude exactly the candidates the scalar rules exclude, and
crown the winner, runner-up and price that a scalar auction over every eligible bid
would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ads import auction, campaign_index, pacing
from ads import selection as ad_selection
from ads.embeddings import DIM

DAY = datetime(2026, 3, 2, tzinfo=UTC)
QUERY = np.eye(DIM, dtype=np.float32)[0]

# Few distinct values, so that equal scores (ties) and same-advertiser pairs are common.
campaign_st = st.fixed_dictionaries(
    {
        "bid_type": st.sampled_from(["cpc", "cpm"]),
        "bid_micros": st.sampled_from([40_000, 50_000, 100_000, 400_000, 500_000, 1_000_000, 2_000_000, 8_000_000]),
        "pctr": st.sampled_from([0.01, 0.02, 0.05]),
        "cosine": st.sampled_from([0.6, 0.8, 1.0]),  # similarity to the conversation: always above the floors
        "advertiser_id": st.integers(1, 3),
        "pacing": st.sampled_from(["even", "asap"]),
        "daily_budget_micros": st.sampled_from([1_000_000, 10_000_000, 50_000_000]),
        "lifetime_budget_micros": st.sampled_from([5_000_000, 100_000_000]),
        "spent_today_micros": st.integers(0, 12_000_000),
        "spent_micros": st.integers(0, 110_000_000),
        "spend_day": st.sampled_from([None, "yesterday", "today"]),
    }
)


def _vector(cosine: float, i: int) -> np.ndarray:
    """A unit vector at `cosine` to the conversation's vector (each campaign its own direction)."""
    vector = np.zeros(DIM, dtype=np.float32)
    vector[0] = cosine
    vector[1 + i] = np.sqrt(1.0 - cosine**2)
    return vector


def _index(campaigns: list[dict], now: datetime) -> campaign_index.CampaignIndex:
    days = {None: None, "yesterday": now.date() - timedelta(days=1), "today": now.date()}
    entries = [
        campaign_index.Entry(
            campaign_id=i + 1,
            creative_id=i + 1,
            advertiser_id=c["advertiser_id"],
            advertiser_name=f"Advertiser {c['advertiser_id']}",
            paid_by="",
            campaign_name=f"Campaign {i + 1}",
            headline="Headline",
            text="Text",
            question="Question?",
            display_domain="example.com",
            bid_type=c["bid_type"],
            bid_micros=c["bid_micros"],
            language="en",
            starts_at=None,
            ends_at=None,
            pacing=c["pacing"],
            daily_budget_micros=c["daily_budget_micros"],
            lifetime_budget_micros=c["lifetime_budget_micros"],
            frequency_cap_hour=None,
            frequency_cap_day=None,
            pctr=c["pctr"],
            spent_micros=c["spent_micros"],
            spent_today_micros=c["spent_today_micros"],
            spend_day=days[c["spend_day"]],
        )
        for i, c in enumerate(campaigns)
    ]
    vectors = [_vector(c["cosine"], i) for i, c in enumerate(campaigns)]
    return campaign_index.build_index(entries=entries, hints=[None] * len(entries), creatives=vectors, keywords=[])


def _scalar_exclusion(entry: campaign_index.Entry, now: datetime) -> str:
    if not auction.bid_meets_reserve(bid_type=entry.bid_type, bid_micros=entry.bid_micros):
        return "below_reserve"
    spent_today = entry.spent_today_micros if entry.spend_day == now.date() else 0
    allowed = pacing.pacing_allows(
        even=entry.pacing == "even",
        daily_budget_micros=entry.daily_budget_micros,
        lifetime_budget_micros=entry.lifetime_budget_micros,
        spent_micros=entry.spent_micros,
        spent_today_micros=spent_today,
        max_cost_micros=auction.event_cost_max_micros(bid_type=entry.bid_type, bid_micros=entry.bid_micros),
        now=now,
    )
    return "" if allowed else "pacing"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaigns=st.lists(campaign_st, min_size=1, max_size=10), minute=st.integers(0, 24 * 60 - 1))
def test_the_index_excludes_and_ranks_as_the_scalar_rules_do(campaigns, minute):
    now = DAY + timedelta(minutes=minute)
    selection = ad_selection.select(
        _index(campaigns, now), context_text="", vector=QUERY, now=now, explain=len(campaigns)
    )
    assert len(selection.candidates) == len(campaigns)  # every campaign is relevant: all are explained
    by_campaign = {c.entry.campaign_id: c for c in selection.candidates}
    for candidate in selection.candidates:
        assert candidate.excluded == _scalar_exclusion(candidate.entry, now), candidate.entry

    # The scalar auction over every eligible bid, in the index's order (ties: the lower bid, then the first).
    bids = [
        auction.Bid(
            key=c.entry.campaign_id,
            advertiser_id=c.entry.advertiser_id,
            bid_type=c.entry.bid_type,
            bid_micros=c.entry.bid_micros,
            pctr=c.entry.pctr,
            relevance=c.relevance,
        )
        for c in sorted(by_campaign.values(), key=lambda c: c.entry.campaign_id)
        if not c.excluded
    ]
    expected = auction.run_auction(bids)
    if expected is None:
        assert selection.winner is None
        assert selection.reason == "no_eligible_candidates"
        return
    assert selection.winner.entry.campaign_id == expected.winner.key
    assert (selection.runner_up.entry.campaign_id if selection.runner_up else None) == (
        expected.runner_up.key if expected.runner_up else None
    )
    assert selection.result.price_micros == expected.price_micros


def test_the_pacing_rule_gives_the_same_answers_for_arrays_and_numbers():
    states = [
        # (even, daily, lifetime, spent, spent today, max cost)
        (True, 24_000_000, 10**12, 0, 6_480_000, 100_000),  # at the 6:00 allowance: held back
        (True, 24_000_000, 10**12, 0, 6_479_999, 100_000),  # just under it: may spend
        (False, 24_000_000, 10**12, 0, 23_999_999, 100_000),  # ASAP: the whole day's budget
        (False, 24_000_000, 10**12, 0, 24_000_000, 100_000),  # daily budget spent
        (True, 24_000_000, 5_000_000, 5_000_000, 0, 100_000),  # lifetime budget spent
    ]
    now = DAY + timedelta(hours=6)
    one_by_one = [
        bool(
            pacing.pacing_allows(
                even=even,
                daily_budget_micros=daily,
                lifetime_budget_micros=lifetime,
                spent_micros=spent,
                spent_today_micros=today,
                max_cost_micros=cost,
                now=now,
            )
        )
        for even, daily, lifetime, spent, today, cost in states
    ]
    columns = [np.array(column) for column in zip(*states, strict=True)]
    at_once = pacing.pacing_allows(
        even=columns[0],
        daily_budget_micros=columns[1],
        lifetime_budget_micros=columns[2],
        spent_micros=columns[3],
        spent_today_micros=columns[4],
        max_cost_micros=columns[5],
        now=now,
    )
    assert one_by_one == [False, True, True, False, False]
    assert at_once.tolist() == one_by_one


def test_spend_from_another_day_does_not_count_today():
    campaign = {
        "bid_type": "cpc",
        "bid_micros": 1_000_000,
        "pctr": 0.02,
        "cosine": 1.0,
        "advertiser_id": 1,
        "pacing": "asap",
        "daily_budget_micros": 10_000_000,
        "lifetime_budget_micros": 100_000_000,
        "spent_today_micros": 10_000_000,  # the whole daily budget...
        "spent_micros": 10_000_000,
        "spend_day": "yesterday",  # ...but yesterday's
    }
    now = DAY + timedelta(hours=1)
    selection = ad_selection.select(_index([campaign], now), context_text="", vector=QUERY, now=now)
    assert selection.winner is not None
    today = ad_selection.select(
        _index([campaign | {"spend_day": "today"}], now), context_text="", vector=QUERY, now=now
    )
    assert today.winner is None
    assert today.candidates[0].excluded == "pacing"
