"""Billing pages: pricing, subscribe, success (waits for the webhook), portal, webhook,
and the API usage page with its CSV."""

from __future__ import annotations

import csv
import logging
import re
import uuid

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from billing import selectors
from billing.checkout import PlanNotForSale, PriceNotFound, portal_session_create, subscription_checkout_create
from billing.entitlements import entitlements_for
from billing.models import Plan
from billing.stripe_api import BillingNotConfigured, stripe_configured
from billing.webhooks import WebhookNotConfigured, stripe_event_record, stripe_event_verify

logger = logging.getLogger(__name__)
REQUEST_TOKEN = re.compile(r"^[0-9a-f]{32}$")
SESSION_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")
USAGE_PERIODS = (7, 30, 90)  # days the usage page and its CSV cover


@require_GET
def pricing(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "billing/pricing.html",
        {
            "plans": selectors.plans_for_pricing(),
            "current": entitlements_for(user=request.user),
            "billing_configured": stripe_configured(),
            "request_token": uuid.uuid4().hex,
        },
    )


@login_required
@require_POST
def subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    plan = get_object_or_404(Plan, slug=slug, is_active=True)
    interval = request.POST.get("interval", "")
    token = request.POST.get("request_token", "")
    if not REQUEST_TOKEN.match(token):
        return HttpResponseBadRequest("The form is missing its request token: reload the pricing page.")
    try:
        url = subscription_checkout_create(user=request.user, plan=plan, interval=interval, request_token=token)
    except BillingNotConfigured as exc:
        messages.error(request, exc.message)
        return redirect("billing:pricing")
    except (PlanNotForSale, PriceNotFound) as exc:
        messages.error(request, str(exc))
        return redirect("billing:pricing")
    except stripe.StripeError:
        logger.exception("creating a Checkout Session failed")
        messages.error(request, "Stripe could not start the checkout just now. Nothing was charged; please try again.")
        return redirect("billing:pricing")
    return redirect(url)


def _checkout_status(request: HttpRequest, template: str) -> HttpResponse:
    session_id = request.GET.get("session_id", "")
    if not SESSION_ID.match(session_id):
        return HttpResponseBadRequest("Unknown checkout session.")
    return render(
        request,
        template,
        {"session_id": session_id, "subscription": selectors.subscription_confirmed_by_checkout(user=request.user, session_id=session_id)},
    )


@login_required
@require_GET
def success(request: HttpRequest) -> HttpResponse:
    return _checkout_status(request, "billing/success.html")


@login_required
@require_GET
def success_status(request: HttpRequest) -> HttpResponse:
    """Polled by the success page until the webhook has confirmed the subscription."""
    return _checkout_status(request, "billing/success.html#checkout_status")


@login_required
@require_POST
def portal(request: HttpRequest) -> HttpResponse:
    # Always the signed-in user's own customer: no customer id is ever taken from the request.
    try:
        url = portal_session_create(user=request.user)
    except BillingNotConfigured as exc:
        messages.error(request, exc.message)
        return redirect("accounts:profile")
    except PlanNotForSale as exc:
        messages.error(request, str(exc))
        return redirect("accounts:profile")
    except stripe.StripeError:
        logger.exception("creating a Customer Portal session failed")
        messages.error(request, "Stripe could not open the billing portal just now; please try again.")
        return redirect("accounts:profile")
    return redirect(url)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_event_verify(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except WebhookNotConfigured:
        logger.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set")
        return HttpResponse("Webhooks are not configured.", status=503, content_type="text/plain")
    except stripe.SignatureVerificationError:
        return HttpResponse("Bad signature.", status=400, content_type="text/plain")
    except ValueError:
        return HttpResponse("Bad payload.", status=400, content_type="text/plain")
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        return HttpResponse("Bad payload.", status=400, content_type="text/plain")
    _row, created = stripe_event_record(event=event)
    return HttpResponse("ok" if created else "duplicate", content_type="text/plain")


def _usage_days(request: HttpRequest) -> int | None:
    raw = request.GET.get("days", "30")
    return int(raw) if raw.isdigit() and int(raw) in USAGE_PERIODS else None


def _usage_period_error() -> HttpResponse:
    periods = ", ".join(str(days) for days in USAGE_PERIODS)
    return HttpResponseBadRequest(f"days must be one of {periods}.", content_type="text/plain")


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """The signed-in person's API usage and its estimated cost, per day and per key."""
    days = _usage_days(request)
    if days is None:
        return _usage_period_error()
    return render(
        request,
        "billing/usage.html",
        {
            "summary": selectors.api_usage_summary(user=request.user, days=days),
            "days": days,
            "periods": USAGE_PERIODS,
            "prices": selectors.api_prices(),
        },
    )


def _csv_cell(text: str) -> str:
    # A key's name is the person's text: one starting like a formula is kept as text when
    # the file is opened in a spreadsheet (OWASP's CSV injection advice).
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@login_required
@require_GET
def usage_csv(request: HttpRequest) -> HttpResponse:
    """The same usage per day, key and tier, as CSV."""
    days = _usage_days(request)
    if days is None:
        return _usage_period_error()
    summary = selectors.api_usage_summary(user=request.user, days=days)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"lhama-api-usage-{timezone.now():%Y-%m-%d}-{days}d.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([
        "day_utc", "key_id", "key_name", "model", "requests", "prompt_tokens", "completion_tokens", "total_tokens",
        "estimated_cost_usd", "billed",
    ])
    for row in summary.rows:
        writer.writerow([
            row.day.isoformat() if row.day else "", row.key_id, _csv_cell(row.key_name), row.tier_slug, row.requests,
            row.prompt_tokens, row.completion_tokens, row.total_tokens, f"{row.cost_micros / 1_000_000:.6f}",
            "yes" if row.billed else "no",
        ])
    return response
