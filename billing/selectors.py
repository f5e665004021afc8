"""Billing reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from billing.entitlements import Entitlements, entitlements_for, plan_grant_active, subscription_entitling
from billing.models import Customer, Plan, PlanGrant, Subscription
from billing.quotas import QuotaUsageToday, quota_subject_for, quota_usage_today


def plans_for_pricing() -> QuerySet[Plan]:
    return Plan.objects.filter(is_active=True).order_by("sort_order", "slug")


def plan_unlocking(*, tier_slug: str) -> Plan | None:
    """The cheapest plan on sale that unlocks a model tier (shown beside a locked tier)."""
    # A handful of plans: read in order and look in each one's slugs (a JSON "contains"
    # lookup is not portable to SQLite).
    for plan in Plan.objects.filter(is_active=True).order_by("sort_order", "monthly_price_micros"):
        if tier_slug in plan.model_tier_slugs:
            return plan
    return None


def model_tier_names() -> dict[str, str]:
    """Display name of every model tier by slug, in display order.

    The tiers are assistant's; billing learns their names from the provider that
    settings.BILLING_MODEL_TIER_NAMES names (a callable returning (slug, name) pairs), so
    billing imports no other app and the dependency is wired in the settings.
    """
    return dict(import_string(settings.BILLING_MODEL_TIER_NAMES)())


@dataclass(frozen=True)
class AccountPlan:
    entitlements: Entitlements
    source: str  # "subscription", "grant" or "" (Free / guest)
    subscription: Subscription | None
    grant: PlanGrant | None
    usage: QuotaUsageToday
    renews_at: datetime | None
    ends_at: datetime | None
    has_customer: bool


def account_plan(*, user) -> AccountPlan:
    """Everything the account page shows about the signed-in user's own plan and usage."""
    now = timezone.now()
    entitlements = entitlements_for(user=user)
    subscription = subscription_entitling(user=user, now=now)
    grant = plan_grant_active(user=user, now=now)
    source = ""
    renews_at = ends_at = None
    if subscription is not None and subscription.plan is not None and subscription.plan.slug == entitlements.plan_slug:
        source = "subscription"
        if subscription.cancel_at_period_end:
            ends_at = subscription.current_period_end
        elif subscription.status == Subscription.Status.PAST_DUE:
            ends_at = subscription.grace_period_end
        else:
            renews_at = subscription.current_period_end
    elif grant is not None and grant.plan.slug == entitlements.plan_slug:
        source = "grant"
        ends_at = grant.ends_at
    return AccountPlan(
        entitlements=entitlements,
        source=source,
        subscription=subscription if source == "subscription" else None,
        grant=grant if source == "grant" else None,
        usage=quota_usage_today(subject=quota_subject_for(user_id=user.pk), entitlements=entitlements, now=now),
        renews_at=renews_at,
        ends_at=ends_at,
        has_customer=Customer.objects.filter(user=user).exists(),
    )


def subscription_confirmed_by_checkout(*, user, session_id: str) -> Subscription | None:
    """The user's subscription started by this Checkout Session, once a webhook made it active."""
    subscription = (
        Subscription.objects.filter(customer__user=user, checkout_session_id=session_id).select_related("plan").first()
    )
    if subscription is None or subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        return None
    return subscription
