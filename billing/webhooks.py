"""Stripe webhooks: verify, record once, process after commit.

Recording (the view): the signature is checked on the raw body, then a StripeEvent
row is inserted; its unique event id makes a replay a no-op. Processing (a Celery
task, after commit) locks that row, dispatches the event to the module that owns its
effect (billing.subscriptions for subscriptions, billing.ledger for top-ups,
billing.refunds for refunds and disputes of top-ups) and marks
it processed in one transaction, so a retried task changes nothing either. The ordering
rules that keep out-of-order delivery from regressing state live in billing.subscriptions.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import refunds
from billing.ledger import balance_changed_notify, ledger_credit
from billing.models import StripeEvent, Subscription
from billing.subscriptions import subscription_checkout_link, subscription_snapshot_apply, subscription_status_observe

logger = logging.getLogger(__name__)


class WebhookNotConfigured(Exception):
    pass


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
    if event["type"] == "invoice.paid":
        if not invoice.get("amount_paid"):
            return "ignored: nothing was paid (trial or free invoice)"
        status = Subscription.Status.ACTIVE
    else:  # invoice.payment_failed
        if invoice.get("billing_reason") == "subscription_create":
            return "ignored: first payment failed (the subscription stays incomplete)"
        status = Subscription.Status.PAST_DUE
    return subscription_status_observe(
        stripe_subscription_id=subscription_id,
        stripe_customer_id=invoice.get("customer"),
        status=status,
        at=_event_time(event),
    )


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
        payment_intent = refunds.stripe_id(session.get("payment_intent"))
        entry = ledger_credit(
            account_id=int(account_id),
            amount_micros=amount_micros,
            reference=f"stripe:checkout:{session['id']}",
            memo="Top-up through Stripe Checkout",
            payment_intent=payment_intent,
        )
        # Refunds or disputes of this payment that arrived before it was credited.
        refunds.topup_reversals_replay(payment_intent=payment_intent)
        balance_changed_notify(account_id=entry.account_id)
        return f"credited {entry.amount_micros} micros to balance account {account_id}"
    if session.get("mode") == "subscription":
        return subscription_checkout_link(
            stripe_subscription_id=session.get("subscription") or "",
            stripe_customer_id=session.get("customer"),
            user_id=session.get("client_reference_id") or metadata.get("user_id"),
            checkout_session_id=session["id"],
        )
    return "ignored: checkout mode " + str(session.get("mode"))


def _handle_charge_event(*, event: dict) -> str:
    return refunds.charge_event_apply(type_=event["type"], obj=_object(event))


HANDLERS = {
    "charge.refunded": _handle_charge_event,
    "charge.dispute.created": _handle_charge_event,
    "charge.dispute.closed": _handle_charge_event,
    "checkout.session.completed": _handle_checkout_completed,
    "checkout.session.async_payment_succeeded": _handle_checkout_completed,
    "customer.subscription.created": _handle_subscription_event,
    "customer.subscription.updated": _handle_subscription_event,
    "customer.subscription.deleted": _handle_subscription_event,
    "invoice.paid": _handle_invoice_event,
    "invoice.payment_failed": _handle_invoice_event,
}


def stripe_events_retry_unprocessed() -> int:
    """Events recorded but never processed (a worker died): process them now (idempotent)."""
    from billing.tasks import process_stripe_event

    pks = list(StripeEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)[:500])
    for pk in pks:
        process_stripe_event.delay(pk)
    return len(pks)
