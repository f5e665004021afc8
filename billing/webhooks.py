"""Stripe webhooks: verify, record once, process after commit, never regress state.

Recording (the view): the signature is checked on the raw body, then a StripeEvent
row is inserted; its unique event id makes a replay a no-op. Processing (a Celery
task, after commit) locks that row, applies the effect and marks it processed in one
transaction, so a retried task changes nothing either.

Out-of-order delivery: every change to a subscription carries the Stripe `created`
time of the event that caused it. A subscription's status is replaced only by an
event at least as new as the one that set it (same second: the status further along
the lifecycle wins: incomplete < trialing < active < past_due < unpaid < canceled),
and `canceled` is final. The plan, period end and cancel flag come only from
subscription snapshots (customer.subscription.* events, or a re-fetch) and are ordered
the same way. The grace period of a past-due subscription starts at the first time it
was seen overdue after it was last seen in good standing (see `_observe`), which does
not depend on which event came first either.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.ledger import ledger_credit
from billing.models import Customer, Plan, StripeEvent, Subscription

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


class WebhookNotConfigured(Exception):
    pass


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _at(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


# --- recording (called by the view) ---------------------------------------------------


def stripe_event_verify(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The verified event as a dict; raises stripe.SignatureVerificationError or ValueError."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookNotConfigured("STRIPE_WEBHOOK_SECRET is not set.")
    # The SDK checks the HMAC of "<t>.<raw body>" and the timestamp tolerance (300 s),
    # then parses the body; a signed body that is not an event fails in the parsing.
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError("The webhook body is not a Stripe event.") from exc
    return json.loads(payload)


def stripe_event_record(*, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Store the event once; schedule its processing after commit. Returns (row, created)."""
    from billing.tasks import process_stripe_event

    with transaction.atomic():
        try:
            with transaction.atomic():
                row = StripeEvent.objects.create(
                    event_id=event["id"],
                    type=event["type"],
                    created=_at(event["created"]),
                    livemode=bool(event.get("livemode")),
                    payload=event,
                )
            created = True
        except IntegrityError:
            row = StripeEvent.objects.get(event_id=event["id"])
            created = False
        if row.processed_at is None:
            # A replay of an event whose processing failed earlier gets another try.
            process_stripe_event.delay_on_commit(row.pk)
    return row, created


# --- processing (called by the task) ----------------------------------------------


def stripe_event_process(*, event_pk: int) -> str:
    with transaction.atomic():
        row = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if row.processed_at is not None:
            return "already processed"
        handler = HANDLERS.get(row.type)
        result = handler(event=row.payload) if handler else "ignored"
        row.processed_at = timezone.now()
        row.result = result[:200]
        row.save(update_fields=["processed_at", "result"])
    logger.info("stripe event %s %s: %s", row.event_id, row.type, result)
    return result


def _object(event: dict) -> dict:
    return event["data"]["object"]


def _event_time(event: dict) -> datetime:
    return _at(event["created"])


def _customer_for(*, stripe_customer_id: str | None, metadata: dict | None) -> Customer | None:
    if not stripe_customer_id:
        return None
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
    if customer is not None:
        return customer
    # A customer created outside Lhama's Checkout flow: link it only through our own metadata.
    from accounts.models import User

    user_id = (metadata or {}).get("user_id")
    if not user_id or not str(user_id).isdigit():
        return None
    user = User.objects.filter(pk=int(user_id)).first()
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
        sub.grace_period_end = _at(sub.overdue_times[0]) + timedelta(days=settings.BILLING_GRACE_DAYS)
    else:
        sub.grace_period_end = None
    return applied


def subscription_snapshot_apply(*, data: dict, at: datetime) -> str:
    """Apply a Stripe subscription object observed at `at` (an event's created time, or a re-fetch time)."""
    customer = _customer_for(stripe_customer_id=data.get("customer"), metadata=data.get("metadata"))
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


def _handle_subscription_event(*, event: dict) -> str:
    return subscription_snapshot_apply(data=_object(event), at=_event_time(event))


def _invoice_subscription_id(invoice: dict) -> str | None:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription") or invoice.get("subscription")


def _handle_invoice_event(*, event: dict) -> str:
    invoice = _object(event)
    subscription_id = _invoice_subscription_id(invoice)
    if not subscription_id:
        return "ignored: not a subscription invoice"
    customer = _customer_for(stripe_customer_id=invoice.get("customer"), metadata=None)
    if customer is None:
        return f"ignored: unknown customer {invoice.get('customer')}"
    at = _event_time(event)
    sub = _subscription_row(stripe_subscription_id=subscription_id, customer=customer)
    if event["type"] == "invoice.paid":
        if not invoice.get("amount_paid"):
            return "ignored: nothing was paid (trial or free invoice)"
        applied = _observe(sub, status=Status.ACTIVE, at=at)
    else:  # invoice.payment_failed
        if invoice.get("billing_reason") == "subscription_create":
            return "ignored: first payment failed (the subscription stays incomplete)"
        applied = _observe(sub, status=Status.PAST_DUE, at=at)
    sub.save()
    return f"subscription {subscription_id}: {sub.status}" + ("" if applied else " (older event, status kept)")


def _handle_checkout_completed(*, event: dict) -> str:
    session = _object(event)
    metadata = session.get("metadata") or {}
    if session.get("mode") == "payment":
        account_id = metadata.get("balance_account_id")
        if not account_id or not str(account_id).isdigit():
            return "ignored: payment without a balance account"
        if session.get("payment_status") != "paid":
            return "waiting: payment not settled yet"
        amount_micros = int(session["amount_total"]) * 10_000  # cents -> micros
        entry = ledger_credit(
            account_id=int(account_id),
            amount_micros=amount_micros,
            reference=f"stripe:checkout:{session['id']}",
            memo="Top-up through Stripe Checkout",
        )
        return f"credited {entry.amount_micros} micros to balance account {account_id}"
    if session.get("mode") == "subscription":
        customer = _customer_for(
            stripe_customer_id=session.get("customer"),
            metadata={"user_id": session.get("client_reference_id") or metadata.get("user_id")},
        )
        if customer is None or not session.get("subscription"):
            return "ignored: unknown customer or no subscription"
        sub = _subscription_row(stripe_subscription_id=session["subscription"], customer=customer)
        sub.checkout_session_id = session["id"]
        sub.save(update_fields=["checkout_session_id", "updated_at"])
        return f"checkout {session['id']} linked to subscription {sub.stripe_subscription_id}"
    return "ignored: checkout mode " + str(session.get("mode"))


HANDLERS = {
    "checkout.session.completed": _handle_checkout_completed,
    "checkout.session.async_payment_succeeded": _handle_checkout_completed,
    "customer.subscription.created": _handle_subscription_event,
    "customer.subscription.updated": _handle_subscription_event,
    "customer.subscription.deleted": _handle_subscription_event,
    "invoice.paid": _handle_invoice_event,
    "invoice.payment_failed": _handle_invoice_event,
}
