"""Reports an advertiser believes: today's figures are live (no roll-up needed), the
spend shown is the ledger's to the micro, and invalid traffic is shown by reason, per
campaign and per day, beside served, viewable and the viewable rate — on the pages and
in the CSV export.

Events go through the real tracking endpoints (today) or the delivery services with an
explicit time (earlier days), so every figure here is one the charging code produced.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ads import tracking
from ads.models import AdvertiserMembership, CampaignStatDaily, Impression
from ads.services import delivery
from ads.services.reporting import stats_rollup_day, stats_rollup_recent
from billing.models import LedgerEntry
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, MembershipFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def url(name: str, *args) -> str:
    return reverse(f"ads:dashboard:{name}", args=args)


@pytest.fixture
def acme():
    advertiser = AdvertiserFactory(name="Acme", balance_usd=50)
    cpm = CreativeFactory(
        campaign=CampaignFactory(advertiser=advertiser, name="Live CPM", bid_type="cpm", max_bid_micros=5_000_000)
    )
    cpc = CreativeFactory(
        campaign=CampaignFactory(
            advertiser=advertiser, name="Live CPC", bid_type="cpc", max_bid_micros=900_000, daily_budget_micros=1_000_000
        )
    )
    return {"advertiser": advertiser, "cpm": cpm, "cpc": cpc}


@pytest.fixture
def dashboard(acme):
    """A viewer-role member of Acme, signed in to the dashboard."""
    client = Client()
    member = UserFactory()
    MembershipFactory(user=member, advertiser=acme["advertiser"], role=AdvertiserMembership.Role.VIEWER)
    client.force_login(member)
    return client


@pytest.fixture
def reader():
    """Someone chatting, signed in: the cards are served to them and they see and click them."""
    user = UserFactory()
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    client.user = user
    return client


def serve(creative, user, *, price: int, at: dt.datetime | None = None) -> Impression:
    """An ad chosen and its frame sent to `user` (what the decision and the socket record)."""
    at = at or timezone.now() - dt.timedelta(seconds=10)
    campaign = creative.campaign
    return Impression.objects.create(
        creative=creative,
        campaign=campaign,
        advertiser=campaign.advertiser,
        user=user,
        viewer_key=f"user:{user.pk}",
        served_at=at,
        sent_at=at,
        bid_type=campaign.bid_type,
        bid_micros=campaign.max_bid_micros,
        price_micros=price,
    )


def ack(client, impression, *, visible_ms: int = 1500, user_agent: str = BROWSER):
    return client.post(f"/ads/i/{impression.pk}/ack", {"visible_ms": str(visible_ms)}, HTTP_USER_AGENT=user_agent)


def click(client, impression, *, user_agent: str = BROWSER):
    link = tracking.ad_urls(impression_id=str(impression.pk), creative_id=impression.creative_id)["click_url"]
    return client.get(link, HTTP_USER_AGENT=user_agent)


def viewer_of(user) -> tracking.Viewer:
    return tracking.Viewer(user_id=user.pk, session_key="", user_agent=BROWSER)


def ledger_spend(advertiser, *, start: dt.date, end: dt.date) -> int:
    total = LedgerEntry.objects.filter(
        account_id=advertiser.balance_account_id,
        kind=LedgerEntry.Kind.DEBIT,
        created_at__date__gte=start,
        created_at__date__lte=end,
    ).aggregate(total=Sum("amount_micros"))["total"]
    return -(total or 0)


def chart(response, script_id: str = "daily-data") -> dict[str, dict]:
    html = response.content.decode()
    found = re.search(rf'<script id="{script_id}" type="application/json">(.*?)</script>', html)
    rows = json.loads(found.group(1))
    return {row["day"]: row for row in rows}


# --- today is live -------------------------------------------------------------------------------------


def test_an_acknowledged_impression_and_a_valid_click_show_at_once_without_a_rollup(acme, dashboard, reader):
    today = timezone.now().date().isoformat()
    shown = serve(acme["cpm"], reader.user, price=2_345_678)
    clicked = serve(acme["cpc"], reader.user, price=300_000)
    assert ack(reader, shown).json() == {"counted": True, "valid": True, "reason": ""}
    assert ack(reader, clicked).json()["counted"] is True
    assert click(reader, clicked).status_code == 302
    assert CampaignStatDaily.objects.count() == 0  # no roll-up has run

    overview = dashboard.get(url("overview"))
    assert (overview.context["today"].impressions, overview.context["today"].clicks) == (2, 1)
    assert overview.context["today"].spend_micros == 2_346 + 300_000
    assert overview.context["week"].impressions == 2
    assert re.search(r'data-today="spend">\$0\.30<', overview.content.decode())

    performance = dashboard.get(url("performance"))
    assert chart(performance)[today] == {"day": today, "impressions": 2, "clicks": 1, "spend_micros": 302_346}
    by_campaign = {c.name: m for c, m in performance.context["by_campaign"]}
    assert (by_campaign["Live CPM"].impressions, by_campaign["Live CPM"].spend_micros) == (1, 2_346)
    assert (by_campaign["Live CPC"].impressions, by_campaign["Live CPC"].clicks) == (1, 1)
    assert by_campaign["Live CPC"].spend_micros == 300_000

    listing = {c.name: m for c, m in dashboard.get(url("campaigns")).context["rows"]}
    assert (listing["Live CPC"].impressions, listing["Live CPC"].clicks) == (1, 1)
    detail = dashboard.get(url("campaign_detail", acme["cpc"].campaign_id))
    assert chart(detail, "campaign-daily")[today]["clicks"] == 1


def test_a_rollup_of_the_live_days_changes_nothing_they_show(acme, dashboard, reader):
    impression = serve(acme["cpm"], reader.user, price=2_000_000)
    ack(reader, impression)
    before = dashboard.get(url("performance")).context["totals"]
    stats_rollup_recent()
    stats_rollup_recent()
    after = dashboard.get(url("performance")).context["totals"]
    assert after == before
    assert (after.impressions, after.spend_micros) == (1, 2_000)


def test_days_before_the_live_ones_come_from_the_rollup(acme, dashboard, reader):
    past = timezone.now() - dt.timedelta(days=3)
    impression = serve(acme["cpm"], reader.user, price=2_000_000, at=past - dt.timedelta(seconds=10))
    delivery.impression_acknowledge(impression_id=str(impression.pk), viewer=viewer_of(reader.user), visible_ms=1500,
                                    now=past)
    day = past.date()
    params = {"start": day.isoformat(), "end": day.isoformat()}
    assert dashboard.get(url("performance"), params).context["totals"].impressions == 0  # not rolled up yet
    call_command("ads_rollup", days=4, stdout=io.StringIO())
    assert dashboard.get(url("performance"), params).context["totals"].impressions == 1


def test_the_spend_shown_matches_the_ledger_to_the_micro_today_and_for_the_range(acme, dashboard, reader):
    advertiser = acme["advertiser"]
    # Earlier days, through the delivery services at their time; the ledger's clock said the same.
    for days_ago, price in ((5, 3_141_593), (2, 2_718_282), (1, 1_414_214)):
        when = timezone.now() - dt.timedelta(days=days_ago)
        impression = serve(acme["cpm"], reader.user, price=price, at=when - dt.timedelta(seconds=10))
        delivery.impression_acknowledge(impression_id=str(impression.pk), viewer=viewer_of(reader.user),
                                        visible_ms=1500, now=when)
        clicked = serve(acme["cpc"], reader.user, price=777_777, at=when - dt.timedelta(seconds=10))
        delivery.impression_acknowledge(impression_id=str(clicked.pk), viewer=viewer_of(reader.user),
                                        visible_ms=1500, now=when)
        link = tracking.click_token(impression_id=str(clicked.pk), creative_id=clicked.creative_id)
        delivery.click_record(token=link, viewer=viewer_of(reader.user), now=when + dt.timedelta(seconds=5))
        LedgerEntry.objects.filter(
            reference__in=[f"ads:imp:{impression.pk}", *(f"ads:click:{c.pk}" for c in clicked.clicks.all())]
        ).update(created_at=when)
    for days_ago in (5, 2):  # the beat rolled those days up; yesterday is live and needs none
        stats_rollup_day(day=(timezone.now() - dt.timedelta(days=days_ago)).date())
    # Today, through the endpoints: two CPM impressions, and clicks on two ads of a CPC
    # campaign whose daily budget ($1.00) cuts the second charge to what is left ($0.10 of $0.90).
    for price in (1_234_567, 7_654_321):
        ack(reader, serve(acme["cpm"], reader.user, price=price))
    for creative in (acme["cpc"], CreativeFactory(campaign=acme["cpc"].campaign)):
        impression = serve(creative, reader.user, price=900_000)
        ack(reader, impression)
        click(reader, impression)

    today = timezone.now().date()
    week_start = today - dt.timedelta(days=6)
    assert ledger_spend(advertiser, start=today, end=today) == 1_235 + 7_655 + 900_000 + 100_000
    overview = dashboard.get(url("overview")).context
    assert overview["today"].spend_micros == ledger_spend(advertiser, start=today, end=today)
    assert overview["week"].spend_micros == ledger_spend(advertiser, start=week_start, end=today)
    performance = dashboard.get(url("performance"), {"start": week_start.isoformat(), "end": today.isoformat()})
    assert performance.context["totals"].spend_micros == ledger_spend(advertiser, start=week_start, end=today)
    for day, metrics in performance.context["daily"]:
        assert metrics.spend_micros == ledger_spend(advertiser, start=day, end=day), day
    balance_page = dict(dashboard.get(url("balance")).context["spend_by_day"])
    assert balance_page[today] == performance.context["daily"][-1][1].spend_micros


# --- invalid traffic by reason, viewability ---------------------------------------------------------------


@pytest.fixture
def traffic(acme, reader):
    """Today: valid and refused events of every common kind, through the endpoints."""
    other = Client(HTTP_USER_AGENT=BROWSER)
    other.force_login(UserFactory())
    cpm, cpc = acme["cpm"], acme["cpc"]
    shown = serve(cpm, reader.user, price=2_000_000)
    ack(reader, shown)
    ack(reader, shown)  # a replayed acknowledgement: duplicate
    ack(reader, serve(cpm, reader.user, price=2_000_000), visible_ms=300)  # not viewable
    serve(cpm, reader.user, price=2_000_000)  # served, never acknowledged
    late = serve(cpm, reader.user, price=2_000_000, at=timezone.now() - dt.timedelta(hours=2))
    ack(reader, late)  # expired
    clicked = serve(cpc, reader.user, price=300_000)
    ack(reader, clicked)
    click(reader, clicked)
    click(reader, clicked)  # duplicate
    click(reader, clicked, user_agent=BOT)  # bot
    click(other, clicked)  # foreign viewer
    click(reader, serve(cpc, reader.user, price=300_000))  # never shown
    # Two days ago, rolled up: a rate-limited click on the CPC campaign.
    when = timezone.now() - dt.timedelta(days=2)
    old = serve(cpc, reader.user, price=300_000, at=when - dt.timedelta(seconds=10))
    delivery.click_record(token=tracking.click_token(impression_id=str(old.pk), creative_id=old.creative_id),
                          viewer=viewer_of(reader.user), rate_limited=True, now=when)
    stats_rollup_day(day=when.date())
    return {"cpm": cpm.campaign, "cpc": cpc.campaign, "old_day": when.date()}


def test_the_performance_page_shows_invalid_traffic_by_reason_per_campaign_and_per_day(dashboard, traffic):
    response = dashboard.get(url("performance"))
    totals = response.context["totals"]
    assert totals.invalid_by_reason == {
        "duplicate": 2, "not_viewable": 1, "expired": 1, "bot": 1, "foreign_viewer": 1, "never_shown": 1,
        "rate_limited": 1,
    }
    assert (totals.invalid_impressions, totals.invalid_clicks) == (3, 5)
    html = response.content.decode()
    table = html[html.index('id="invalid-by-campaign"'):html.index('id="invalid-by-day"')]
    cpm_row = re.search(rf'<tr data-campaign="{traffic["cpm"].pk}">(.*?)</tr>', table, re.S).group(1)
    cpc_row = re.search(rf'<tr data-campaign="{traffic["cpc"].pk}">(.*?)</tr>', table, re.S).group(1)
    cells = lambda row: dict(re.findall(r'data-reason="(\w+)">(\d+)<', row))  # noqa: E731
    assert cells(cpm_row) == {"duplicate": "1", "bot": "0", "not_viewable": "1", "foreign_viewer": "0",
                              "expired": "1", "rate_limited": "0", "never_shown": "0"}
    assert cells(cpc_row) == {"duplicate": "1", "bot": "1", "not_viewable": "0", "foreign_viewer": "1",
                              "expired": "0", "rate_limited": "1", "never_shown": "1"}
    by_day = html[html.index('id="invalid-by-day"'):]
    today_row = re.search(rf'<tr data-day="{timezone.now().date():%Y-%m-%d}">(.*?)</tr>', by_day, re.S).group(1)
    old_row = re.search(rf'<tr data-day="{traffic["old_day"]:%Y-%m-%d}">(.*?)</tr>', by_day, re.S).group(1)
    assert cells(today_row)["duplicate"] == "2" and cells(today_row)["rate_limited"] == "0"
    assert cells(old_row) == {"duplicate": "0", "bot": "0", "not_viewable": "0", "foreign_viewer": "0",
                              "expired": "0", "rate_limited": "1", "never_shown": "0"}


def test_served_viewable_and_the_viewable_rate_stand_beside_each_other(dashboard, traffic):
    response = dashboard.get(url("performance"))  # the last 30 days
    by_campaign = {c.name: m for c, m in response.context["by_campaign"]}
    cpm, cpc = by_campaign["Live CPM"], by_campaign["Live CPC"]
    # CPM: shown, not viewable, never acknowledged, acknowledged too late; only the first is viewable.
    assert (cpm.served, cpm.viewable, cpm.viewable_rate, cpm.impressions) == (4, 1, 0.25, 1)
    # CPC: clicked, clicked but never shown, and the one two days ago.
    assert (cpc.served, cpc.viewable, cpc.impressions, cpc.clicks) == (3, 1, 1, 1)
    html = response.content.decode()
    kpis = dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', html))
    assert (kpis["served"], kpis["viewable"], kpis["impressions"]) == ("7", "2", "2")
    assert "28.57% of served" in html
    row = re.search(rf'<a href="{url("campaign_detail", traffic["cpm"].pk)}">Live CPM</a>(.*?)</tr>', html, re.S)
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(1))[:4] == ["4", "1", "25.00%", "1"]


def test_the_csv_has_served_viewable_and_a_column_per_reason(dashboard, traffic):
    today = timezone.now().date()
    start = traffic["old_day"]
    body = dashboard.get(url("performance_csv"), {"start": start.isoformat(), "end": today.isoformat()})
    rows = list(csv.DictReader(io.StringIO(body.content.decode())))
    by_key = {(row["date"], row["campaign"]): row for row in rows}
    old = by_key[(start.isoformat(), "Live CPC")]
    assert (old["invalid_clicks"], old["invalid_rate_limited"], old["invalid_duplicate"]) == ("1", "1", "0")
    cpc = by_key[(today.isoformat(), "Live CPC")]
    assert {k: cpc[k] for k in ("invalid_duplicate", "invalid_bot", "invalid_foreign_viewer", "invalid_never_shown")} == {
        "invalid_duplicate": "1", "invalid_bot": "1", "invalid_foreign_viewer": "1", "invalid_never_shown": "1"}
    assert (cpc["served"], cpc["viewable"], cpc["viewable_rate_percent"]) == ("2", "1", "50.00")
    cpm = by_key[(today.isoformat(), "Live CPM")]
    assert (cpm["invalid_duplicate"], cpm["invalid_not_viewable"], cpm["invalid_expired"]) == ("1", "1", "1")
    reasons = [name for name in rows[0] if name.startswith("invalid_") and name not in ("invalid_impressions",
                                                                                         "invalid_clicks")]
    assert reasons[:6] == ["invalid_duplicate", "invalid_bot", "invalid_not_viewable", "invalid_foreign_viewer",
                           "invalid_expired", "invalid_rate_limited"]
