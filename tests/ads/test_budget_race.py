"""Concurrent clicks and impression acknowledgements (50 at a time, through the real
views) against two campaigns and one balance, with demand above every limit: each
campaign's budget and the balance end exactly at their limits, never past them. On
PostgreSQL the writers really race (row locks decide); on SQLite the IMMEDIATE
transactions serialise them: the same requests, the same invariants, on both."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from ads import tracking
from ads.models import Click, Impression
from billing.ledger import balance_micros
from billing.models import LedgerEntry
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
EVENTS = 200


def _serve(creative, user, n: int, price: int, *, viewed: bool = False) -> list[Impression]:
    """Served a few seconds ago; `viewed`: acknowledged viewable too (its link may be billed)."""
    campaign = creative.campaign
    now = timezone.now()
    return Impression.objects.bulk_create(
        Impression(
            creative=creative,
            campaign=campaign,
            advertiser=campaign.advertiser,
            user=user,
            viewer_key=f"user:{user.pk}",
            served_at=now - timedelta(seconds=5),
            acknowledged_at=now if viewed else None,
            is_valid=True if viewed else None,
            bid_type=campaign.bid_type,
            bid_micros=campaign.max_bid_micros,
            price_micros=price,
        )
        for _ in range(n)
    )


def _run_concurrently(jobs) -> list:
    barrier = threading.Barrier(min(len(jobs), 50))

    def run(job):
        try:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
            return job()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=50) as pool:
        return list(pool.map(run, jobs))


def _viewer_client(user):
    """A client signed in as `user` (one session for every request: a login per request
    would be one more database write each)."""
    login = Client()
    login.force_login(user)
    cookie = login.cookies[django_settings.SESSION_COOKIE_NAME].value

    def make() -> Client:
        client = Client(HTTP_USER_AGENT=BROWSER)
        client.cookies[django_settings.SESSION_COOKIE_NAME] = cookie
        return client

    return make


def _race(user, *, balance_usd: float, cpc_budget: int, cpm_budget: int, events: int):
    """`events` clicks on a CPC campaign at $0.40 each and as many acknowledgements of a
    CPM campaign's impressions at $0.008 each, interleaved and concurrent."""
    advertiser = AdvertiserFactory(balance_usd=balance_usd)
    cpc = CampaignFactory(advertiser=advertiser, bid_type="cpc", max_bid_micros=500_000,
                          daily_budget_micros=cpc_budget, lifetime_budget_micros=cpc_budget)
    cpm = CampaignFactory(advertiser=advertiser, bid_type="cpm", max_bid_micros=9_000_000,
                          daily_budget_micros=cpm_budget, lifetime_budget_micros=cpm_budget)
    cpc_price, cpm_price = 400_000, 8_000_000  # CPM: 8_000 micros per impression
    # One viewer: each click on its own creative (a second billable click by one viewer
    # on one creative within ADS_DUPLICATE_CLICK_WINDOW_S is a duplicate).
    cpc_creative = CreativeFactory(campaign=cpc)
    clicks = [
        _serve(cpc_creative if n == 0 else CreativeFactory(campaign=cpc), user, 1, cpc_price, viewed=True)[0]
        for n in range(events)
    ]
    views = _serve(CreativeFactory(campaign=cpm), user, events, cpm_price)
    # Demand is above each budget, and above the balance.
    assert events * cpc_price > cpc_budget and events * 8_000 > cpm_budget
    assert events * (cpc_price + 8_000) > balance_usd * 1_000_000
    client = _viewer_client(user)

    def click_job(impression):
        def job():
            path = "/ads/c/" + tracking.click_token(impression_id=str(impression.pk), creative_id=impression.creative_id)
            return client().get(path).status_code

        return job

    def ack_job(impression):
        def job():
            return client().post(f"/ads/i/{impression.pk}/ack", {"visible_ms": "1500"}).status_code

        return job

    jobs = [job for pair in zip(map(click_job, clicks), map(ack_job, views), strict=True) for job in pair]
    statuses = _run_concurrently(jobs)
    assert sorted(set(statuses)) == [200, 302]
    cpc.refresh_from_db()
    cpm.refresh_from_db()
    advertiser.refresh_from_db()
    account = advertiser.balance_account_id
    debits = -sum(LedgerEntry.objects.filter(account_id=account, kind="debit").values_list("amount_micros", flat=True))
    charged = sum(Click.objects.filter(campaign=cpc).values_list("cost_micros", flat=True)) + sum(
        Impression.objects.filter(campaign=cpm).values_list("cost_micros", flat=True)
    )
    # Every micro debited is a micro some event was charged, and a campaign's counter.
    assert debits == charged == cpc.spent_micros + cpm.spent_micros
    # Each CPC charge is the second price (or the last of a budget or balance).
    assert Click.objects.filter(campaign=cpc, is_valid=True, cost_micros__gt=cpc_price).count() == 0
    return advertiser, cpc, cpm, debits


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_and_impressions_spend_each_budget_exactly(user, settings):
    """The budgets ($5 CPC, $1 CPM) bind: 200 clicks would cost $80 and 200 impressions
    $1.60. The balance ($6) is exactly both budgets: it ends at zero."""
    settings.RATELIMIT_ENABLE = False  # one viewer sends 400 requests at once here: budgets, not rate limits
    advertiser, cpc, cpm, debits = _race(user, balance_usd=6, cpc_budget=5_000_000, cpm_budget=1_000_000, events=200)
    assert (cpc.spent_micros, cpm.spent_micros) == (5_000_000, 1_000_000)
    assert debits == 6_000_000
    assert balance_micros(account_id=advertiser.balance_account_id) == 0
    # Both campaigns paused themselves for their budget; the advertiser got the low-balance flag.
    assert (cpc.status, cpc.pause_reason) == ("paused", "budget")
    assert (cpm.status, cpm.pause_reason) == ("paused", "budget")
    assert advertiser.low_balance_notified_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_and_impressions_spend_the_balance_exactly(user, settings):
    """The balance ($3) binds before the CPC budget ($5): it ends at exactly zero, every
    campaign within its budget, and the campaign still running paused for the balance."""
    settings.RATELIMIT_ENABLE = False
    advertiser, cpc, cpm, debits = _race(user, balance_usd=3, cpc_budget=5_000_000, cpm_budget=1_000_000, events=150)
    assert debits == 3_000_000
    assert balance_micros(account_id=advertiser.balance_account_id) == 0
    assert cpc.spent_micros < 5_000_000 and cpm.spent_micros <= 1_000_000
    assert (cpc.status, cpc.pause_reason) == ("paused", "balance")
    expected_cpm = ("paused", "budget") if cpm.spent_micros == 1_000_000 else ("paused", "balance")
    assert (cpm.status, cpm.pause_reason) == expected_cpm
    assert advertiser.low_balance_notified_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_acks_of_one_impression_count_once(user, settings):
    settings.RATELIMIT_ENABLE = False
    campaign = CampaignFactory(bid_type="cpm", max_bid_micros=9_000_000, advertiser=AdvertiserFactory(balance_usd=5))
    impression = _serve(CreativeFactory(campaign=campaign), user, 1, 6_000_000)[0]

    client = _viewer_client(user)

    def job():
        return client().post(f"/ads/i/{impression.pk}/ack", {"visible_ms": "1500"}).json()["counted"]

    counted = _run_concurrently([job] * 40)
    assert counted.count(True) == 1
    campaign.refresh_from_db()
    assert campaign.spent_micros == 6_000
