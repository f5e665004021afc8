"""What billing contributes to a user's data export, and what happens before deletion."""

from __future__ import annotations

import logging

from billing.models import ApiUsageRecord, Customer, PlanGrant, Subscription
from billing.stripe_api import stripe_client, stripe_configured

logger = logging.getLogger(__name__)


def user_export(*, user) -> dict:
    customer = Customer.objects.filter(user=user).first()
    return {
        "stripe_customer_id": customer.stripe_customer_id if customer else None,
        "subscriptions": [
            {
                "stripe_subscription_id": sub.stripe_subscription_id,
                "plan": sub.plan.slug if sub.plan else None,
                "status": sub.status,
                "current_period_end": sub.current_period_end.isoformat() if sub.current_period_end else None,
                "cancel_at_period_end": sub.cancel_at_period_end,
            }
            for sub in Subscription.objects.filter(customer__user=user).select_related("plan")
        ],
        "plan_grants": [
            {
                "plan": grant.plan.slug,
                "reason": grant.reason,
                "starts_at": grant.starts_at.isoformat(),
                "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
                "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
            }
            for grant in PlanGrant.objects.filter(user=user).select_related("plan")
        ],
        # Every API request's usage record, oldest first. After the account is deleted the
        # records stay without it (the bill of tokens already used), as aggregates do.
        "api_usage": [
            {
                "request_id": record["request_id"],
                "created_at": record["created_at"].isoformat(),
                "key_id": record["key_id"],
                "key_name": record["key_name"],
                "model": record["tier_slug"],
                "prompt_tokens": record["prompt_tokens"],
                "completion_tokens": record["completion_tokens"],
                "billed": record["billable"],
                "reported_to_stripe_at": record["reported_at"].isoformat() if record["reported_at"] else None,
            }
            for record in ApiUsageRecord.objects.filter(user=user)
            .order_by("created_at", "id")
            .values(
                "request_id", "created_at", "key_id", "key_name", "tier_slug", "prompt_tokens", "completion_tokens",
                "billable", "reported_at",
            )
            .iterator()
        ],
    }


def user_before_delete(*, user) -> None:
    """Cancel the user's live Stripe subscriptions now, so a deleted account is never charged again."""
    live = Subscription.objects.filter(customer__user=user).exclude(
        status__in=[Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED]
    )
    ids = list(live.values_list("stripe_subscription_id", flat=True))
    if not ids:
        return
    if not stripe_configured():
        logger.warning("user %s has subscriptions %s but Stripe is not configured: not cancelled", user.pk, ids)
        return
    client = stripe_client()
    for stripe_subscription_id in ids:
        client.v1.subscriptions.cancel(stripe_subscription_id)
