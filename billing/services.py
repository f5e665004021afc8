"""Billing writes. Entitlements live in billing.entitlements and are re-exported here
(the import path the other apps use: `from billing.services import entitlements_for, Entitlements`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.checkout import (
    PlanNotForSale,
    PriceNotFound,
    portal_session_create,
    subscription_checkout_create,
)
from billing.entitlements import Entitlements, entitlements_for
from billing.models import Plan, PlanGrant, StripeEvent, Subscription
from billing.stripe_api import BillingNotConfigured, stripe_client, stripe_configured
from billing.webhooks import OVERDUE_STATUSES, subscription_snapshot_apply

__all__ = [
    "BillingNotConfigured",
    "Entitlements",
    "PlanNotForSale",
    "PriceNotFound",
    "entitlements_for",
    "plan_grant_create",
    "plan_grant_revoke",
    "portal_session_create",
    "stripe_events_retry_unprocessed",
    "subscription_checkout_create",
    "subscription_resync",
    "subscriptions_expire_grace",
    "subscriptions_resync_active",
]

logger = logging.getLogger(__name__)


def plan_grant_create(
    *, user, plan: Plan, granted_by=None, reason: str = "", ends_at: datetime | None = None
) -> PlanGrant:
    return PlanGrant.objects.create(
        user=user, plan=plan, granted_by=granted_by, reason=reason, starts_at=timezone.now(), ends_at=ends_at
    )


def plan_grant_revoke(*, grant: PlanGrant) -> PlanGrant:
    if grant.revoked_at is None:
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at"])
    return grant


def subscription_resync(*, stripe_subscription_id: str) -> str:
    """Re-fetch one subscription from Stripe (the source of truth) and apply it as of now."""
    fetched_at = timezone.now()
    data = stripe_client().v1.subscriptions.retrieve(stripe_subscription_id).to_dict()
    with transaction.atomic():
        return subscription_snapshot_apply(data=data, at=fetched_at)


def subscriptions_resync_active() -> int:
    """Nightly: re-fetch every subscription that still grants or may grant a plan."""
    if not stripe_configured():
        return 0
    ids = list(
        Subscription.objects.exclude(status__in=[Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED])
        .values_list("stripe_subscription_id", flat=True)
    )
    done = 0
    for stripe_subscription_id in ids:
        try:
            subscription_resync(stripe_subscription_id=stripe_subscription_id)
            done += 1
        except Exception:  # one broken subscription must not stop the others
            logger.exception("re-sync of subscription %s failed", stripe_subscription_id)
    return done


def subscriptions_expire_grace(*, now: datetime | None = None) -> int:
    """Past-due subscriptions whose grace period is over: cancel them, so the user is back on Free.

    With Stripe configured the cancellation happens in Stripe (which then stops retrying
    the card) and its answer is applied; without it, locally.
    """
    now = now or timezone.now()
    overdue = list(
        Subscription.objects.filter(status__in=OVERDUE_STATUSES, grace_period_end__lte=now).values_list(
            "pk", "stripe_subscription_id"
        )
    )
    for pk, stripe_subscription_id in overdue:
        if stripe_configured():
            try:
                data = stripe_client().v1.subscriptions.cancel(stripe_subscription_id).to_dict()
            except Exception:
                logger.exception("cancelling overdue subscription %s in Stripe failed", stripe_subscription_id)
                continue
            with transaction.atomic():
                subscription_snapshot_apply(data=data, at=now)
            continue
        with transaction.atomic():
            sub = Subscription.objects.select_for_update().get(pk=pk)
            if sub.status in OVERDUE_STATUSES and sub.grace_period_end and sub.grace_period_end <= now:
                sub.status = Subscription.Status.CANCELED
                sub.canceled_at = now
                sub.grace_period_end = None
                sub.state_as_of = max(filter(None, [sub.state_as_of, now]))
                sub.save()
        logger.info("subscription %s: grace period over, back to Free", stripe_subscription_id)
    return len(overdue)


def stripe_events_retry_unprocessed() -> int:
    """Events recorded but never processed (a worker died): process them now (idempotent)."""
    from billing.tasks import process_stripe_event

    pks = list(StripeEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)[:500])
    for pk in pks:
        process_stripe_event.delay(pk)
    return len(pks)
