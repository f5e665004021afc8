"""Counting and charging: impression acknowledgements, the signed click redirect,
invalid traffic, feedback and dismissal."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from ads import tracking
from ads.models import AdFeedback, Campaign, Click, Impression
from ads.services import review
from billing.ledger import balance_micros
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def served(creative, *, user=None, session_key="", price=400_000, conversation_id=None, when=None) -> Impression:
    """Served a few seconds ago (an acknowledgement within a second of sending is not viewable)."""
    campaign = creative.campaign
    return Impression.objects.create(
        creative=creative,
        campaign=campaign,
        advertiser=campaign.advertiser,
        conversation_id=conversation_id,
        user=user,
        session_key=session_key,
        viewer_key=tracking.viewer_key(user_id=user.pk if user else None, session_key=session_key),
        served_at=when or timezone.now() - timedelta(seconds=5),
        bid_type=campaign.bid_type,
        bid_micros=campaign.max_bid_micros,
        price_micros=price,
    )


def guest_client() -> tuple[Client, str]:
    client = Client(HTTP_USER_AGENT=BROWSER)
    session = client.session
    session.save()
    return client, session.session_key


def answered(session_key: str) -> None:
    """The guest session has had a complete answer (its impressions count from then)."""
    from assistant.models import Conversation, Message

    conversation = Conversation.objects.create(session_key=session_key)
    Message.objects.create(conversation=conversation, role="assistant", content="Hi.", status="complete")


def viewed(impression: Impression) -> Impression:
    """Acknowledged viewable, as the card's page does before its link is clicked."""
    Impression.objects.filter(pk=impression.pk).update(acknowledged_at=timezone.now(), is_valid=True)
    impression.refresh_from_db()
    return impression


@pytest.fixture
def cpc_creative(db):
    campaign = CampaignFactory(bid_type="cpc", max_bid_micros=1_000_000, advertiser=AdvertiserFactory(balance_usd=10))
    return CreativeFactory(campaign=campaign, landing_url="https://shop.example/landing?utm=lhama")


@pytest.fixture
def cpm_creative(db):
    campaign = CampaignFactory(bid_type="cpm", max_bid_micros=5_000_000, advertiser=AdvertiserFactory(balance_usd=10))
    return CreativeFactory(campaign=campaign)


# --- impressions ---------------------------------------------------------------------


@pytest.mark.django_db
def test_ack_counts_once_and_charges_cpm_a_thousandth_of_the_second_price(cpm_creative, user):
    impression = served(cpm_creative, user=user, price=3_000_000)
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    first = client.post(f"/ads/i/{impression.pk}/ack")
    again = client.post(f"/ads/i/{impression.pk}/ack")
    assert first.status_code == 200 and first.json() == {"counted": True, "valid": True, "reason": ""}
    assert again.status_code == 200 and again.json() == {"counted": False, "valid": False, "reason": "duplicate"}
    impression.refresh_from_db()
    assert impression.cost_micros == 3_000
    assert impression.is_valid is True
    campaign = Campaign.objects.get(pk=cpm_creative.campaign_id)
    assert campaign.spent_micros == 3_000
    assert balance_micros(account_id=campaign.advertiser.balance_account_id) == 10_000_000 - 3_000
    cpm_creative.refresh_from_db()
    assert cpm_creative.impressions_count == 1


@pytest.mark.django_db
def test_ack_is_bound_to_the_viewer(cpm_creative, user, other_user):
    impression = served(cpm_creative, user=user)
    stranger = Client(HTTP_USER_AGENT=BROWSER)
    stranger.force_login(other_user)
    assert stranger.post(f"/ads/i/{impression.pk}/ack").status_code == 404
    anonymous, _ = guest_client()
    assert anonymous.post(f"/ads/i/{impression.pk}/ack").status_code == 404
    assert anonymous.post(f"/ads/i/{uuid.uuid4()}/ack").status_code == 404
    impression.refresh_from_db()
    assert impression.acknowledged_at is None


@pytest.mark.django_db
def test_guest_ack_by_session(cpm_creative):
    client, session_key = guest_client()
    answered(session_key)
    impression = served(cpm_creative, session_key=session_key)
    assert client.post(f"/ads/i/{impression.pk}/ack").json()["counted"] is True
    other, _ = guest_client()
    assert other.post(f"/ads/i/{impression.pk}/ack").status_code == 404


@pytest.mark.django_db
def test_ack_needs_post_and_csrf(cpm_creative, user):
    impression = served(cpm_creative, user=user)
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    assert client.get(f"/ads/i/{impression.pk}/ack").status_code == 405
    assert client.post(f"/ads/i/{impression.pk}/ack").status_code == 403


@pytest.mark.django_db
def test_bot_and_late_acks_are_invalid_and_free(cpm_creative, user):
    bot_impression = served(cpm_creative, user=user)
    bot = Client(HTTP_USER_AGENT=GOOGLEBOT)
    bot.force_login(user)
    assert bot.post(f"/ads/i/{bot_impression.pk}/ack").json() == {"counted": False, "valid": False, "reason": "bot"}
    late = served(cpm_creative, user=user, when=timezone.now() - timedelta(hours=2))
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    assert client.post(f"/ads/i/{late.pk}/ack").json() == {"counted": False, "valid": False, "reason": "expired"}
    assert Campaign.objects.get(pk=cpm_creative.campaign_id).spent_micros == 0


