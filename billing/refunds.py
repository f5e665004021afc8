"""Refunds and disputes of advertiser top-ups: Stripe takes money back, the ledger follows.

A top-up is a ledger credit written once per Checkout Session (billing.webhooks), with
the PaymentIntent it was paid with. Stripe's charge events name that PaymentIntent, so
a refund or a dispute finds the top-up it reverses and its balance account:

- `charge.refunded` carries the Charge; its `amount_refunded` is cumulative (every
  refund so far), so only the increase over what the ledger already reversed for this
  payment is reversed. Refunds the Charge lists (`refunds.data`, present when Stripe
  includes it) each get their own entry, `stripe:refund:<re_…>`; an increase they do
  not explain is written as `stripe:charge:<ch_…>:refunded:<cumulative cents>`.
- `charge.dispute.created` reverses the disputed amount once, `stripe:dispute:<dp_…>`.
- `charge.dispute.closed`: won (or an inquiry closed without a chargeback) credits the
  reversed amount back, `stripe:dispute:<dp_…>:won`; lost changes nothing more. A
  closing that arrives before its opening writes the reversal itself first, and the
  late opening then finds it: the result is the same in any order.

Each entry's reference is unique (billing.ledger), and the account row is locked while
the increase is computed, so a duplicate, a replay under another event id, or two
workers at once move the money once. A charge event that arrives before the top-up
was credited changes nothing then and is applied when the credit is written
(`topup_reversals_replay`). Reversals may take the balance below zero; ads is told
(`balance_changed_notify`) and pauses the campaigns until a top-up brings it back.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum

from billing.ledger import balance_account_lock, balance_changed_notify, ledger_credit, ledger_reverse
from billing.models import LedgerEntry, StripeEvent

MICROS_PER_CENT = 10_000
REFUND_EVENT = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"
# A dispute closed with one of these gave the money back (or never took it: an inquiry).
DISPUTE_RETURNED = ("won", "warning_closed")


def stripe_id(value) -> str:
    """A Stripe reference as an id, whether it came as a string or an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def topup_for_payment(*, payment_intent: str) -> LedgerEntry | None:
    """The top-up credit paid with this PaymentIntent, if it was credited."""
    if not payment_intent:
        return None
    return (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.CREDIT, stripe_payment_intent=payment_intent, reference__startswith="stripe:checkout:"
        )
        .order_by("id")
        .first()
    )


def _reversed_micros(*, payment_intent: str, kind: str) -> int:
    total = LedgerEntry.objects.filter(stripe_payment_intent=payment_intent, kind=kind).aggregate(
        total=Sum("amount_micros")
    )["total"]
    return -(total or 0)


def topup_refund_apply(*, charge: dict) -> str:
    """Reverse the part of a top-up refunded since the ledger last heard of it."""
    payment_intent = stripe_id(charge.get("payment_intent"))
    if not payment_intent:
        return "ignored: a charge without a payment intent"
    with transaction.atomic():
        topup = topup_for_payment(payment_intent=payment_intent)
        if topup is None:
            return f"waiting: no top-up credited for {payment_intent} yet (applied when it is)"
        balance_account_lock(account_id=topup.account_id)
        refunded_cents = int(charge.get("amount_refunded") or 0)
        target = min(refunded_cents * MICROS_PER_CENT, topup.amount_micros)
        todo = target - _reversed_micros(payment_intent=payment_intent, kind=LedgerEntry.Kind.REFUND)
        if todo <= 0:
            return f"nothing to reverse: {payment_intent} is reversed up to {target} micros already"
        written = 0
        listed = ((charge.get("refunds") or {}).get("data")) or []
        for refund in sorted(listed, key=lambda r: (r.get("created") or 0, r.get("id") or "")):
            if todo <= 0:
                break
            if refund.get("status") in ("failed", "canceled") or not refund.get("id"):
                continue
            reference = f"stripe:refund:{refund['id']}"
            if LedgerEntry.objects.filter(reference=reference).exists():
                continue
            amount = min(int(refund.get("amount") or 0) * MICROS_PER_CENT, todo)
            if amount <= 0:
                continue
            ledger_reverse(
                account_id=topup.account_id,
                amount_micros=amount,
                kind=LedgerEntry.Kind.REFUND,
                reference=reference,
                payment_intent=payment_intent,
                memo=f"Top-up refunded in Stripe ({charge.get('id', '')})",
            )
            todo -= amount
            written += amount
        if todo > 0:
            ledger_reverse(
                account_id=topup.account_id,
                amount_micros=todo,
                kind=LedgerEntry.Kind.REFUND,
                reference=f"stripe:charge:{charge.get('id', payment_intent)}:refunded:{refunded_cents}",
                payment_intent=payment_intent,
                memo="Top-up refunded in Stripe",
            )
            written += todo
        balance_changed_notify(account_id=topup.account_id)
    return f"reversed {written} micros of {payment_intent} (refunded)"


