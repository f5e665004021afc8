"""200 concurrent impressions and clicks against one campaign and one balance, on
PostgreSQL (SQLite serialises every writer, so the race only exists there)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from ads import tracking
from ads.models import Click, Impression
from billing.ledger import balance_micros
from billing.models import LedgerEntry
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the budget race needs PostgreSQL (set DATABASE_URL=postgres://...)",
    ),
]
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


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_and_impressions_never_overspend(user, settings):
    settings.RATELIMIT_ENABLE = False  # one viewer sends 400 requests at once here: budgets, not rate limits
    # The budget ($5) is far below what 200 clicks at $0.40 would cost ($80); the
    # balance ($6) covers the budget but not the demand.
    advertiser = AdvertiserFactory(balance_usd=6)
    cpc = CampaignFactory(
        advertiser=advertiser,
        bid_type="cpc",
        max_bid_micros=500_000,
        daily_budget_micros=5_000_000,
        lifetime_budget_micros=5_000_000,
    )
    cpm = CampaignFactory(
        advertiser=advertiser,
        bid_type="cpm",
        max_bid_micros=9_000_000,
        daily_budget_micros=5_000_000,
        lifetime_budget_micros=5_000_000,
    )
    cpc_creative = CreativeFactory(campaign=cpc)
    cpm_creative = CreativeFactory(campaign=cpm)
    cpc_price, cpm_price = 400_000, 8_000_000  # CPM: 8_000 micros per impression
    # One viewer: each click on its own creative (a second billable click by one viewer
    # on one creative within ADS_DUPLICATE_CLICK_WINDOW_S is a duplicate).
    clicks = [_serve(cpc_creative if n == 0 else CreativeFactory(campaign=cpc), user, 1, cpc_price, viewed=True)[0] for n in range(EVENTS)]
    views = _serve(cpm_creative, user, EVENTS, cpm_price)

    def click_job(impression):
        def job():
            path = "/ads/c/" + tracking.click_token(
                impression_id=str(impression.pk), creative_id=impression.creative_id
            )
            client = Client(HTTP_USER_AGENT=BROWSER)
            client.force_login(user)
            return client.get(path).status_code

        return job

    def ack_job(impression):
        def job():
            client = Client(HTTP_USER_AGENT=BROWSER)
            client.force_login(user)
            return client.post(f"/ads/i/{impression.pk}/ack").status_code

        return job

    jobs = [click_job(i) for i in clicks] + [ack_job(i) for i in views]
    jobs = [job for pair in zip(jobs[:EVENTS], jobs[EVENTS:], strict=True) for job in pair]  # interleave
    statuses = _run_concurrently(jobs)
    assert sorted(set(statuses)) == [200, 302]

    cpc.refresh_from_db()
    cpm.refresh_from_db()
    account = advertiser.balance_account_id
    debits = -sum(LedgerEntry.objects.filter(account_id=account, kind="debit").values_list("amount_micros", flat=True))
    charged = sum(Click.objects.filter(campaign=cpc).values_list("cost_micros", flat=True)) + sum(
        Impression.objects.filter(campaign=cpm).values_list("cost_micros", flat=True)
    )
    # Every micro debited is a micro some event was charged, and a campaign's counter.
    assert debits == charged == cpc.spent_micros + cpm.spent_micros
    # Budgets: never overspent by more than one bid (the charge is capped, so not at all).
    assert cpc.spent_micros <= cpc.lifetime_budget_micros + cpc.max_bid_micros
    assert cpm.spent_micros <= cpm.lifetime_budget_micros + cpm.max_bid_micros // 1000
    assert cpc.spent_micros == 5_000_000  # demand exceeded the budget: all of it, exactly
    # The balance never goes below zero and pays exactly what was charged.
    assert balance_micros(account_id=account) == 6_000_000 - debits >= 0
    # Each CPC charge is the second price (or the last of a budget); duplicates are free.
    assert Click.objects.filter(campaign=cpc, is_valid=True, cost_micros__gt=cpc_price).count() == 0
    # The spent campaign paused itself; the advertiser got the low-balance flag.
    assert (cpc.status, cpc.pause_reason) == ("paused", "budget")
    advertiser.refresh_from_db()
    assert advertiser.low_balance_notified_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_acks_of_one_impression_count_once(user, settings):
    settings.RATELIMIT_ENABLE = False
    campaign = CampaignFactory(bid_type="cpm", max_bid_micros=9_000_000, advertiser=AdvertiserFactory(balance_usd=5))
    impression = _serve(CreativeFactory(campaign=campaign), user, 1, 6_000_000)[0]

    def job():
        client = Client(HTTP_USER_AGENT=BROWSER)
        client.force_login(user)
        return client.post(f"/ads/i/{impression.pk}/ack").json()["counted"]

    counted = _run_concurrently([job] * 40)
    assert counted.count(True) == 1
    campaign.refresh_from_db()
    assert campaign.spent_micros == 6_000
    assert connection.vendor == "postgresql"