# --- clicks ------------------------------------------------------------------------------


def click_path(impression: Impression) -> str:
    return "/ads/c/" + tracking.click_token(impression_id=str(impression.pk), creative_id=impression.creative_id)


@pytest.mark.django_db
def test_valid_click_redirects_to_the_approved_url_and_pays_the_second_price(cpc_creative, user):
    impression = viewed(served(cpc_creative, user=user, price=400_000))
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    response = client.get(click_path(impression))
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/landing?utm=lhama"
    assert response["Referrer-Policy"] == "no-referrer"
    click = Click.objects.get()
    assert (click.is_valid, click.invalid_reason, click.cost_micros) == (True, "", 400_000)
    campaign = Campaign.objects.get(pk=cpc_creative.campaign_id)
    assert campaign.spent_micros == 400_000
    assert balance_micros(account_id=campaign.advertiser.balance_account_id) == 10_000_000 - 400_000


@pytest.mark.django_db
def test_duplicate_clicks_redirect_but_are_invalid_and_free(cpc_creative, user):
    impression = viewed(served(cpc_creative, user=user, price=400_000))
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    for _ in range(3):
        assert client.get(click_path(impression)).status_code == 302
    assert list(Click.objects.order_by("clicked_at").values_list("is_valid", "invalid_reason", "cost_micros")) == [
        (True, "", 400_000),
        (False, "duplicate", 0),
        (False, "duplicate", 0),
    ]
    assert Campaign.objects.get(pk=cpc_creative.campaign_id).spent_micros == 400_000


@pytest.mark.django_db
def test_bot_clicks_are_invalid_and_free(cpc_creative, user):
    impression = served(cpc_creative, user=user)
    for agent in (GOOGLEBOT, "curl/8.5.0", ""):
        response = Client(HTTP_USER_AGENT=agent).get(click_path(impression))
        assert response.status_code == 302
    assert list(Click.objects.values_list("invalid_reason", flat=True)) == ["bot", "bot", "bot"]
    assert Campaign.objects.get(pk=cpc_creative.campaign_id).spent_micros == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: t.replace(t.split(":")[0], t.split(":")[0][:-1] + "x"),  # payload changed
        lambda t: signing.dumps({"i": "x", "c": 1}, salt="another.salt"),  # signed for something else
        lambda t: "javascript:alert(1)",
        lambda t: "https%3A%2F%2Fevil.example",
    ],
)
def test_tampered_click_urls_lead_nowhere(cpc_creative, user, mangle):
    impression = served(cpc_creative, user=user)
    token = tracking.click_token(impression_id=str(impression.pk), creative_id=impression.creative_id)
    response = Client(HTTP_USER_AGENT=BROWSER).get("/ads/c/" + mangle(token))
    assert response.status_code == 400
    assert "Location" not in response
    assert b"leads nowhere" in response.content
    assert b"shop.example" not in response.content
    click = Click.objects.get()
    assert (click.is_valid, click.invalid_reason, click.cost_micros) == (False, "tampered", 0)
    assert Campaign.objects.get(pk=cpc_creative.campaign_id).spent_micros == 0


@pytest.mark.django_db
def test_a_token_for_another_creative_leads_nowhere(cpc_creative, user):
    impression = served(cpc_creative, user=user)
    elsewhere = CreativeFactory(landing_url="https://evil.example/", display_domain="evil.example")
    token = tracking.click_token(impression_id=str(impression.pk), creative_id=elsewhere.pk)
    response = Client(HTTP_USER_AGENT=BROWSER).get("/ads/c/" + token)
    assert response.status_code == 400
    assert Click.objects.get().invalid_reason == "unknown"


@pytest.mark.django_db
def test_expired_click_urls_still_lead_to_the_page_but_are_invalid_and_free(cpc_creative, user, settings):
    impression = viewed(served(cpc_creative, user=user))
    path = click_path(impression)
    settings.ADS_CLICK_MAX_AGE_S = -1  # every token is already too old
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/landing?utm=lhama"
    click = Click.objects.get()
    assert (click.is_valid, click.invalid_reason, click.impression_id) == (False, "expired", impression.pk)
    assert Campaign.objects.get(pk=cpc_creative.campaign_id).spent_micros == 0


@pytest.mark.django_db
def test_click_on_a_creative_rejected_after_serving_leads_nowhere(cpc_creative, user, staff_user):
    impression = served(cpc_creative, user=user)
    review.creative_reject(creative=cpc_creative, reviewer=staff_user, reason="Misleading claim.")
    response = Client(HTTP_USER_AGENT=BROWSER).get(click_path(impression))
    assert response.status_code == 400
    assert Click.objects.get().invalid_reason == "not_approved"


