from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from billing.entitlements import Entitlements, entitlements_for
from billing.grants import plan_grant_create, plan_grant_revoke
from billing.selectors import plan_unlocking
from tests.billing.factories import SubscriptionFactory


def test_guests_get_the_guest_limits_from_settings(settings, db):
    settings.BILLING_GUEST_DAILY_TOKENS = 1234
    settings.BILLING_GUEST_REQUESTS_PER_MINUTE = 3
    expected = Entitlements(
        plan_slug="guest", plan_name="Guest", tier_slugs=frozenset({"llama-3.1-8b"}), daily_tokens=1234,
        requests_per_minute=3, concurrent_runs=1, max_context=4096, ads_enabled=True,
    )
    assert entitlements_for(user=None) == expected
    assert entitlements_for(user=AnonymousUser()) == expected


def test_a_free_user_gets_8b_only_with_ads(user, plans):
    ent = entitlements_for(user=user)
    assert ent == Entitlements(
        plan_slug="free", plan_name="Free", tier_slugs=frozenset({"llama-3.1-8b"}), daily_tokens=50_000,
        requests_per_minute=10, concurrent_runs=1, max_context=8_192, ads_enabled=True,
    )
    assert "llama-3.1-405b" not in ent.tier_slugs


@pytest.mark.parametrize(
    ("status", "grace_days", "expected"),
    [
        ("active", None, "pro"),
        ("trialing", None, "pro"),
        ("past_due", 2, "pro"),  # inside the grace period
        ("past_due", -1, "free"),  # grace period over
        ("past_due", None, "free"),
        ("incomplete", None, "free"),
        ("unpaid", None, "free"),
        ("canceled", None, "free"),
    ],
)
def test_subscription_status_decides(user, plans, status, grace_days, expected):
    grace = timezone.now() + timedelta(days=grace_days) if grace_days is not None else None
    SubscriptionFactory(customer__user=user, status=status, plan=plans["pro"], grace_period_end=grace)
    assert entitlements_for(user=user).plan_slug == expected


def test_pro_unlocks_405b_without_ads(user, plans):
    SubscriptionFactory(customer__user=user, plan=plans["pro"])
    ent = entitlements_for(user=user)
    assert ent.tier_slugs == frozenset({"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"})
    assert (ent.ads_enabled, ent.daily_tokens, ent.max_context) == (False, 2_000_000, 65_536)


def test_staff_grant_gives_a_plan_until_revoked_or_ended(user, staff_user, plans):
    grant = plan_grant_create(user=user, plan=plans["plus"], granted_by=staff_user, reason="beta tester")
    assert entitlements_for(user=user).plan_slug == "plus"
    plan_grant_revoke(grant=grant)
    assert entitlements_for(user=user).plan_slug == "free"
    plan_grant_create(user=user, plan=plans["pro"], ends_at=timezone.now() - timedelta(seconds=1))
    assert entitlements_for(user=user).plan_slug == "free"


def test_the_better_of_subscription_and_grant_wins(user, plans):
    SubscriptionFactory(customer__user=user, plan=plans["plus"])
    plan_grant_create(user=user, plan=plans["pro"])
    assert entitlements_for(user=user).plan_slug == "pro"


def test_plan_unlocking_is_the_cheapest_plan_with_the_tier(plans):
    assert plan_unlocking(tier_slug="llama-3.1-70b").slug == "plus"
    assert plan_unlocking(tier_slug="llama-3.1-405b").slug == "pro"
    assert plan_unlocking(tier_slug="no-such-tier") is None


def test_seed_is_idempotent_and_keeps_staff_edits(plans):
    from billing.models import Plan
    from billing.seed import seed_demo
    from tests.billing.conftest import _Out

    Plan.objects.filter(slug="plus").update(daily_tokens=123)
    seed_demo(stdout=_Out())
    assert Plan.objects.count() == 3
    assert Plan.objects.get(slug="plus").daily_tokens == 123
