"""Billing reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.module_loading import import_string

from billing.entitlements import Entitlements, entitlements_for, plan_grant_active, subscription_entitling
from billing.metering import usage_cost_micros
from billing.models import ApiTierPrice, ApiUsageRecord, Customer, Plan, PlanGrant, Subscription
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


@dataclass(frozen=True)
class ApiUsageLine:
    """API usage of one group (a day, a key, or a day × key × tier): requests, tokens and
    the estimated cost in micros (only billed usage costs; the rest is included)."""

    day: date | None
    key_id: str
    key_name: str
    tier_slug: str
    tier_name: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    billed: bool

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ApiUsageSummary:
    since: date
    rows: list[ApiUsageLine]  # per day × key × tier, newest day first
    by_day: list[ApiUsageLine]
    by_key: list[ApiUsageLine]
    total: ApiUsageLine


def _usage_sum(lines: list[ApiUsageLine], **names) -> ApiUsageLine:
    return ApiUsageLine(
        day=names.get("day"),
        key_id=names.get("key_id", ""),
        key_name=names.get("key_name", ""),
        tier_slug="",
        tier_name="",
        requests=sum(line.requests for line in lines),
        prompt_tokens=sum(line.prompt_tokens for line in lines),
        completion_tokens=sum(line.completion_tokens for line in lines),
        cost_micros=sum(line.cost_micros for line in lines),
        billed=any(line.billed for line in lines),
    )


def api_usage_summary(*, user, days: int = 30, now: datetime | None = None) -> ApiUsageSummary:
    """The user's API usage over the last `days` UTC days (today included): per day × key
    × tier, per day, per key and in total. A group's cost is its tokens × the price
    recorded with them, rounded once per group (as Stripe sums a meter, then prices it)."""
    now = now or timezone.now()
    since = now.astimezone(UTC).date() - timedelta(days=days - 1)
    groups = (
        ApiUsageRecord.objects.filter(user=user, created_at__gte=datetime.combine(since, time.min, tzinfo=UTC))
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "key_id", "tier_slug", "micros_per_million_tokens", "billable")
        .annotate(
            requests=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
            key_name=Max("key_name"),
        )
        .order_by()
    )
    tier_names = model_tier_names()
    merged: dict[tuple, dict] = {}
    for group in groups:
        slot = merged.setdefault(
            (group["day"], group["key_id"], group["tier_slug"]),
            {"key_name": group["key_name"], "requests": 0, "prompt": 0, "completion": 0, "cost": 0, "billed": False},
        )
        slot["requests"] += group["requests"]
        slot["prompt"] += group["prompt"]
        slot["completion"] += group["completion"]
        if group["billable"]:
            slot["billed"] = True
            slot["cost"] += usage_cost_micros(
                tokens=group["prompt"] + group["completion"], micros_per_million_tokens=group["micros_per_million_tokens"]
            )
    rows = sorted(
        (
            ApiUsageLine(
                day=day, key_id=key_id, key_name=slot["key_name"], tier_slug=tier,
                tier_name=tier_names.get(tier, tier), requests=slot["requests"],
                prompt_tokens=slot["prompt"], completion_tokens=slot["completion"], cost_micros=slot["cost"],
                billed=slot["billed"],
            )
            for (day, key_id, tier), slot in merged.items()
        ),
        key=lambda line: (-line.day.toordinal(), line.key_name, line.key_id, line.tier_slug),
    )
    days_seen = sorted({line.day for line in rows}, reverse=True)
    keys_seen = sorted({(line.key_name, line.key_id) for line in rows})
    return ApiUsageSummary(
        since=since,
        rows=rows,
        by_day=[_usage_sum([r for r in rows if r.day == day], day=day) for day in days_seen],
        by_key=[
            _usage_sum([r for r in rows if r.key_id == key_id], key_id=key_id, key_name=name)
            for name, key_id in keys_seen
        ],
        total=_usage_sum(rows),
    )


def api_prices() -> list[tuple[str, str, int]]:
    """(tier slug, display name, micros per million tokens) of every priced tier, in display order."""
    names = model_tier_names()
    prices = {p.tier_slug: p.micros_per_million_tokens for p in ApiTierPrice.objects.all()}
    ordered = [slug for slug in names if slug in prices] + sorted(slug for slug in prices if slug not in names)
    return [(slug, names.get(slug, slug), prices[slug]) for slug in ordered]
