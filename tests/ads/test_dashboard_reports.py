"""The dashboard's numbers: performance from known raw events through the roll-ups,
the CSV export, and the conversation preview restricted to the advertiser's own ads."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.urls import reverse

from ads.models import AdvertiserMembership, Campaign, CampaignKeyword, Click, Impression, InvalidEvent
from ads.services.reporting import stats_rollup_day
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, MembershipFactory

pytestmark = pytest.mark.django_db
DAY1 = dt.date(2026, 11, 20)
DAY2 = dt.date(2026, 11, 21)


def url(name: str, *args) -> str:
    return reverse(f"ads:dashboard:{name}", args=args)


def at(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def impression(creative, when, *, valid: bool = True, cost: int = 0, reason: str = "") -> Impression:
    campaign = creative.campaign
    if not valid:  # delivery records each refused acknowledgement as an InvalidEvent; reports count those
        InvalidEvent.objects.create(
            kind="impression", reason=reason, campaign=campaign, advertiser=campaign.advertiser, created_at=when
        )
    return Impression.objects.create(
        creative=creative,
        campaign=campaign,
        advertiser=campaign.advertiser,
        viewer_key="session:abc",
        served_at=when - dt.timedelta(seconds=2),
        acknowledged_at=when,
        is_valid=valid,
        invalid_reason=reason,
        bid_type=campaign.bid_type,
        bid_micros=campaign.max_bid_micros,
        price_micros=campaign.max_bid_micros,
        cost_micros=cost,
    )


def click(imp: Impression, when, *, valid: bool = True, cost: int = 0, reason: str = "") -> Click:
    if not valid:
        InvalidEvent.objects.create(
            kind="click", reason=reason, campaign=imp.campaign, advertiser=imp.advertiser, created_at=when
        )
    return Click.objects.create(
        impression=imp,
        creative=imp.creative,
        campaign=imp.campaign,
        clicked_at=when,
        is_valid=valid,
        invalid_reason=reason,
        cost_micros=cost,
    )


@pytest.fixture
def member_client(client, user):
    advertiser = AdvertiserFactory(name="Acme", balance_usd=50)
    MembershipFactory(user=user, advertiser=advertiser, role=AdvertiserMembership.Role.VIEWER)
    client.force_login(user)
    client.advertiser = advertiser
    return client


@pytest.fixture
def known_events(member_client):
    """Alpha (CPC) and Beta (CPM) with events on two days, plus another advertiser's."""
    advertiser = member_client.advertiser
    alpha = CreativeFactory(campaign=CampaignFactory(advertiser=advertiser, name="Alpha", bid_type="cpc"))
    beta = CreativeFactory(
        campaign=CampaignFactory(advertiser=advertiser, name="Beta", bid_type="cpm", max_bid_micros=2_000_000)
    )
    CampaignFactory(advertiser=advertiser, name="Gamma (no events)")
    # Day 1, Alpha: 4 valid impressions, 1 bot; 2 valid clicks, 1 duplicate.
    alpha_imps = [impression(alpha, at(DAY1, 9, i)) for i in range(4)]
    impression(alpha, at(DAY1, 10), valid=False, reason="bot")
    click(alpha_imps[0], at(DAY1, 9, 30), cost=300_000)
    click(alpha_imps[1], at(DAY1, 9, 31), cost=250_000)
    click(alpha_imps[1], at(DAY1, 9, 32), valid=False, reason="duplicate")
    # Day 1, Beta (CPM at a $2.00 second price): 3 valid impressions of $0.002 each.
    for i in range(3):
        impression(beta, at(DAY1, 15, i), cost=2_000)
    # Day 2, Alpha: 2 valid impressions, 1 valid click.
    day2 = [impression(alpha, at(DAY2, 8, i)) for i in range(2)]
    click(day2[0], at(DAY2, 8, 5), cost=400_000)
    # Another advertiser's events the same days: never in Acme's numbers.
    theirs = CreativeFactory(campaign=CampaignFactory(name="Theirs"))
    click(impression(theirs, at(DAY1)), at(DAY1, 12, 1), cost=9_000_000)
    stats_rollup_day(day=DAY1)
    stats_rollup_day(day=DAY2)
    return {"alpha": alpha.campaign, "beta": beta.campaign}


