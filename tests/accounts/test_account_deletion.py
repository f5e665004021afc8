"""Deleting an account (issue 9): it asks for the password, and the account's ad events
keep counting for the advertisers but lose every link to the person."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.forms import FRESH_LOGIN
from accounts.models import User
from accounts.services import user_delete
from ads.models import Click, Impression, InvalidEvent
from tests.ads.factories import CreativeFactory
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def delete(client, **fields):
    return client.post(reverse("accounts:delete"), fields)


def test_deleting_the_account_asks_for_its_password(client, user):
    client.force_login(user)
    response = delete(client, confirm_email=user.email)
    assert response.status_code == 400
    assert "That is not the password of this account." in response.content.decode()
    response = delete(client, confirm_email=user.email, password="not " + TEST_PASSWORD)
    assert response.status_code == 400
    assert User.objects.filter(pk=user.pk).exists()
    assert client.session["_auth_user_id"] == str(user.pk)

    response = delete(client, confirm_email=user.email, password=TEST_PASSWORD)
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert "_auth_user_id" not in client.session


def test_without_a_usable_password_a_fresh_login_is_asked_for(client, user):
    user.set_unusable_password()
    user.save()
    client.force_login(user)  # signs in now...
    long_ago = timezone.now() - FRESH_LOGIN - dt.timedelta(minutes=1)
    User.objects.filter(pk=user.pk).update(last_login=long_ago)  # ...as if long ago
    response = delete(client, confirm_email=user.email)
    assert response.status_code == 400
    assert "Log in again to delete this account" in response.content.decode()
    assert User.objects.filter(pk=user.pk).exists()

    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    assert delete(client, confirm_email=user.email).status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()


def test_guessing_the_password_through_the_form_is_rate_limited(client, user):
    client.force_login(user)
    for _ in range(5):
        assert delete(client, confirm_email=user.email, password="guess").status_code == 400
    response = delete(client, confirm_email=user.email, password=TEST_PASSWORD)
    assert response.status_code == 429
    assert User.objects.filter(pk=user.pk).exists()


def _impression(creative, *, user_id=None, session_key="", viewer_key="", conversation_id=None) -> Impression:
    campaign = creative.campaign
    now = timezone.now()
    return Impression.objects.create(
        creative=creative, campaign=campaign, advertiser=campaign.advertiser, user_id=user_id,
        session_key=session_key, viewer_key=viewer_key, conversation_id=conversation_id, served_at=now,
        acknowledged_at=now, is_valid=True, bid_type=campaign.bid_type, bid_micros=campaign.max_bid_micros,
        price_micros=campaign.max_bid_micros, cost_micros=1_000,
    )


def test_the_accounts_ad_events_are_anonymised_and_still_count(user):
    import uuid

    creative = CreativeFactory()
    mine = [
        _impression(creative, user_id=user.pk, viewer_key=f"user:{user.pk}", conversation_id=uuid.uuid4())
        for _ in range(3)
    ]
    theirs = UserFactory()
    other = _impression(creative, user_id=theirs.pk, viewer_key=f"user:{theirs.pk}")
    clicks = [
        Click.objects.create(impression=imp, creative=creative, campaign=creative.campaign, clicked_at=timezone.now(),
                             is_valid=True, cost_micros=500, viewer_key=f"user:{user.pk}", user_agent="Firefox/140")
        for imp in mine[:2]
    ]
    invalid = InvalidEvent.objects.create(
        kind="click", reason="duplicate", impression=mine[0], campaign=creative.campaign,
        advertiser=creative.campaign.advertiser, viewer_key=f"user:{user.pk}", client_hash="abc", user_agent="Firefox",
    )

    user_delete(user=user)

    # The advertiser's numbers are the same...
    assert Impression.objects.filter(campaign=creative.campaign).count() == 4
    assert sum(Impression.objects.values_list("cost_micros", flat=True)) == 4_000
    assert Click.objects.filter(campaign=creative.campaign, is_valid=True).count() == 2
    assert InvalidEvent.objects.filter(campaign=creative.campaign).count() == 1
    # ...but nothing leads back to the person: one stable random viewer for all of them (reach stays right).
    rows = list(Impression.objects.filter(pk__in=[m.pk for m in mine]).values_list(
        "user_id", "session_key", "viewer_key", "conversation_id"))
    pseudonyms = {viewer for _, _, viewer, _ in rows}
    assert len(pseudonyms) == 1
    (pseudonym,) = pseudonyms
    assert pseudonym.startswith("deleted:") and pseudonym != f"user:{user.pk}"
    assert rows == [(None, "", pseudonym, None)] * 3
    assert set(Click.objects.filter(pk__in=[c.pk for c in clicks]).values_list("viewer_key", "user_agent")) == {
        (pseudonym, "")}
    invalid.refresh_from_db()
    assert (invalid.viewer_key, invalid.user_agent, invalid.client_hash) == (pseudonym, "", "")
    # Another person's events are theirs still.
    other.refresh_from_db()
    assert (other.user_id, other.viewer_key) == (theirs.pk, f"user:{theirs.pk}")
