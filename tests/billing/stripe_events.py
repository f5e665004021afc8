"""Stripe event payloads shaped like the pinned API version sends them (test data builders)."""

from __future__ import annotations

import itertools

from billing.stripe_api import STRIPE_API_VERSION

_ids = itertools.count(1)


def event(type_: str, obj: dict, *, created: int, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_test{next(_ids):08d}",
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "type": type_,
        "data": {"object": obj},
    }


def subscription(
    *,
    sub_id: str,
    customer: str,
    status: str,
    lookup_key: str,
    period_end: int,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    created: int = 1_790_000_000,
) -> dict:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "created": created,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub_id}",
                    "object": "subscription_item",
                    "current_period_start": period_end - 30 * 86400,
                    "current_period_end": period_end,
                    "price": {"id": f"price_{lookup_key}", "object": "price", "lookup_key": lookup_key},
                    "quantity": 1,
                }
            ],
        },
    }


def invoice(*, invoice_id: str, sub_id: str, customer: str, created: int, paid: bool, amount: int = 999,
            billing_reason: str = "subscription_cycle") -> dict:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "created": created,
        "billing_reason": billing_reason,
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "attempt_count": 1,
        "status": "paid" if paid else "open",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub_id}},
    }


def checkout_session(*, session_id: str, mode: str, customer: str | None = None, subscription: str | None = None,
                     client_reference_id: str | None = None, metadata: dict | None = None,
                     amount_total: int | None = None, payment_status: str = "paid") -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": mode,
        "customer": customer,
        "subscription": subscription,
        "client_reference_id": client_reference_id,
        "metadata": metadata or {},
        "amount_total": amount_total,
        "currency": "usd",
        "payment_status": payment_status,
        "status": "complete",
    }
