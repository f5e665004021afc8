"""What a person may use: their plan's models, budgets and whether they see ads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.models import Plan, PlanGrant, Subscription

FREE_PLAN_SLUG = "free"
GUEST_PLAN_SLUG = "guest"
# Stripe statuses that keep the plan; past_due keeps it only until the grace period ends.
ENTITLED_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.TRIALING)


@dataclass(frozen=True)
class Entitlements:
    plan_slug: str
    plan_name: str
    tier_slugs: frozenset[str]
    daily_tokens: int
    requests_per_minute: int
    concurrent_runs: int
    max_context: int
    ads_enabled: bool


def entitlements_guest() -> Entitlements:
    return Entitlements(
        plan_slug=GUEST_PLAN_SLUG,
        plan_name="Guest",
        tier_slugs=frozenset(settings.BILLING_GUEST_TIERS),
        daily_tokens=settings.BILLING_GUEST_DAILY_TOKENS,
        requests_per_minute=settings.BILLING_GUEST_REQUESTS_PER_MINUTE,
        concurrent_runs=settings.BILLING_GUEST_CONCURRENT_RUNS,
        max_context=settings.BILLING_GUEST_MAX_CONTEXT,
        ads_enabled=True,
    )


def entitlements_from_plan(*, plan: Plan) -> Entitlements:
    return Entitlements(
        plan_slug=plan.slug,
        plan_name=plan.name,
        tier_slugs=frozenset(plan.model_tier_slugs),
        daily_tokens=plan.daily_tokens,
        requests_per_minute=plan.requests_per_minute,
        concurrent_runs=plan.concurrent_runs,
        max_context=plan.max_context,
        ads_enabled=plan.ads_enabled,
    )


def subscription_entitling(*, user, now: datetime | None = None) -> Subscription | None:
    """The user's subscription that currently grants a plan (best plan first), if any."""
    now = now or timezone.now()
    candidates = (
        Subscription.objects.filter(customer__user=user, plan__isnull=False)
        .filter(Q(status__in=ENTITLED_STATUSES) | Q(status=Subscription.Status.PAST_DUE, grace_period_end__gt=now))
        .select_related("plan")
        .order_by("-plan__sort_order", "-created_at")
    )
    return candidates.first()


def plan_grant_active(*, user, now: datetime | None = None) -> PlanGrant | None:
    now = now or timezone.now()
    return (
        PlanGrant.objects.filter(user=user, revoked_at__isnull=True, starts_at__lte=now)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .select_related("plan")
        .order_by("-plan__sort_order", "-created_at")
        .first()
    )


def plan_for_user(*, user, now: datetime | None = None) -> Plan | None:
    """The best plan the user holds now (subscription or staff grant), else Free (None if Free is not seeded)."""
    now = now or timezone.now()
    held: list[Plan] = []
    subscription = subscription_entitling(user=user, now=now)
    if subscription is not None and subscription.plan is not None:
        held.append(subscription.plan)
    grant = plan_grant_active(user=user, now=now)
    if grant is not None:
        held.append(grant.plan)
    if held:
        return max(held, key=lambda plan: plan.sort_order)
    return Plan.objects.filter(slug=FREE_PLAN_SLUG).first()


def entitlements_for(*, user) -> Entitlements:
    """Entitlements of a user; None or anonymous gets the guest limits."""
    if user is None or not getattr(user, "is_authenticated", False):
        return entitlements_guest()
    plan = plan_for_user(user=user)
    if plan is None:  # nothing seeded yet: signed-in people get at least the guest limits
        return entitlements_guest()
    return entitlements_from_plan(plan=plan)
