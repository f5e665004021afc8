"""API keys: how they are stored and checked (assistant.api.keys), the account page that
creates, lists and revokes them, and the admin's revoke action."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.api.errors import ApiError
from assistant.api.keys import api_key_authenticate, api_key_create, api_key_is_revoked, api_key_revoke
from assistant.api.models import ApiKey
from assistant.models import ModelTier
from billing.models import Plan
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers(db):
    for slug, order in (("llama-3.1-8b", 10), ("llama-3.1-70b", 20)):
        ModelTier.objects.create(slug=slug, display_name=slug.upper(), served_model_name="m",
                                 base_url="http://127.0.0.1:9/v1", sort_order=order)
    Plan.objects.create(slug="free", name="Free", daily_tokens=1000, requests_per_minute=10, max_context=4096,
                        model_tier_slugs=["llama-3.1-8b", "llama-3.1-70b"], sort_order=10)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_key_is_stored_only_as_a_hash_and_found_by_its_prefix(user):
    created = api_key_create(user=user, name="laptop")
    prefix, secret = created.token[:12], created.token[13:]
    assert re.fullmatch(r"lhm_[A-Za-z0-9]{8}", prefix) and created.token[12] == "_"
    stored = ApiKey.objects.get(pk=created.key.pk)
    assert stored.prefix == prefix
    assert stored.secret_hash == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored.secret_hash and created.token not in str(ApiKey.objects.values().get())
    assert api_key_authenticate(authorization=bearer(created.token)).id == stored.pk


@pytest.mark.parametrize("header", ["", "Bearer", "Basic abc", "Bearer lhm_short", "Bearer sk-abcdefghijklmnop"])
def test_malformed_authorization_is_refused(user, header):
    api_key_create(user=user, name="k")
    with pytest.raises(ApiError) as caught:
        api_key_authenticate(authorization=header)
    assert caught.value.status == 401


def test_a_right_prefix_with_a_wrong_secret_is_refused(user):
    token = api_key_create(user=user, name="k").token
    with pytest.raises(ApiError) as caught:
        api_key_authenticate(authorization=bearer(token[:-1] + ("A" if token[-1] != "A" else "B")))
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")


def test_revoked_and_expired_keys_are_refused(user):
    revoked = api_key_create(user=user, name="r")
    api_key_revoke(key=revoked.key)
    expiring = api_key_create(user=user, name="e", expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.filter(pk=expiring.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for token, code in ((revoked.token, "api_key_revoked"), (expiring.token, "api_key_expired")):
        with pytest.raises(ApiError) as caught:
            api_key_authenticate(authorization=bearer(token))
        assert (caught.value.status, caught.value.code) == (401, code)


def test_a_disabled_account_s_key_is_refused(user):
    token = api_key_create(user=user, name="k").token
    user.is_active = False
    user.save()
    with pytest.raises(ApiError) as caught:
        api_key_authenticate(authorization=bearer(token))
    assert caught.value.code == "account_disabled"


def test_last_used_is_written_at_most_once_a_minute(user, django_assert_num_queries):
    token = api_key_create(user=user, name="k").token
    with django_assert_num_queries(2):  # the read and the first UPDATE
        api_key_authenticate(authorization=bearer(token))
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # within the minute: the read only
        api_key_authenticate(authorization=bearer(token))
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(seconds=61))
    api_key_authenticate(authorization=bearer(token))
    assert ApiKey.objects.get().last_used_at > first


def test_revocation_reaches_the_running_check_through_the_cache(user, django_capture_on_commit_callbacks):
    key = api_key_create(user=user, name="k").key
    assert api_key_is_revoked(prefix=key.prefix) is False  # caches "active"
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=key)
    assert api_key_is_revoked(prefix=key.prefix) is True  # not the cached "active"
    cache.clear()
    assert api_key_is_revoked(prefix=key.prefix) is True  # and from the database after the cache is gone


def test_a_key_needs_a_name_and_a_future_expiry(user):
    with pytest.raises(ValueError):
        api_key_create(user=user, name="  ")
    with pytest.raises(ValueError):
        api_key_create(user=user, name="k", expires_at=timezone.now() - timedelta(minutes=1))
    assert not ApiKey.objects.exists()


# --- the account page -------------------------------------------------------------------


def test_the_account_page_links_to_api_keys_and_usage(user):
    client = Client()
    client.force_login(user)
    page = client.get(reverse("accounts:profile")).content.decode()
    assert reverse("apikeys:list") in page and reverse("billing:usage") in page


def test_creating_a_key_shows_its_secret_once(user, tiers):
    client = Client()
    client.force_login(user)
    response = client.post(reverse("apikeys:list"), {"name": "CI", "expires_in": "30", "tiers": ["llama-3.1-70b"]})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = re.search(r'data-testid="new-api-key">([^<]+)<', response.content.decode()).group(1)
    key = ApiKey.objects.get(user=user)
    assert token.startswith(key.prefix + "_")
    assert (key.name, key.tier_slugs) == ("CI", ["llama-3.1-70b"])
    assert timedelta(days=29) < key.expires_at - timezone.now() <= timedelta(days=30)
    assert api_key_authenticate(authorization=bearer(token)).id == key.pk
    listing = client.get(reverse("apikeys:list")).content.decode()
    assert key.prefix in listing and token not in listing and token[13:] not in listing


def test_a_key_cannot_be_scoped_to_a_tier_the_plan_does_not_unlock(user, tiers):
    client = Client()
    client.force_login(user)
    response = client.post(reverse("apikeys:list"), {"name": "x", "tiers": ["llama-3.1-405b"]})
    assert response.status_code == 200 and "new-api-key" not in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoking_from_the_account_page(user, tiers):
    key = api_key_create(user=user, name="k").key
    client = Client()
    client.force_login(user)
    assert client.post(reverse("apikeys:revoke", args=[key.pk])).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_nobody_revokes_another_person_s_key(user, other_user):
    key = api_key_create(user=other_user, name="theirs").key
    client = Client()
    client.force_login(user)
    client.post(reverse("apikeys:revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_keys_page_needs_a_login():
    response = Client().get(reverse("apikeys:list"))
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


def test_staff_revoke_keys_in_the_admin(staff_user):
    owner = UserFactory()
    keys = [api_key_create(user=owner, name=f"k{i}").key for i in range(2)]
    client = Client()
    client.force_login(staff_user)
    changelist = reverse("admin:api_apikey_changelist")
    assert keys[0].prefix in client.get(changelist).content.decode()
    client.post(changelist, {"action": "revoke", "_selected_action": [keys[0].pk]})
    assert [ApiKey.objects.get(pk=k.pk).revoked_at is not None for k in keys] == [True, False]
    assert api_key_is_revoked(prefix=keys[0].prefix)
