"""Pacing and frequency caps over simulated days (the clock is injected)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ads import index as ad_index
from ads import pacing
from ads.models import Campaign, Impression
from ads.services.campaigns import campaign_create
from ads.services.decision import AdRequest, ad_decide
from ads.services.delivery import campaign_charge
from tests.ads.factories import AdvertiserFactory, CreativeFactory

DAY = datetime(2026, 3, 2, tzinfo=UTC)
TEXT = "Where can I rent an H100 GPU to fine-tune a model?"


def gpu_campaign(**overrides) -> Campaign:
    values = {
        "name": "GPUs",
        "status": "active",
        "bid_type": "cpc",
        "max_bid_micros": 1_000_000,
        "daily_budget_micros": 10_000_000,
        "lifetime_budget_micros": 1_000_000_000,
        "pacing": "even",
        "keywords": "h100\nrent gpu",
        "context_hints": "Renting cloud GPUs.",
    }
    campaign = campaign_create(advertiser=AdvertiserFactory(balance_usd=1000), **(values | overrides))
    CreativeFactory(campaign=campaign, landing_url="https://gpu.example/", display_domain="gpu.example")
    return campaign


def request(viewer: str) -> AdRequest:
    return AdRequest(
        conversation_id=str(uuid.uuid4()),
        user_id=None,
        session_key=viewer,
        context_text=TEXT,
        is_adult=True,
        ads_enabled=True,
        ads_dismissed=False,
    )


def simulate(campaign: Campaign, *, start: datetime, minutes: int, step: int = 5) -> list[tuple[datetime, int]]:
    """A viewer every `step` minutes; each ad shown is clicked and costs the campaign
    its full bid (as in a crowded auction), so demand far exceeds the budget and
    pacing alone decides the spend. Returns (time, spent today)."""
    trace = []
    for m in range(0, minutes, step):
        now = start + timedelta(minutes=m)
        ad_index.invalidate()  # spend counters as the index would see them after a refresh
        ad = ad_decide(request=request(f"viewer-{m}"), now=now)
        if ad is not None:
            impression = Impression.objects.get(pk=ad["impression_id"])
            campaign_charge(
                campaign_id=campaign.pk, amount_micros=impression.bid_micros, reference=f"sim:{impression.pk}", now=now
            )
        campaign.refresh_from_db()
        spent_today = campaign.spent_today_micros if campaign.spend_day == now.date() else 0
        trace.append((now, spent_today))
    return trace


def test_even_allowance_follows_the_clock():
    budget = {"daily_budget_micros": 24_000_000, "max_cost_micros": 100_000}
    # 6:00 -> a quarter of the budget, plus the slack (2% of the daily budget = 480_000)
    assert pacing.spend_allowance_micros(even=True, now=DAY + timedelta(hours=6), **budget) == 6_000_000 + 480_000
    assert pacing.spend_allowance_micros(even=True, now=DAY + timedelta(hours=23, minutes=59), **budget) == 24_000_000
    assert pacing.spend_allowance_micros(even=False, now=DAY, **budget) == 24_000_000  # ASAP: all of it at once
    # a bid bigger than 2% of the budget is the slack instead: one event in flight never freezes the campaign
    big_bid = {"daily_budget_micros": 24_000_000, "max_cost_micros": 1_000_000}
    assert pacing.spend_allowance_micros(even=True, now=DAY, **big_bid) == 1_000_000


@pytest.mark.django_db
def test_even_pacing_spreads_the_daily_budget_across_the_day():
    campaign = gpu_campaign(pacing="even")
    trace = simulate(campaign, start=DAY, minutes=24 * 60, step=10)
    budget = campaign.daily_budget_micros
    slack = max(1_000_000, int(budget * pacing.EVEN_SLACK_FRACTION))
    for now, spent in trace:
        # never ahead of the schedule by more than the slack plus the event in flight
        assert spent <= budget * pacing.day_fraction(now) + slack + 1_000_000
    at = dict(trace)
    assert at[DAY + timedelta(hours=6)] <= budget * 0.25 + 2 * slack
    assert at[DAY + timedelta(hours=12)] >= budget * 0.40  # still spending through the day
    assert trace[-1][1] >= budget * 0.9  # and most of the budget by midnight
    assert trace[-1][1] <= budget  # never over


@pytest.mark.django_db
def test_asap_pacing_spends_the_daily_budget_early_then_stops_until_tomorrow():
    campaign = gpu_campaign(pacing="asap", daily_budget_micros=3_000_000)
    trace = simulate(campaign, start=DAY, minutes=2 * 24 * 60, step=30)
    at = dict(trace)
    assert at[DAY + timedelta(hours=3)] == 3_000_000  # all of it within the first hours
    assert at[DAY + timedelta(hours=23, minutes=30)] == 3_000_000  # never more that day
    assert at[DAY + timedelta(days=1, hours=3)] == 3_000_000  # a new day, a new daily budget
    campaign.refresh_from_db()
    assert campaign.spent_micros == 6_000_000
    assert campaign.status == "active"  # a spent daily budget only stops serving for the day


@pytest.mark.django_db
def test_lifetime_budget_pauses_the_campaign():
    campaign = gpu_campaign(pacing="asap", daily_budget_micros=5_000_000, lifetime_budget_micros=5_000_000)
    simulate(campaign, start=DAY, minutes=12 * 60, step=30)
    campaign.refresh_from_db()
    assert campaign.spent_micros == 5_000_000
    assert (campaign.status, campaign.pause_reason) == ("paused", "budget")


@pytest.mark.django_db
def test_frequency_caps_per_viewer_per_hour_and_day():
    gpu_campaign(pacing="asap", frequency_cap_hour=2, frequency_cap_day=3)
    shown = []
    for minutes in range(0, 24 * 60, 20):  # the same viewer every 20 minutes for a day
        now = DAY + timedelta(minutes=minutes)
        ad = ad_decide(request=request("same-viewer"), now=now)
        if ad is not None:  # the browser shows the card
            Impression.objects.filter(pk=ad["impression_id"]).update(acknowledged_at=now + timedelta(seconds=2))
        shown.append(ad is not None)
    # 0:00 and 0:20 shown; 0:40 and 1:00 blocked (two within the last 60 minutes, the
    # window includes its start); 1:20 shown (only 0:20 is within the hour); then the daily cap holds
    assert shown[:6] == [True, True, False, False, True, False]
    assert sum(shown) == 3
    # another viewer is not affected
    assert ad_decide(request=request("someone-else"), now=DAY + timedelta(minutes=30)) is not None
    # the next day the same viewer may see it again (24 hours after the first)
    assert ad_decide(request=request("same-viewer"), now=DAY + timedelta(days=1, minutes=1)) is not None


@pytest.mark.django_db
def test_cards_never_shown_do_not_use_up_the_frequency_cap():
    gpu_campaign(pacing="asap", frequency_cap_hour=1, frequency_cap_day=2)
    first = ad_decide(request=request("reader"), now=DAY)
    assert first is not None
    # Served a moment ago and not acknowledged yet: it may be on its way to the screen.
    assert ad_decide(request=request("reader"), now=DAY + timedelta(seconds=30)) is None
    # Never acknowledged: after the pending window it no longer counts.
    again = ad_decide(request=request("reader"), now=DAY + timedelta(minutes=5))
    assert again is not None
    Impression.objects.filter(pk=again["impression_id"]).update(acknowledged_at=DAY + timedelta(minutes=5, seconds=1))
    # Shown: the hourly cap of one holds for the hour.
    assert ad_decide(request=request("reader"), now=DAY + timedelta(minutes=30)) is None
    assert ad_decide(request=request("reader"), now=DAY + timedelta(minutes=66)) is not None
