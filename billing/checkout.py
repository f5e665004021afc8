"""Checkout Sessions (subscriptions and top-ups) and Customer Portal sessions."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing.models import ApiTierPrice, BalanceAccount, Customer, Plan
from billing.stripe_api import stripe_client

logger = logging.getLogger(__name__)

INTERVALS = ("monthly", "yearly")
MIN_TOPUP_MICROS = 5_000_000  # 5 USD
MAX_TOPUP_MICROS = 10_000_000_000  # 10,000 USD


class PlanNotForSale(Exception):
    pass


class PriceNotFound(Exception):
    pass


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _session_url(session) -> str:
    if not session.url:  # only sessions embedded in our page lack one, and we never create those
        raise PriceNotFound(f"Stripe returned the session {session.id} without a URL.")
    return session.url


def customer_get_or_create(*, user) -> Customer:
    """The user's Stripe customer, created once (idempotently) and then reused."""
    existing = Customer.objects.filter(user=user).first()
    if existing is not None:
        return existing
    client = stripe_client()
    created = client.v1.customers.create(
        {"email": user.email, "name": user.get_full_name(), "metadata": {"user_id": str(user.pk)}},
        {"idempotency_key": f"lhama-customer-{user.pk}"},
    )
    try:
        with transaction.atomic():
            return Customer.objects.create(user=user, stripe_customer_id=created.id)
    except IntegrityError:  # a concurrent request saved it first (same idempotency key, same customer)
        return Customer.objects.get(user=user)


def price_id_lookup(*, lookup_key: str) -> str:
    client = stripe_client()
    prices = client.v1.prices.list({"lookup_keys": [lookup_key], "active": True, "limit": 1})
    if not prices.data:
        raise PriceNotFound(f"No active Stripe price has the lookup key {lookup_key!r}.")
    return prices.data[0].id


def _metered_lookup_keys(*, plan: Plan, interval: str) -> list[str]:
    """The metered API prices (per tier the plan unlocks, where ApiTierPrice names one)
    that a monthly subscription carries, so that Stripe invoices its API usage with it.
    Metered prices bill monthly; a yearly subscription gets none (docs/billing.md)."""
    if interval != "monthly":
        return []
    prices = ApiTierPrice.objects.filter(tier_slug__in=plan.model_tier_slugs).exclude(stripe_price_lookup_key="")
    return list(prices.order_by("tier_slug").values_list("stripe_price_lookup_key", flat=True))


def subscription_checkout_create(*, user, plan: Plan, interval: str, request_token: str) -> str:
    """Start a subscription in Stripe Checkout; returns the URL to redirect to.

    `request_token` comes from the pricing form, so a double submit reuses the same
    idempotency key (and gets the same session back) while a later attempt gets a new one.
    """
    if interval not in INTERVALS:
        raise PlanNotForSale(f"Unknown billing interval {interval!r}.")
    lookup_key = plan.stripe_monthly_lookup_key if interval == "monthly" else plan.stripe_yearly_lookup_key
    if not plan.is_active or not lookup_key:
        raise PlanNotForSale(f"{plan.name} is not sold {interval}.")
    customer = customer_get_or_create(user=user)
    price_id = price_id_lookup(lookup_key=lookup_key)
    line_items: list[dict] = [{"price": price_id, "quantity": 1}]
    line_items += [{"price": price_id_lookup(lookup_key=key)} for key in _metered_lookup_keys(plan=plan, interval=interval)]
    client = stripe_client()
    metadata = {"user_id": str(user.pk), "plan_slug": plan.slug}
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.stripe_customer_id,
            "client_reference_id": str(user.pk),
            "line_items": line_items,
            "success_url": _absolute(reverse("billing:success")) + "?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": _absolute(reverse("billing:pricing")),
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "allow_promotion_codes": True,
        },
        {"idempotency_key": f"lhama-checkout-{user.pk}-{plan.slug}-{interval}-{request_token}"},
    )
    logger.info("checkout session %s for user %s plan %s (%s)", session.id, user.pk, plan.slug, interval)
    return _session_url(session)


def portal_session_create(*, user) -> str:
    """A Customer Portal session for the signed-in user's own customer; returns its URL."""
    customer = Customer.objects.filter(user=user).first()
    if customer is None:
        raise PlanNotForSale("You have no Stripe subscription to manage yet.")
    client = stripe_client()
    session = client.v1.billing_portal.sessions.create(
        {"customer": customer.stripe_customer_id, "return_url": _absolute(reverse("accounts:profile"))}
    )
    return session.url


def topup_checkout_create(
    *,
    account_id: int,
    amount_micros: int,
    user,
    success_url: str,
    cancel_url: str,
    idempotency_key: str | None = None,
) -> str:
    """A Stripe Checkout (payment mode) for an advertiser top-up; returns its URL.

    Nothing is credited here: the money lands through the webhook (billing.webhooks),
    which credits the ledger once per Checkout Session.
    """
    if amount_micros % 10_000:
        raise ValueError("A top-up is a whole number of cents.")
    if not MIN_TOPUP_MICROS <= amount_micros <= MAX_TOPUP_MICROS:
        raise ValueError(
            f"A top-up is between {MIN_TOPUP_MICROS // 1_000_000} and {MAX_TOPUP_MICROS // 1_000_000} USD."
        )
    account = BalanceAccount.objects.get(pk=account_id)
    client = stripe_client()
    metadata = {
        "kind": "topup",
        "balance_account_id": str(account.pk),
        "amount_micros": str(amount_micros),
        "user_id": str(user.pk),
    }
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "client_reference_id": str(user.pk),
            "customer_email": user.email,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": account.currency,
                        "unit_amount": amount_micros // 10_000,
                        "product_data": {"name": f"Lhama advertising balance: {account.name}"[:250]},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        {"idempotency_key": idempotency_key or f"lhama-topup-{account.pk}-{uuid.uuid4().hex}"},
    )
    logger.info("top-up checkout %s for balance account %s: %s micros", session.id, account.pk, amount_micros)
    return _session_url(session)
