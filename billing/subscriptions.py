"""The subscription state machine: how Stripe's view of a subscription becomes the local snapshot.

Everything that changes a `Subscription` row lives here: a snapshot (a
customer.subscription.* event or a re-fetch), a payment outcome (an invoice event), the
link to the Checkout Session that started it, the nightly re-sync and the end of a grace
period. billing.webhooks turns events into these calls; it owns no state of its own.

Out-of-order delivery: every change carries the Stripe `created` time of the event that
caused it. A subscription's status is replaced only by a change at least as new as the
one that set it (same second: the status further along the lifecycle wins: incomplete <
trialing < active < past_due < unpaid < canceled), and `canceled` is final. The plan,
period end and cancel flag come only from subscription snapshots and are ordered the same
way. The grace period of a past-due subscription starts at the first time it was seen
overdue after it was last seen in good standing (see `_observe`), which does not depend on
which event came first either.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from billing.models import Customer, Plan, Subscription
from billing.stripe_api import stripe_client, stripe_configured

logger = logging.getLogger(__name__)

Status = Subscription.Status
STATUS_RANK: dict[str, int] = {
    Status.INCOMPLETE: 0,
    Status.TRIALING: 1,
    Status.ACTIVE: 2,
    Status.PAUSED: 2,
    Status.PAST_DUE: 3,
    Status.UNPAID: 4,
    Status.CANCELED: 5,
    Status.INCOMPLETE_EXPIRED: 5,
}
FINAL_STATUSES = (Status.CANCELED, Status.INCOMPLETE_EXPIRED)
OVERDUE_STATUSES = (Status.PAST_DUE, Status.UNPAID)


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _customer_for(*, stripe_customer_id: str | None, user_id: object = None) -> Customer | None:
    if not stripe_customer_id:
        return None
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
    if customer is not None:
        return customer
    # A customer created outside Lhama's Checkout flow: link it only through our own metadata.
    if not user_id or not str(user_id).isdigit():
        return None
    user = get_user_model().objects.filter(pk=int(str(user_id))).first()
    if user is None or Customer.objects.filter(user=user).exists():
        return None
    return Customer.objects.create(user=user, stripe_customer_id=stripe_customer_id)


def _subscription_row(*, stripe_subscription_id: str, customer: Customer) -> Subscription:
    row, _ = Subscription.objects.get_or_create(stripe_subscription_id=stripe_subscription_id, defaults={"customer": customer})
    return Subscription.objects.select_for_update().get(pk=row.pk)


def _plan_for_item(item: dict) -> tuple[Plan | None, str]:
    price = item.get("price") or {}
    keys = [price.get("lookup_key") or ""]
    # Legacy Plan objects (and localstripe) have no lookup key: a plan whose id is the key.
    keys.append((item.get("plan") or {}).get("id") or "")
    for key in filter(None, keys):
        plan = Plan.objects.filter(stripe_monthly_lookup_key=key).first() or Plan.objects.filter(
            stripe_yearly_lookup_key=key
        ).first()
        if plan is not None:
            return plan, key
    return None, keys[0] or keys[1]


def _status_apply(sub: Subscription, *, status: str, at: datetime) -> bool:
    """Replace the status if this change is not older than the one that set it."""
    if sub.status in FINAL_STATUSES and status not in FINAL_STATUSES:
        return False
    if sub.state_as_of is not None and (at, STATUS_RANK[status]) < (sub.state_as_of, STATUS_RANK[sub.status]):
        return False
    sub.status = status
    sub.state_as_of = at
    return True


def _observe(sub: Subscription, *, status: str, at: datetime) -> bool:
    """Record that Stripe saw the subscription in `status` at `at`; returns whether the status changed to it.

    The grace period starts at the earliest time the subscription was seen overdue
    after it was last seen in good standing; both are kept whatever order the
    events arrive in, so the grace period is the same for any delivery order.
    """
    applied = _status_apply(sub, status=status, at=at)
    stamp = int(at.timestamp())
    times = set(sub.overdue_times or [])
    if status in OVERDUE_STATUSES:
        times.add(stamp)
    elif status not in FINAL_STATUSES and (sub.last_good_at is None or at > sub.last_good_at):
        sub.last_good_at = at
    # Same second: overdue wins, as it does for the status (STATUS_RANK).
    floor = int(sub.last_good_at.timestamp()) if sub.last_good_at else 0
    sub.overdue_times = sorted(t for t in times if t >= floor)
    if sub.status in OVERDUE_STATUSES and sub.overdue_times:
        sub.grace_period_end = datetime.fromtimestamp(sub.overdue_times[0], tz=UTC) + timedelta(
            days=settings.BILLING_GRACE_DAYS
        )
    else:
        sub.grace_period_end = None
    return applied


def subscription_snapshot_apply(*, data: dict, at: datetime) -> str:
    """Apply a Stripe subscription object observed at `at` (an event's created time, or a re-fetch time)."""
    customer = _customer_for(stripe_customer_id=data.get("customer"), user_id=(data.get("metadata") or {}).get("user_id"))
    if customer is None:
        return f"ignored: unknown customer {data.get('customer')}"
    sub = _subscription_row(stripe_subscription_id=data["id"], customer=customer)
    status = data["status"]
    if status not in STATUS_RANK:
        return f"ignored: unknown status {status}"
    rank = STATUS_RANK[status]
    if sub.snapshot_as_of is None or (at, rank) >= (sub.snapshot_as_of, sub.snapshot_rank):
        items = (data.get("items") or {}).get("data") or []
        item = items[0] if items else {}
        plan, key = _plan_for_item(item)
        if plan is None:
            logger.warning("subscription %s: no plan has the price lookup key %r", data["id"], key)
        sub.plan = plan
        sub.stripe_price_lookup_key = key
        sub.current_period_end = _ts(item.get("current_period_end") or data.get("current_period_end"))
        sub.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
        sub.canceled_at = _ts(data.get("canceled_at"))
        sub.snapshot_as_of = at
        sub.snapshot_rank = rank
    applied = _observe(sub, status=status, at=at)
    sub.save()
    return f"subscription {sub.stripe_subscription_id}: {sub.status}" + ("" if applied else " (older event, status kept)")


def subscription_status_observe(*, stripe_subscription_id: str, stripe_customer_id: str | None, status: str, at: datetime) -> str:
    """A payment outcome seen at `at` (an invoice paid: active; a renewal failed: past_due)."""
    customer = _customer_for(stripe_customer_id=stripe_customer_id)
    if customer is None:
        return f"ignored: unknown customer {stripe_customer_id}"
    sub = _subscription_row(stripe_subscription_id=stripe_subscription_id, customer=customer)
    applied = _observe(sub, status=status, at=at)
    sub.save()
    return f"subscription {stripe_subscription_id}: {sub.status}" + ("" if applied else " (older event, status kept)")


def subscription_checkout_link(
    *, stripe_subscription_id: str, stripe_customer_id: str | None, user_id: object, checkout_session_id: str
) -> str:
    """Remember which Checkout Session started the subscription (the success page waits for it)."""
    customer = _customer_for(stripe_customer_id=stripe_customer_id, user_id=user_id)
    if customer is None or not stripe_subscription_id:
        return "ignored: unknown customer or no subscription"
    sub = _subscription_row(stripe_subscription_id=stripe_subscription_id, customer=customer)
    sub.checkout_session_id = checkout_session_id
    sub.save(update_fields=["checkout_session_id", "updated_at"])
    return f"checkout {checkout_session_id} linked to subscription {sub.stripe_subscription_id}"


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
        Subscription.objects.exclude(status__in=FINAL_STATUSES).values_list("stripe_subscription_id", flat=True)
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