def topup_dispute_apply(*, dispute: dict, closed: bool) -> str:
    """A dispute opened reverses the disputed amount; closed as won, it is credited back."""
    payment_intent = stripe_id(dispute.get("payment_intent"))
    dispute_id = stripe_id(dispute.get("id"))
    if not payment_intent or not dispute_id:
        return "ignored: a dispute without a payment intent"
    with transaction.atomic():
        topup = topup_for_payment(payment_intent=payment_intent)
        if topup is None:
            return f"waiting: no top-up credited for {payment_intent} yet (applied when it is)"
        balance_account_lock(account_id=topup.account_id)
        reference = f"stripe:dispute:{dispute_id}"
        reversal = LedgerEntry.objects.filter(reference=reference).first()
        results = []
        if reversal is None:
            amount = min(int(dispute.get("amount") or 0) * MICROS_PER_CENT, topup.amount_micros)
            if amount <= 0:
                return f"ignored: dispute {dispute_id} of nothing"
            reversal = ledger_reverse(
                account_id=topup.account_id,
                amount_micros=amount,
                kind=LedgerEntry.Kind.DISPUTE,
                reference=reference,
                payment_intent=payment_intent,
                memo=f"Top-up disputed ({dispute.get('reason') or 'no reason given'})",
            )
            results.append(f"reversed {amount} micros")
        if closed and dispute.get("status") in DISPUTE_RETURNED:
            ledger_credit(
                account_id=topup.account_id,
                amount_micros=-reversal.amount_micros,
                kind=LedgerEntry.Kind.DISPUTE_WON,
                reference=f"{reference}:won",
                payment_intent=payment_intent,
                memo=f"Dispute closed: {dispute.get('status')}",
            )
            results.append(f"credited back {-reversal.amount_micros} micros")
        balance_changed_notify(account_id=topup.account_id)
    status = dispute.get("status") or "open"
    return f"dispute {dispute_id} ({status}): " + (", ".join(results) or "nothing more")


def charge_event_apply(*, type_: str, obj: dict) -> str:
    """One charge event's effect on the ledger (webhooks dispatch here; so does the replay)."""
    if type_ == REFUND_EVENT:
        return topup_refund_apply(charge=obj)
    if type_ in (DISPUTE_CREATED, DISPUTE_CLOSED):
        return topup_dispute_apply(dispute=obj, closed=type_ == DISPUTE_CLOSED)
    raise ValueError(f"Not a charge event: {type_}")


def topup_reversals_replay(*, payment_intent: str) -> int:
    """The top-up paid with `payment_intent` was just credited: apply the refunds and
    disputes Stripe sent before it (each is idempotent). Returns how many were replayed."""
    if not payment_intent:
        return 0
    events = StripeEvent.objects.filter(
        type__in=(REFUND_EVENT, DISPUTE_CREATED, DISPUTE_CLOSED), payload__data__object__payment_intent=payment_intent
    ).order_by("created", "id")
    count = 0
    for event in events:
        charge_event_apply(type_=event.type, obj=event.payload["data"]["object"])
        count += 1
    return count