def expected_ratios(advertiser, *, campaign=None) -> tuple[int | None, int | None]:
    """(Avg. CPC, eCPM) from the raw events, as docs/ads.md "Reports" defines them: CPC
    spend ÷ CPC clicks (valid clicks of CPC campaigns), and all spend × 1000 ÷ impressions."""
    scope = {"campaign": campaign} if campaign else {"campaign__advertiser": advertiser}
    cpc_clicks = Click.objects.filter(**scope, campaign__bid_type="cpc", is_valid=True)
    cpc_spend = sum(c.cost_micros for c in cpc_clicks)
    impressions = Impression.objects.filter(**scope, is_valid=True)
    spend = sum(i.cost_micros for i in impressions) + sum(
        c.cost_micros for c in Click.objects.filter(**scope, is_valid=True)
    )
    return (
        round(cpc_spend / cpc_clicks.count()) if cpc_clicks.count() else None,
        round(spend * 1000 / impressions.count()) if impressions.count() else None,
    )


def test_performance_numbers_come_from_the_events(member_client, known_events):
    response = member_client.get(url("performance"), {"start": "2026-11-20", "end": "2026-11-21"})
    assert response.status_code == 200
    totals = response.context["totals"]
    assert (totals.impressions, totals.clicks, totals.spend_micros, totals.invalid_events) == (9, 3, 956_000, 2)
    avg_cpc, ecpm = expected_ratios(member_client.advertiser)
    assert (avg_cpc, ecpm) == (316_667, 106_222_222)  # (300,000 + 250,000 + 400,000) / 3; 956,000 × 1000 / 9
    assert (totals.avg_cpc_micros, totals.ecpm_micros) == (avg_cpc, ecpm)
    html = response.content.decode()
    kpis = dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', html))
    assert kpis == {
        "served": "10",
        "viewable": "9",
        "impressions": "9",
        "clicks": "3",
        "ctr": "33.33%",
        "spend": "$0.96",
        "cpc": f"${avg_cpc / 1_000_000:.4f}",
        "ecpm": "$106.22",
        "invalid": "2",
    }
    by_campaign = {c.name: m for c, m in response.context["by_campaign"]}
    assert set(by_campaign) == {"Alpha", "Beta", "Gamma (no events)"}
    alpha = by_campaign["Alpha"]
    assert (alpha.impressions, alpha.clicks, alpha.spend_micros, alpha.invalid_impressions, alpha.invalid_clicks) == (
        6,
        3,
        950_000,
        1,
        1,
    )
    assert (alpha.ctr, alpha.avg_cpc_micros, alpha.ecpm_micros) == (
        0.5, *expected_ratios(member_client.advertiser, campaign=known_events["alpha"]))
    beta = by_campaign["Beta"]
    assert (beta.impressions, beta.clicks, beta.spend_micros, beta.avg_cpc_micros, beta.ecpm_micros) == (
        3,
        0,
        6_000,
        None,
        2_000_000,
    )
    assert by_campaign["Gamma (no events)"].impressions == 0
    assert "Theirs" not in html


