"""The public ad library: /ads/library/ (pages) and /ads/library.json (and per entry)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from ads.library import impressions_range, library_entries
from ads.models import CampaignKeyword, Impression
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory

pytestmark = pytest.mark.django_db


def _impressions(creative, *, count: int, when: dt.datetime, valid: bool | None = True, user=None, session="s1"):
    campaign = creative.campaign
    Impression.objects.bulk_create(
        [
            Impression(
                creative=creative,
                campaign=campaign,
                advertiser=campaign.advertiser,
                conversation_id=uuid.uuid4(),
                user=user,
                session_key=session,
                viewer_key=f"session:{session}",
                served_at=when + dt.timedelta(minutes=i),
                is_valid=valid,
                bid_type=campaign.bid_type,
                bid_micros=campaign.max_bid_micros,
                price_micros=100_000,
                matched=["gpu rental"],
                language="en",
            )
            for i in range(count)
        ]
    )


@pytest.fixture
def served(db):
    advertiser = AdvertiserFactory(name="Northwind Compute", paid_by="Northwind Compute Ltd.", balance_usd=10)
    campaign = CampaignFactory(advertiser=advertiser, language="en", context_hints="Renting GPUs by the hour.")
    CampaignKeyword.objects.create(campaign=campaign, text="gpu rental", match_type="phrase")
    CampaignKeyword.objects.create(campaign=campaign, text="h100", match_type="exact")
    CampaignKeyword.objects.create(campaign=campaign, text="free", match_type="broad", is_negative=True)
    creative = CreativeFactory(
        campaign=campaign, headline="H100s by the hour", text="Rent GPUs. No contract.",
        landing_url="https://www.northwind.example/gpus?utm=1", display_domain="northwind.example",
    )
    now = timezone.now()
    _impressions(creative, count=3, when=now - dt.timedelta(days=10))
    _impressions(creative, count=2, when=now - dt.timedelta(days=2), valid=False)
    return creative


def test_impressions_are_shown_in_ranges():
    assert [impressions_range(n) for n in (0, 999, 1000, 9999, 10_000, 250_000, 1_000_000, 5_000_000)] == [
        "<1,000", "<1,000", "1,000–10,000", "1,000–10,000", "10,000–100,000", "100,000–1,000,000",
        "1,000,000+", "1,000,000+",
    ]


def test_library_lists_served_creatives_only_and_is_public(client, served):
    CreativeFactory(headline="Never served")
    response = client.get(reverse("ads:library"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "H100s by the hour" in body
    assert "Never served" not in body
    assert "Northwind Compute Ltd." in body
    assert "www.northwind.example" in body  # the landing domain, without path or query
    assert "utm=1" not in body
    assert '<link rel="stylesheet"' in body and "Ad library" in body  # the site's base layout


def test_entry_json_has_exactly_the_public_fields(client, served):
    data = client.get(reverse("ads:library_entry_json", args=[served.pk])).json()
    today = timezone.now().date()
    assert set(data) == {
        "id", "url", "json_url", "advertiser", "paid_by", "headline", "text", "question",
        "display_domain", "landing_domain", "first_served", "last_served", "impressions", "targeting",
    }
    assert data["advertiser"] == "Northwind Compute"
    assert data["paid_by"] == "Northwind Compute Ltd."
    assert data["landing_domain"] == "www.northwind.example"
    assert data["first_served"] == (today - dt.timedelta(days=10)).isoformat()
    assert data["last_served"] == (today - dt.timedelta(days=2)).isoformat()
    assert data["impressions"] == "<1,000"
    assert data["targeting"] == {
        "keywords": ['"gpu rental"', "[h100]"],
        "negative_keywords": ["free"],
        "context_hints": "Renting GPUs by the hour.",
        "languages": ["en"],
    }
    assert data["url"] == f"/ads/library/{served.pk}/"


def test_nothing_about_a_viewer_appears(client, served, django_user_model):
    user = django_user_model.objects.create_user(email="viewer@example.com", password="pw-123456789")
    _impressions(served, count=1, when=timezone.now() - dt.timedelta(days=1), user=user, session="secretsession42")
    listing = client.get(reverse("ads:library_json")).content.decode()
    entry = client.get(reverse("ads:library_entry_json", args=[served.pk])).content.decode()
    page = client.get(reverse("ads:library_entry", args=[served.pk])).content.decode()
    for text in (listing, entry, page):
        assert "viewer@example.com" not in text
        assert "secretsession42" not in text
        for word in ("viewer_key", "session", "user", "impression_id", "conversation"):
            assert f'"{word}' not in text
    data = json.loads(listing)
    for result in data["results"]:
        assert isinstance(result["impressions"], str)  # a range, never a count
    assert not any(isinstance(v, int) for k, v in json.loads(entry).items() if k != "id")


def test_counted_impressions_only_and_ranges(client, served):
    _impressions(served, count=1200, when=timezone.now() - dt.timedelta(days=3))
    assert client.get(reverse("ads:library_entry_json", args=[served.pk])).json()["impressions"] == "1,000–10,000"


def test_kept_a_year_after_last_served(client, db):
    old = CreativeFactory(headline="Served long ago")
    _impressions(old, count=1, when=timezone.now() - dt.timedelta(days=366))
    recent = CreativeFactory(headline="Served last winter")
    _impressions(recent, count=1, when=timezone.now() - dt.timedelta(days=364))
    assert [c.headline for c in library_entries()] == ["Served last winter"]
    assert client.get(reverse("ads:library_entry", args=[old.pk])).status_code == 404
    assert client.get(reverse("ads:library_entry_json", args=[old.pk])).status_code == 404
    assert client.get(reverse("ads:library_entry", args=[recent.pk])).status_code == 200


def test_search_by_advertiser_and_text(client, served):
    other = CreativeFactory(
        campaign=CampaignFactory(advertiser=AdvertiserFactory(name="Babel Lessons", balance_usd=10)),
        headline="Learn Spanish", text="Lessons online.",
    )
    _impressions(other, count=1, when=timezone.now() - dt.timedelta(days=1))

    def headlines(**params):
        return [r["headline"] for r in client.get(reverse("ads:library_json"), params).json()["results"]]

    assert headlines() == ["Learn Spanish", "H100s by the hour"]
    assert headlines(advertiser="northwind") == ["H100s by the hour"]
    assert headlines(advertiser="Ltd.") == ["H100s by the hour"]  # who paid
    assert headlines(q="spanish") == ["Learn Spanish"]
    assert headlines(q="contract") == ["H100s by the hour"]
    assert headlines(q="spanish", advertiser="northwind") == []
    page = client.get(reverse("ads:library"), {"advertiser": "babel"}).content.decode()
    assert "Learn Spanish" in page and "H100s by the hour" not in page


def test_paginated(client, db):
    now = timezone.now()
    for i in range(25):
        creative = CreativeFactory(headline=f"Ad {i:02d}")
        _impressions(creative, count=1, when=now - dt.timedelta(hours=i))
    first = client.get(reverse("ads:library_json")).json()
    second = client.get(reverse("ads:library_json"), {"page": 2}).json()
    assert (first["count"], first["pages"], len(first["results"]), len(second["results"])) == (25, 2, 20, 5)
    assert first["results"][0]["headline"] == "Ad 00" and second["results"][-1]["headline"] == "Ad 24"
    page = client.get(reverse("ads:library"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in page and "Ad 24" in page and "Ad 00" not in page


def test_hostile_advertiser_text_is_inert(client, db):
    advertiser = AdvertiserFactory(name="<script>alert('n')</script>", balance_usd=10)
    creative = CreativeFactory(
        campaign=CampaignFactory(advertiser=advertiser), headline="<img src=x onerror=alert(1)>",
        text="<script>alert(2)</script>",
    )
    _impressions(creative, count=1, when=timezone.now())
    for url in (reverse("ads:library"), reverse("ads:library_entry", args=[creative.pk])):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body


def test_ad_frame_carries_library_url(served):
    from ads.services.decision import AdRequest, ad_decide

    served.campaign.advertiser  # noqa: B018 - loaded
    request = AdRequest(
        conversation_id=str(uuid.uuid4()), user_id=None, session_key="sess-lib",
        context_text="where can I find a gpu rental for training", is_adult=None,
        ads_enabled=True, ads_dismissed=False,
    )
    ad = ad_decide(request=request)
    assert ad is not None
    assert ad["library_url"] == f"/ads/library/{served.pk}/"