# --- review ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "domain", "field"),
    [
        ("javascript:alert(document.cookie)", "shop.example", "landing_url"),
        ("JavaScript:alert(1)", "shop.example", "landing_url"),
        ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "shop.example", "landing_url"),
        ("http://shop.example/", "shop.example", "landing_url"),
        ("https://user:pw@shop.example/", "shop.example", "landing_url"),
        ("https://evil.example/", "shop.example", "display_domain"),
        ("https://shop.example.evil.example/", "shop.example", "display_domain"),
    ],
)
def test_review_refuses_unsafe_landing_urls(url, domain, field):
    errors = review.creative_check(
        question="Which one?", headline="Good shoes", text="Nice shoes.", landing_url=url, display_domain=domain
    )
    assert field in errors


def test_review_accepts_a_subdomain_and_rejects_banned_words_and_lengths():
    ok = review.creative_check(
        question="Which one?",
        headline="Good shoes",
        text="Nice shoes.",
        landing_url="https://www.shop.example/x",
        display_domain="shop.example",
    )
    assert ok == {}
    bad = review.creative_check(
        question="Q?",
        headline="H" * 61,
        text="A miracle cure, click here!",
        landing_url="https://shop.example/",
        display_domain="shop.example",
    )
    assert set(bad) == {"headline", "text"}
    assert any("miracle" in m for m in bad["text"])


@pytest.mark.django_db
def test_creative_create_refuses_and_saves_nothing(cpc_creative):
    with pytest.raises(review.CreativeInvalid) as exc:
        review.creative_create(
            campaign=cpc_creative.campaign,
            question="Q?",
            headline="H",
            text="T",
            landing_url="javascript:alert(1)",
            display_domain="shop.example",
        )
    assert "landing_url" in exc.value.errors
    assert cpc_creative.campaign.creatives.count() == 1


@pytest.mark.django_db
def test_editing_an_approved_creative_sends_it_back_to_review(cpc_creative):
    review.creative_update(creative=cpc_creative, headline="New headline")
    cpc_creative.refresh_from_db()
    assert cpc_creative.review_status == "pending"


# --- feedback and dismissal --------------------------------------------------------------


@pytest.mark.django_db
def test_feedback_is_recorded_once_per_kind_and_viewer_bound(cpc_creative, user, other_user):
    impression = served(cpc_creative, user=user)
    client = Client(HTTP_USER_AGENT=BROWSER)
    client.force_login(user)
    assert client.post(f"/ads/i/{impression.pk}/feedback", {"kind": "offensive"}).json() == {
        "ok": True,
        "kind": "offensive",
    }
    assert (
        client.post(
            f"/ads/i/{impression.pk}/feedback", '{"kind": "offensive"}', content_type="application/json"
        ).status_code
        == 200
    )
    assert client.post(f"/ads/i/{impression.pk}/feedback", {"kind": "<b>"}).status_code == 400
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(f"/ads/i/{impression.pk}/feedback", {"kind": "not_relevant"}).status_code == 404
    assert list(AdFeedback.objects.values_list("kind", flat=True)) == ["offensive"]


@pytest.mark.django_db
def test_dismiss_stops_ads_in_that_conversation_only_for_its_owner(cpc_creative, user, other_user):
    from assistant.models import Conversation

    mine = Conversation.objects.create(user=user)
    impression = served(cpc_creative, user=user, conversation_id=mine.pk)
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(f"/ads/i/{impression.pk}/dismiss").status_code == 404
    mine.refresh_from_db()
    assert mine.ads_dismissed is False
    client = Client()
    client.force_login(user)
    assert client.post(f"/ads/i/{impression.pk}/dismiss").json() == {"ok": True, "ads_dismissed": True}
    mine.refresh_from_db()
    assert mine.ads_dismissed is True
    assert AdFeedback.objects.get().kind == "dismissed"


@pytest.mark.django_db
def test_dismiss_changes_only_a_conversation_the_viewer_owns(cpc_creative, user, other_user):
    """The assistant app owns conversations: the card is the viewer's, but the conversation
    it names is someone else's, so that one keeps its ads; a guest's own one (by session) stops."""
    from assistant.models import Conversation

    theirs = Conversation.objects.create(user=other_user)
    impression = served(cpc_creative, user=user, conversation_id=theirs.pk)
    client = Client()
    client.force_login(user)
    assert client.post(f"/ads/i/{impression.pk}/dismiss").status_code == 200
    theirs.refresh_from_db()
    assert theirs.ads_dismissed is False
    guest, session_key = guest_client()
    own = Conversation.objects.create(session_key=session_key)
    impression = served(cpc_creative, session_key=session_key, conversation_id=own.pk)
    assert guest.post(f"/ads/i/{impression.pk}/dismiss").json() == {"ok": True, "ads_dismissed": True}
    own.refresh_from_db()
    assert own.ads_dismissed is True


def test_review_files_html_and_banned_words_under_the_field_that_has_them():
    from ads.services.review import creative_check

    errors = creative_check(
        question="Which kayak fits me?", headline="Kayaks <b>now</b>", text="Light, stable boats.",
        landing_url="https://paddle.example/kayaks", display_domain="paddle.example",
    )
    assert errors == {"headline": ["Ads are plain text: no HTML or script."]}