def test_average_cpc_leaves_cpm_spend_and_cpm_clicks_out(member_client):
    """A CPM campaign's impressions cost money and its clicks are free: neither is in the
    average cost of a CPC click (docs/ads.md, "Reports")."""
    advertiser = member_client.advertiser
    cpc = CreativeFactory(campaign=CampaignFactory(advertiser=advertiser, name="Per click", bid_type="cpc"))
    cpm = CreativeFactory(
        campaign=CampaignFactory(advertiser=advertiser, name="Per mille", bid_type="cpm", max_bid_micros=2_000_000)
    )
    cpc_imps = [impression(cpc, at(DAY1, 9, i)) for i in range(2)]
    click(cpc_imps[0], at(DAY1, 9, 30), cost=300_000)
    click(cpc_imps[1], at(DAY1, 9, 31), cost=250_000)
    cpm_imps = [impression(cpm, at(DAY1, 15, i), cost=2_000) for i in range(3)]
    click(cpm_imps[0], at(DAY1, 15, 30))  # valid, and free: CPM pays for the impression
    stats_rollup_day(day=DAY1)
    expected, _ = expected_ratios(advertiser)
    assert expected == 275_000  # (300,000 + 250,000) / 2, not 556,000 / 3
    response = member_client.get(url("performance"), {"start": "2026-11-20", "end": "2026-11-20"})
    totals = response.context["totals"]
    assert (totals.clicks, totals.spend_micros, totals.avg_cpc_micros) == (3, 556_000, expected)
    by_campaign = {c.name: m for c, m in response.context["by_campaign"]}
    assert by_campaign["Per click"].avg_cpc_micros == expected
    assert by_campaign["Per mille"].avg_cpc_micros is None  # a CPM campaign has no cost per click
    assert dict(re.findall(r'data-kpi="(\w+)">([^<]*)<', response.content.decode()))["cpc"] == "$0.2750"


def test_the_chart_gets_one_point_per_day_with_zeros_for_quiet_days(member_client, known_events):
    response = member_client.get(url("performance"), {"start": "2026-11-19", "end": "2026-11-22"})
    data = json.loads(
        re.search(r'<script id="daily-data" type="application/json">(.*?)</script>', response.content.decode()).group(1)
    )
    assert data == [
        {"day": "2026-11-19", "impressions": 0, "clicks": 0, "spend_micros": 0},
        {"day": "2026-11-20", "impressions": 7, "clicks": 2, "spend_micros": 556_000},
        {"day": "2026-11-21", "impressions": 2, "clicks": 1, "spend_micros": 400_000},
        {"day": "2026-11-22", "impressions": 0, "clicks": 0, "spend_micros": 0},
    ]


def test_the_date_range_filters_the_numbers(member_client, known_events):
    response = member_client.get(url("performance"), {"start": "2026-11-21", "end": "2026-11-21"})
    totals = response.context["totals"]
    assert (totals.impressions, totals.clicks, totals.spend_micros) == (2, 1, 400_000)


def test_a_reversed_date_range_is_refused(member_client):
    response = member_client.get(url("performance"), {"start": "2026-11-21", "end": "2026-11-01"})
    assert response.status_code == 400
    assert "The end date must not be before the start date." in response.content.decode()
    response = member_client.get(url("performance_csv"), {"start": "2026-11-21", "end": "2026-11-01"})
    assert response.status_code == 400


