"""Viewability on the server: an acknowledgement counts only a second or more after the
ad frame went out, and only if the browser measured a second in view; the frame's
sending time is recorded once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ads import tracking
from ads.models import Impression, InvalidEvent
from ads.services import delivery
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def cpm(db):
    campaign = CampaignFactory(bid_type="cpm", max_bid_micros=5_000_000, advertiser=AdvertiserFactory(balance_usd=10))
    return CreativeFactory(campaign=campaign)


def served(creative, user, *, when) -> Impression:
    campaign = creative.campaign
    return Impression.objects.create(
        creative=creative, campaign=campaign, advertiser=campaign.advertiser, user=user,
        viewer_key=f"user:{user.pk}", served_at=when, bid_type="cpm", bid_micros=5_000_000, price_micros=2_000_000,
    )


def ack(impression, user, *, now, visible_ms=None) -> delivery.AckResult:
    viewer = tracking.Viewer(user_id=user.pk, session_key="", user_agent=BROWSER)
    return delivery.impression_acknowledge(impression_id=str(impression.pk), viewer=viewer, visible_ms=visible_ms, now=now)


@pytest.mark.django_db
def test_an_ack_sooner_than_a_second_after_the_frame_was_sent_is_not_viewable(cpm, user):
    t0 = timezone.now()
    impression = served(cpm, user, when=t0 - timedelta(seconds=30))  # decided beside a long answer
    delivery.impression_mark_sent(impression_id=str(impression.pk), now=t0)  # the frame, after the answer
    result = ack(impression, user, now=t0 + timedelta(milliseconds=600), visible_ms=1000)
    assert (result.counted, result.reason) == (False, "not_viewable")
    impression.refresh_from_db()
    assert (impression.is_valid, impression.invalid_reason, impression.cost_micros) == (False, "not_viewable", 0)
    assert list(InvalidEvent.objects.values_list("kind", "reason")) == [("impression", "not_viewable")]


@pytest.mark.django_db
def test_an_ack_a_second_after_the_frame_counts(cpm, user):
    t0 = timezone.now()
    impression = served(cpm, user, when=t0 - timedelta(seconds=30))
    delivery.impression_mark_sent(impression_id=str(impression.pk), now=t0)
    delivery.impression_mark_sent(impression_id=str(impression.pk), now=t0 + timedelta(seconds=20))  # a resync
    impression.refresh_from_db()
    assert impression.sent_at == t0  # the first sending counts
    assert ack(impression, user, now=t0 + timedelta(milliseconds=1100), visible_ms=1003).counted
    impression.refresh_from_db()
    assert (impression.is_valid, impression.visible_ms, impression.cost_micros) == (True, 1003, 2_000)


@pytest.mark.django_db
def test_a_measured_time_in_view_under_a_second_is_not_viewable(cpm, user):
    t0 = timezone.now()
    impression = served(cpm, user, when=t0)
    assert ack(impression, user, now=t0 + timedelta(seconds=5), visible_ms=999).reason == "not_viewable"


@pytest.mark.django_db
def test_the_ack_endpoint_reads_the_measured_time(cpm, user):
    impression = served(cpm, user, when=timezone.now() - timedelta(seconds=3))
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    assert client.post(f"/ads/i/{impression.pk}/ack", {"visible_ms": "250"}).json()["reason"] == "not_viewable"
    other = served(cpm, user, when=timezone.now() - timedelta(seconds=3))
    assert client.post(f"/ads/i/{other.pk}/ack", {"visible_ms": "junk"}).json()["counted"] is True

