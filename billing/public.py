"""Billing as the other apps see it: the one module they import from billing.

Why "public": this module is billing's public surface, the way a package's public
names are the ones it promises to keep. Everything else in billing/ (models,
subscriptions, webhooks, checkout, quotas, ledger, ...) is free to move; a name here
changes only together with its callers. Not "api" (Lhama's HTTP API lives under
/api/v1/ and would read as its views) and not "services" (billing's services are
several modules by sub-domain).

The rule: assistant and ads import billing only from here (`from billing.public import
...`); modules inside billing import each other directly, never through this module.
Billing itself imports neither assistant nor ads (see docs/billing.md, "Dependencies").
Each name below is defined in the module that owns the behaviour; this file only
gathers them.
"""

from __future__ import annotations

from billing.api_limits import (
    ApiAdmission,
    ApiLimitExceeded,
    ApiLimits,
    api_admit,
    api_limits_for,
    api_release,
    api_settle,
)
from billing.checkout import MAX_TOPUP_MICROS, MIN_TOPUP_MICROS, topup_checkout_create
from billing.entitlements import Entitlements, entitlements_for
from billing.ledger import (
    InsufficientBalance,
    balance_account_create,
    balance_micros,
    ledger_credit,
    ledger_debit,
    ledger_payments,
    ledger_reference_exists,
    ledger_spend_by_day,
)
from billing.metering import api_usage_record
from billing.quotas import QuotaExceeded, Reservation, quota_release, quota_reserve, quota_settle, quota_subject_for
from billing.selectors import plan_unlocking
from billing.stripe_api import BillingNotConfigured, stripe_configured

__all__ = [
    # what a person may use (assistant: tiers, budgets; ads: ads on or off)
    "Entitlements",
    "entitlements_for",
    "plan_unlocking",
    # quotas around every run (assistant)
    "QuotaExceeded",
    "Reservation",
    "quota_release",
    "quota_reserve",
    "quota_settle",
    "quota_subject_for",
    # the API's limits and metered billing (assistant.api)
    "ApiAdmission",
    "ApiLimitExceeded",
    "ApiLimits",
    "api_admit",
    "api_limits_for",
    "api_release",
    "api_settle",
    "api_usage_record",
    # the advertiser balance (ads)
    "InsufficientBalance",
    "balance_account_create",
    "balance_micros",
    "ledger_credit",
    "ledger_debit",
    "ledger_payments",
    "ledger_reference_exists",
    "ledger_spend_by_day",
    # top-ups through Stripe Checkout (ads dashboard)
    "BillingNotConfigured",
    "MAX_TOPUP_MICROS",
    "MIN_TOPUP_MICROS",
    "stripe_configured",
    "topup_checkout_create",
]