def test_csv_export_is_exact(member_client, known_events):
    alpha, beta = known_events["alpha"].pk, known_events["beta"].pk
    response = member_client.get(url("performance_csv"), {"start": "2026-11-20", "end": "2026-11-21"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="lhama-ads-20261120-20261121.csv"'
    assert response.content.decode() == (
        "date,campaign_id,campaign,impressions,clicks,ctr_percent,spend_usd,avg_cpc_usd,ecpm_usd,"
        "invalid_impressions,invalid_clicks,served,viewable,viewable_rate_percent,"
        "invalid_duplicate,invalid_bot,invalid_not_viewable,invalid_foreign_viewer,invalid_expired,"
        "invalid_rate_limited,invalid_never_shown,invalid_tampered,invalid_guest_unverified,invalid_unknown,"
        "invalid_not_approved,invalid_budget\n"
        f"2026-11-20,{alpha},Alpha,4,2,50.00,0.550000,0.275000,137.500000,1,1,5,4,80.00,1,1,0,0,0,0,0,0,0,0,0,0\n"
        f"2026-11-20,{beta},Beta,3,0,0.00,0.006000,,2.000000,0,0,3,3,100.00,0,0,0,0,0,0,0,0,0,0,0,0\n"
        f"2026-11-21,{alpha},Alpha,2,1,50.00,0.400000,0.400000,200.000000,0,0,2,2,100.00,0,0,0,0,0,0,0,0,0,0,0,0\n"
    )


def test_csv_cells_never_start_a_spreadsheet_formula(member_client, known_events):
    Campaign.objects.filter(pk=known_events["alpha"].pk).update(name='=HYPERLINK("https://evil.example","x")')
    body = member_client.get(url("performance_csv"), {"start": "2026-11-21", "end": "2026-11-21"}).content.decode()
    assert body.splitlines()[1].split(",", 3)[2].startswith("\"'=HYPERLINK(")


def test_campaign_page_shows_its_lifetime_numbers(member_client, known_events):
    response = member_client.get(url("campaign_detail", known_events["alpha"].pk))
    lifetime = response.context["lifetime"]
    assert (lifetime.impressions, lifetime.clicks, lifetime.spend_micros) == (6, 3, 950_000)
    listing = member_client.get(url("campaigns"))
    rows = {c.name: m for c, m in listing.context["rows"]}
    assert (rows["Alpha"].impressions, rows["Alpha"].clicks) == (6, 3)


# --- preview a conversation ----------------------------------------------------------------


@pytest.fixture
def gpu_campaigns(member_client):
    """Acme's GPU campaign, and a richer competitor's on the same keyword."""

    def make(advertiser, name, bid):
        campaign = CampaignFactory(advertiser=advertiser, name=name, max_bid_micros=bid, language="en")
        CampaignKeyword.objects.create(campaign=campaign, text="gpu rental", match_type="phrase")
        CreativeFactory(
            campaign=campaign, headline=f"{name} GPUs", landing_url="https://gpu.example/", display_domain="gpu.example"
        )
        return campaign

    mine = make(member_client.advertiser, "Acme GPUs", 800_000)
    theirs = make(AdvertiserFactory(name="Rival Compute", balance_usd=100), "Rival offer", 5_000_000)
    return mine, theirs


def test_preview_decides_among_my_own_ads_only(member_client, gpu_campaigns):
    mine, _ = gpu_campaigns
    response = member_client.post(
        url("preview"), {"text": "Where can I find a cheap gpu rental to fine-tune Llama?", "language": "en"}
    )
    assert response.status_code == 200
    result = response.context["result"]
    assert result["ad"]["campaign_id"] == mine.pk
    assert {c["campaign_id"] for c in result["candidates"]} == {mine.pk}
    # Alone in the auction, Acme pays the reserve price, not its bid.
    assert result["auction"]["price_micros"] == 50_000
    html = response.content.decode()
    assert "An ad would be shown" in html
    assert "Acme GPUs GPUs" in html
    assert "Rival" not in html
    assert Impression.objects.count() == 0  # a preview records nothing


def test_preview_explains_why_not_on_a_sensitive_topic(member_client, gpu_campaigns):
    response = member_client.post(
        url("preview"), {"text": "Which party should I vote for in the election? Also gpu rental.", "language": "en"}
    )
    html = response.content.decode()
    assert response.context["result"]["reason"] == "sensitive"
    assert "No ad would be shown" in html
    assert "The conversation touches a sensitive topic." in html


def test_preview_with_htmx_returns_only_the_result_partial(member_client, gpu_campaigns):
    response = member_client.post(
        url("preview"), {"text": "gpu rental prices", "language": "en"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="preview-panel">')
    assert "An ad would be shown" in html
    assert "<html" not in html


def test_preview_with_htmx_shows_form_errors_in_the_panel(member_client):
    response = member_client.post(url("preview"), {"text": "", "language": "en"}, headers={"HX-Request": "true"})
    assert response.status_code == 200  # htmx swaps only 2xx answers
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="preview-panel">')
    assert "This field is required." in html


def test_an_empty_preview_is_refused(member_client):
    response = member_client.post(url("preview"), {"text": "  ", "language": "en"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
