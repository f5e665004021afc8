"""The admin review queue (advertiser text escaped), ads_import, ads_preview, the
demo seed, roll-ups, exports and the low-balance notice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client

from ads.exports import user_export
from ads.models import (
    Advertiser,
    Campaign,
    CampaignStatDaily,
    CampaignStatHourly,
    Click,
    Creative,
    Impression,
    InvalidEvent,
)
from ads.services.decision import ad_preview
from ads.services.delivery import campaign_charge
from ads.services.funding import campaigns_resume_funded
from ads.services.reporting import stats_rollup_day, stats_rollup_hour
from ads.services.review import creative_embed, creative_update
from billing.ledger import balance_micros
from tests.ads.conftest import DATA
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, MembershipFactory
from tests.factories import UserFactory

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.mark.django_db
def test_admin_shows_advertiser_text_escaped(staff_user):
    advertiser = AdvertiserFactory(name=f"Evil {XSS}")
    creative = CreativeFactory(campaign=CampaignFactory(advertiser=advertiser, name=f"Camp {XSS}"), headline=XSS)
    client = Client()
    client.force_login(staff_user)
    for url in (
        "/admin/ads/creative/",
        f"/admin/ads/creative/{creative.pk}/change/",
        "/admin/ads/campaign/",
        "/admin/ads/advertiser/",
        f"/admin/ads/advertiser/{advertiser.pk}/change/",
        "/admin/ads/advertisermembership/",
        "/admin/ads/campaignkeyword/",
        "/admin/ads/impression/",
        "/admin/ads/click/",
        "/admin/ads/adfeedback/",
        "/admin/ads/campaignstathourly/",
        "/admin/ads/campaignstatdaily/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "<script>alert" not in body, url
        assert "<img src=x" not in body, url
        if url.startswith(("/admin/ads/creative/", "/admin/ads/campaign/", "/admin/ads/advertiser/")):
            assert "&lt;script&gt;alert" in body, url


@pytest.mark.django_db
def test_admin_review_queue_approve_and_reject_with_reason(staff_user):
    pending = CreativeFactory(review_status="pending")
    unsafe = CreativeFactory(review_status="pending", landing_url="http://shop.example/")
    client = Client()
    client.force_login(staff_user)
    response = client.get("/admin/ads/creative/?review_status__exact=pending")
    assert response.status_code == 200
    client.post("/admin/ads/creative/", {"action": "approve", "_selected_action": [pending.pk, unsafe.pk]})
    pending.refresh_from_db()
    unsafe.refresh_from_db()
    assert pending.review_status == "approved"
    assert pending.reviewed_by == staff_user
    assert unsafe.review_status == "pending"  # the automatic checks still fail: never approved
    page = client.post("/admin/ads/creative/", {"action": "reject", "_selected_action": [unsafe.pk]})
    assert b"Reject creatives" in page.content
    client.post(
        "/admin/ads/creative/",
        {"action": "reject", "apply": "1", "_selected_action": [unsafe.pk], "reason": "Use an https landing page."},
    )
    unsafe.refresh_from_db()
    assert (unsafe.review_status, unsafe.review_reason) == ("rejected", "Use an https landing page.")


@pytest.mark.django_db
def test_ads_import_creates_then_updates_and_credits_once(tmp_path):
    out = StringIO()
    call_command("ads_import", str(DATA / "campaigns.json"), stdout=out)
    assert "advertisers: 10 created" in out.getvalue()
    assert Campaign.objects.count() == 11
    assert set(Creative.objects.values_list("review_status", flat=True)) == {"pending"}
    northwind = Advertiser.objects.get(name="Northwind Compute")
    assert balance_micros(account_id=northwind.balance_account_id) == 500_000_000
    gpu = Campaign.objects.get(name="GPU rental")
    assert (gpu.bid_type, gpu.max_bid_micros, gpu.daily_budget_micros) == ("cpc", 1_200_000, 50_000_000)
    assert sorted(gpu.keywords.filter(is_negative=True).values_list("text", flat=True)) == ["free", "gaming"]
    assert {("gpu rental", "phrase"), ("h100", "broad")} <= set(gpu.keywords.values_list("text", "match_type"))
    out = StringIO()
    call_command("ads_import", str(DATA / "campaigns.json"), "--auto-approve", stdout=out)
    assert "advertisers: 0 created, 10 updated" in out.getvalue()
    assert Campaign.objects.count() == 11
    assert set(Creative.objects.values_list("review_status", flat=True)) == {"approved"}
    assert balance_micros(account_id=northwind.balance_account_id) == 500_000_000


@pytest.mark.django_db
def test_ads_import_refuses_a_bad_file_and_writes_nothing(tmp_path):
    bad = {
        "advertisers": [
            {
                "name": "Good",
                "campaigns": [
                    {
                        "name": "ok",
                        "max_bid_usd": "0.50",
                        "creatives": [
                            {
                                "question": "Q?",
                                "headline": "H",
                                "text": "T",
                                "landing_url": "https://a.example/",
                                "display_domain": "a.example",
                            }
                        ],
                    }
                ],
            },
            {
                "name": "",
                "campaigns": [
                    {
                        "name": "x",
                        "max_bid_usd": "-1",
                        "bid_type": "cpx",
                        "keywords": ["[]"],
                        "creatives": [
                            {
                                "question": "Q?",
                                "headline": "H",
                                "text": "T",
                                "landing_url": "javascript:alert(1)",
                                "display_domain": "a.example",
                                "colour": "red",
                            }
                        ],
                    }
                ],
            },
        ]
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(CommandError) as exc:
        call_command("ads_import", str(path))
    message = str(exc.value)
    for expected in (
        "advertisers[1].name: required.",
        "advertisers[1].campaigns[0].max_bid_usd: '-1' must be zero or more.",
        "advertisers[1].campaigns[0].bid_type: One of cpc, cpm.",
        "advertisers[1].campaigns[0].keywords:",
        "advertisers[1].campaigns[0].creatives[0].landing_url: The landing URL must start with https://",
        "advertisers[1].campaigns[0].creatives[0]: unknown field(s) colour.",
    ):
        assert expected in message
    assert Advertiser.objects.count() == 0
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("ads_import", str(path))
    with pytest.raises(CommandError, match="no such file"):
        call_command("ads_import", str(tmp_path / "missing.json"))


@pytest.mark.django_db
def test_ads_preview_command(labelled_campaigns):
    out = StringIO()
    call_command("ads_preview", "--json", "Where can I rent an H100 to fine-tune llama?", stdout=out)
    result = json.loads(out.getvalue())
    assert result["ad"]["campaign"] == "GPU rental"
    assert result["auction"]["price_unit"] == "per click"
    assert result["auction"]["reserve_micros"] <= result["auction"]["price_micros"] <= 1_200_000
    assert {"relevance", "similarity", "predicted_ctr", "score", "matched_keywords"} <= set(result["candidates"][0])
    out = StringIO()
    call_command("ads_preview", "I think I have the flu and a fever", stdout=out)
    assert out.getvalue().startswith("No ad: The conversation touches a sensitive topic.")


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    from accounts.seed import DEMO_STAFF_EMAIL
    from ads.seed import seed_demo

    staff = UserFactory(email=DEMO_STAFF_EMAIL)
    seed_demo(stdout=StringIO())
    seed_demo(stdout=StringIO())
    advertiser = Advertiser.objects.get()
    assert list(advertiser.memberships.values_list("user", "role")) == [(staff.pk, "owner")]
    assert balance_micros(account_id=advertiser.balance_account_id) == 1_000_000_000
    assert Campaign.objects.filter(status="active").count() == 6
    assert Creative.objects.filter(review_status="approved").count() == 6
    assert ad_preview(text="Give me a recipe for sourdough bread")["ad"]["campaign"] == "Cookware"


@pytest.mark.django_db
def test_rollups_are_idempotent():
    creative = CreativeFactory()
    campaign = creative.campaign
    hour = datetime(2026, 3, 2, 10, tzinfo=UTC)
    for minute, valid, cost in ((5, True, 2_000), (15, True, 2_000), (20, False, 0)):
        Impression.objects.create(
            creative=creative,
            campaign=campaign,
            advertiser=campaign.advertiser,
            viewer_key="user:1",
            served_at=hour + timedelta(minutes=minute),
            acknowledged_at=hour + timedelta(minutes=minute),
            is_valid=valid,
            bid_type="cpm",
            bid_micros=5_000_000,
            price_micros=2_000_000,
            cost_micros=cost,
        )
    Click.objects.create(
        campaign=campaign,
        creative=creative,
        clicked_at=hour + timedelta(minutes=30),
        is_valid=True,
        cost_micros=300_000,
    )
    Click.objects.create(
        campaign=campaign, creative=creative, clicked_at=hour + timedelta(minutes=31), invalid_reason="bot"
    )
    # Delivery records every refused acknowledgement or click as an InvalidEvent: reports count those.
    for kind, minute in (("impression", 20), ("click", 31)):
        InvalidEvent.objects.create(kind=kind, reason="bot", campaign=campaign, advertiser=campaign.advertiser,
                                    created_at=hour + timedelta(minutes=minute))
    Click.objects.create(
        campaign=campaign,
        creative=creative,
        clicked_at=hour + timedelta(hours=1, minutes=1),
        is_valid=True,
        cost_micros=300_000,
    )
    for _ in range(2):
        stats_rollup_hour(hour=hour + timedelta(minutes=42))
        stats_rollup_day(day=hour.date())
    h = CampaignStatHourly.objects.get()
    assert (h.hour, h.impressions, h.invalid_impressions, h.clicks, h.invalid_clicks, h.spend_micros) == (
        hour,
        2,
        1,
        1,
        1,
        304_000,
    )
    d = CampaignStatDaily.objects.get()
    assert (d.impressions, d.clicks, d.invalid_clicks, d.spend_micros) == (2, 2, 1, 604_000)


@pytest.mark.django_db
def test_low_balance_notice_once_and_campaigns_pause_at_zero_then_resume(user):
    advertiser = AdvertiserFactory(balance_usd=3, contact_email="ads@shop.example")
    MembershipFactory(advertiser=advertiser, user=user)
    campaign = CampaignFactory(advertiser=advertiser)
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert campaign_charge(campaign_id=campaign.pk, amount_micros=1_000_000, reference="r1", now=now)
    advertiser.refresh_from_db()
    assert advertiser.low_balance_notified_at == now
    assert (
        campaign_charge(campaign_id=campaign.pk, amount_micros=1_500_000, reference="r2", now=now) == 1_500_000
    )
    # only 0.50 left: the last of the balance is taken, then the campaign pauses
    assert (
        campaign_charge(campaign_id=campaign.pk, amount_micros=1_000_000, reference="r3", now=now) == 500_000
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "balance")
    assert campaign_charge(campaign_id=campaign.pk, amount_micros=1_000_000, reference="r4", now=now) == 0
    from billing.ledger import ledger_credit

    ledger_credit(account_id=advertiser.balance_account_id, amount_micros=50_000_000, reference="topup")
    assert campaigns_resume_funded() == 1
    campaign.refresh_from_db()
    advertiser.refresh_from_db()
    assert campaign.status == "active"
    assert advertiser.low_balance_notified_at is None


@pytest.mark.django_db
def test_low_balance_email(user, django_capture_on_commit_callbacks):
    advertiser = AdvertiserFactory(balance_usd=3, contact_email="ads@shop.example")
    MembershipFactory(advertiser=advertiser, user=user)
    campaign = CampaignFactory(advertiser=advertiser)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_charge(
            campaign_id=campaign.pk, amount_micros=1_000_000, reference="r1", now=datetime(2026, 3, 2, tzinfo=UTC)
        )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_charge(
            campaign_id=campaign.pk, amount_micros=1_000_000, reference="r2", now=datetime(2026, 3, 2, tzinfo=UTC)
        )
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == sorted(["ads@shop.example", user.email])
    assert "$2.00" in mail.outbox[0].body


@pytest.mark.django_db
def test_export_lists_memberships(user):
    MembershipFactory(advertiser=AdvertiserFactory(name="Shop"), user=user, role="owner")
    assert [(m["advertiser"], m["role"]) for m in user_export(user=user)["advertiser_memberships"]] == [
        ("Shop", "owner")
    ]


@pytest.mark.django_db
def test_embeddings_are_cached_once_and_recomputed_when_the_text_changes(django_capture_on_commit_callbacks):
    from ads import embeddings
    from ads.tasks import embed_campaign, embed_creative

    campaign = CampaignFactory(context_hints="Renting cloud GPUs.")
    creative = CreativeFactory(campaign=campaign)
    embed_creative(creative.pk)
    embed_campaign(campaign.pk)
    creative.refresh_from_db()
    campaign.refresh_from_db()
    assert creative.embedding_hash == embeddings.text_hash(creative.embedding_text)
    assert embeddings.from_bytes(creative.embedding).shape == (embeddings.DIM,)
    assert campaign.hints_embedding_hash == embeddings.text_hash("Renting cloud GPUs.")
    assert creative_embed(creative_id=creative.pk) is False  # unchanged: nothing to do
    with django_capture_on_commit_callbacks(execute=True):
        creative_update(creative=creative, headline="A new headline")
    creative.refresh_from_db()
    assert creative.embedding_hash == embeddings.text_hash(creative.embedding_text)
    assert "A new headline" in creative.embedding_text


def test_periodic_tasks_are_in_the_beat_schedule(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["ads-stats-rollup"]["task"] == "ads.stats_rollup"
    assert schedule["ads-campaigns-resume-funded"]["task"] == "ads.campaigns_resume_funded"


@pytest.mark.django_db
def test_admin_credits_an_advertiser_balance_once_with_a_memo(staff_user):
    from billing.models import LedgerEntry

    advertiser = AdvertiserFactory()
    before = balance_micros(account_id=advertiser.balance_account_id)
    client = Client()
    client.force_login(staff_user)
    form = client.post("/admin/ads/advertiser/", {"action": "credit_balance", "_selected_action": [advertiser.pk]})
    assert b"Credit advertiser balances" in form.content
    reference = form.context["form"].initial["reference"]
    data = {
        "action": "credit_balance", "apply": "1", "_selected_action": [advertiser.pk],
        "amount": "25.50", "memo": "bank transfer, invoice 42", "reference": reference,
    }
    bad = client.post("/admin/ads/advertiser/", {**data, "amount": "-3"})
    assert bad.status_code == 200 and bad.context["form"].errors["amount"]
    assert balance_micros(account_id=advertiser.balance_account_id) == before
    client.post("/admin/ads/advertiser/", data)
    client.post("/admin/ads/advertiser/", data)  # a double submit credits once
    assert balance_micros(account_id=advertiser.balance_account_id) == before + 25_500_000
    entry = LedgerEntry.objects.get(account_id=advertiser.balance_account_id, reference__startswith="staff-credit:")
    assert entry.memo == f"Staff credit by {staff_user.email}: bank transfer, invoice 42"
