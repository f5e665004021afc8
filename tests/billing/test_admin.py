from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.entitlements import entitlements_from_plan
from billing.ledger import ledger_credit
from billing.models import LedgerEntry, PlanGrant
from billing.selectors import plan_unlocking
from tests.billing.factories import BalanceAccountFactory, SubscriptionFactory


@pytest.mark.parametrize(
    "model", ["plan", "customer", "subscription", "stripeevent", "plangrant", "balanceaccount", "ledgerentry",
              "quotausage", "quotareservation"]
)
def test_every_billing_changelist_renders(client, staff_user, plans, model):
    SubscriptionFactory(plan=plans["plus"])
    client.force_login(staff_user)
    response = client.get(reverse(f"admin:billing_{model}_changelist") + "?q=x")
    assert response.status_code == 200


def test_staff_grant_a_plan_from_the_admin(client, staff_user, user, plans):
    client.force_login(staff_user)
    response = client.post(reverse("admin:billing_plangrant_add"), {
        "user": user.pk, "plan": plans["pro"].pk, "reason": "press", "starts_at_0": "2026-01-01",
        "starts_at_1": "00:00:00", "ends_at_0": "", "ends_at_1": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = PlanGrant.objects.get()
    assert (grant.user, grant.plan.slug, grant.granted_by) == (user, "pro", staff_user)

    client.post(reverse("admin:billing_plangrant_changelist"),
                {"action": "revoke", "_selected_action": [grant.pk]})
    grant.refresh_from_db()
    assert grant.revoked_at is not None


def test_ledger_entries_are_read_only_in_the_admin(client, staff_user, db):
    account = BalanceAccountFactory()
    entry = ledger_credit(account_id=account.pk, amount_micros=3_000_000, reference="t:1")
    client.force_login(staff_user)
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.count() == 1
    page = client.get(reverse("admin:billing_balanceaccount_changelist")).content.decode()
    assert "$3.00" in page


def _api_limits(plan) -> dict:
    return {
        "api_requests_per_minute": plan.api_requests_per_minute, "api_tokens_per_minute": plan.api_tokens_per_minute,
        "api_tokens_per_day": plan.api_tokens_per_day, "api_concurrent_streams": plan.api_concurrent_streams,
    }


def test_staff_set_a_plans_api_limits_in_the_admin(client, staff_user, plans):
    from billing.api_limits import api_limits_for
    from tests.factories import UserFactory

    pro = plans["pro"]
    client.force_login(staff_user)
    url = reverse("admin:billing_plan_change", args=[pro.pk])
    assert "API limits" in client.get(url).content.decode()
    data = {
        "name": pro.name, "slug": pro.slug, "description": pro.description, "is_active": "on",
        "sort_order": pro.sort_order, "stripe_monthly_lookup_key": pro.stripe_monthly_lookup_key,
        "stripe_yearly_lookup_key": pro.stripe_yearly_lookup_key, "monthly_price_micros": pro.monthly_price_micros,
        "yearly_price_micros": pro.yearly_price_micros, "model_tier_slugs": pro.model_tier_slugs,
        "daily_tokens": pro.daily_tokens, "requests_per_minute": pro.requests_per_minute,
        "concurrent_runs": pro.concurrent_runs, "max_context": pro.max_context,
        "api_requests_per_minute": 123, "api_tokens_per_minute": 45_678, "api_tokens_per_day": 9_000_000,
        "api_concurrent_streams": 5,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    person = UserFactory()
    PlanGrant.objects.create(user=person, plan=pro, starts_at=timezone.now())
    limits = api_limits_for(user=person)
    assert (limits.requests_per_minute, limits.tokens_per_minute, limits.tokens_per_day, limits.concurrent_streams) == (
        123, 45_678, 9_000_000, 5
    )
    # A negative limit is refused with the field's error, nothing saved.
    response = client.post(url, {**data, "api_tokens_per_minute": -1})
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0." in response.content.decode()
    pro.refresh_from_db()
    assert pro.api_tokens_per_minute == 45_678


def test_staff_choose_the_tiers_a_plan_unlocks_from_the_admin(client, staff_user, plans):
    plus = plans["plus"]
    client.force_login(staff_user)
    url = reverse("admin:billing_plan_change", args=[plus.pk])
    page = client.get(url).content.decode()
    # One checkbox per model tier, by its name; the plan's tiers ticked.
    assert re.search(r'<input type="checkbox" name="model_tier_slugs" value="llama-3.1-70b"[^>]*checked', page)
    assert not re.search(r'<input type="checkbox" name="model_tier_slugs" value="llama-3.1-405b"[^>]*checked', page)
    assert "Llama 3.1 405B</label>" in page

    data = {
        "name": plus.name, "slug": plus.slug, "description": plus.description, "is_active": "on",
        "sort_order": plus.sort_order, "stripe_monthly_lookup_key": plus.stripe_monthly_lookup_key,
        "stripe_yearly_lookup_key": plus.stripe_yearly_lookup_key, "monthly_price_micros": plus.monthly_price_micros,
        "yearly_price_micros": plus.yearly_price_micros, "model_tier_slugs": ["llama-3.1-8b", "llama-3.1-405b"],
        "daily_tokens": plus.daily_tokens, "requests_per_minute": plus.requests_per_minute,
        "concurrent_runs": plus.concurrent_runs, "max_context": plus.max_context,
        **_api_limits(plus),
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    plus.refresh_from_db()
    assert plus.model_tier_slugs == ["llama-3.1-8b", "llama-3.1-405b"]
    assert entitlements_from_plan(plan=plus).tier_slugs == frozenset({"llama-3.1-8b", "llama-3.1-405b"})
    assert plan_unlocking(tier_slug="llama-3.1-405b").slug == "plus"

    filtered = client.get(reverse("admin:billing_plan_changelist") + "?model_tier=llama-3.1-70b").content.decode()
    assert re.findall(r'<th class="field-name"><a href="[^"]*">([^<]+)</a>', filtered) == ["Pro"]
