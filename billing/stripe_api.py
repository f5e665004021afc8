"""The one place Lhama talks to Stripe from: a configured `stripe.StripeClient`.

The API version is pinned here and sent (as the Stripe-Version header) on every call
the client makes; webhook endpoints must be created with the same version so event
payloads have the shape billing.webhooks reads.
"""

from __future__ import annotations

import stripe
from django.conf import settings

STRIPE_API_VERSION = "2026-10-28.endive"

# Tests replace the transport (never the SDK) with a fake that records requests.
_http_client: stripe.HTTPClient | None = None


class BillingNotConfigured(Exception):
    """Stripe keys are not set: subscriptions and top-ups are unavailable."""

    def __init__(self, message: str = "Billing is not configured on this server (no Stripe key).") -> None:
        super().__init__(message)
        self.message = message


def stripe_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    if not stripe_configured():
        raise BillingNotConfigured()
    base_addresses: dict = {}
    if settings.STRIPE_API_BASE:
        base_addresses = {"api": settings.STRIPE_API_BASE.rstrip("/")}
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=STRIPE_API_VERSION,
        base_addresses=base_addresses,  # type: ignore[arg-type]
        max_network_retries=2,
        http_client=_http_client,
    )


def stripe_http_client_set(client: stripe.HTTPClient | None) -> None:
    """Swap the HTTP transport (tests: a recording fake; None: the SDK default)."""
    global _http_client
    _http_client = client
