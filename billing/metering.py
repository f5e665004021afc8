"""Metered API billing: one usage record per API request, reported to Stripe as Billing
Meter events.

Recording (api_usage_record, called by the API when a request ends) snapshots what the
bill needs: the tier's price and meter (ApiTierPrice, a mirror of the Stripe price) and
the Stripe customer of the subscription that entitles the person. A record is billable
when all three exist and it used tokens; API use on the Free plan or on a staff grant
(no Stripe subscription) is recorded and shown, never billed.

Reporting (api_usage_report, a Celery task every minute) sends each billable record
once as `POST /v1/billing/meter_events` with event_name = the tier's meter,
payload = {stripe_customer_id, value: prompt + completion tokens}, identifier = the
record's identifier and timestamp = when the request was made, and marks it reported
only after Stripe accepted it:

- a batch is claimed first (claimed_until, a lease of BILLING_METER_CLAIM_S), so two
  reporters never send the same record at once; a reporter that dies mid-batch leaves
  its unsent records claimed until the lease ends, then the next run sends them;
- a record accepted by Stripe but not marked (the process died in between) is sent
  again with the same identifier and the same Idempotency-Key: Stripe dedupes on the
  identifier (and replays the first answer for the key), so it never bills twice;
- a retryable failure (429, 5xx, no connection; after the SDK's own retries) stops the
  batch and gives back the unsent records' claims for the next run; a refusal (400,
  e.g. a deleted customer) is kept on the record (report_error) for staff, not retried
  until cleared, and never lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import get_random_string

from billing.entitlements import subscription_entitling
from billing.models import ApiTierPrice, ApiUsageRecord
from billing.stripe_api import stripe_client

logger = logging.getLogger(__name__)

IDENTIFIER_PREFIX = "lhama_apiu_"
_MAX_ID = 100


class MeterReportFailed(Exception):
    """Stripe could not take meter events just now (after retries); the rest waits."""


@dataclass(frozen=True)
class ReportResult:
    reported: int
    refused: int
    pending: int  # billable records still unreported after this run


def usage_cost_micros(*, tokens: int, micros_per_million_tokens: int) -> int:
    """The estimated cost of `tokens` at a price per million, rounded half up to a micro."""
    return (tokens * micros_per_million_tokens + 500_000) // 1_000_000


def api_usage_record(
    *,
    user,
    key_id: str,
    key_name: str,
    request_id: str,
    tier_slug: str,
    prompt_tokens: int,
    completion_tokens: int,
    now: datetime | None = None,
) -> None:
    """Record one API request's tokens. Idempotent by request_id: a repeat (a retry of the
    recording, two workers) changes nothing."""
    for name, value in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}.")
    for name, value in (("request_id", request_id), ("key_id", key_id), ("tier_slug", tier_slug)):
        if not isinstance(value, str) or not value or len(value) > (64 if name != "request_id" else _MAX_ID):
            raise ValueError(f"{name} must be a non-empty string of at most the column's length, not {value!r}.")
    if ApiUsageRecord.objects.filter(request_id=request_id).exists():
        return
    now = now or timezone.now()
    price = ApiTierPrice.objects.filter(tier_slug=tier_slug).first()
    subscription = subscription_entitling(user=user, now=now) if user is not None else None
    customer_id = subscription.customer.stripe_customer_id if subscription is not None else ""
    meter = price.meter_event_name if price is not None else ""
    ApiUsageRecord.objects.get_or_create(
        request_id=request_id,
        defaults={
            "identifier": f"{IDENTIFIER_PREFIX}{get_random_string(32)}",
            "user": user,
            "key_id": key_id,
            "key_name": (key_name or "")[:100],
            "tier_slug": tier_slug,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "micros_per_million_tokens": price.micros_per_million_tokens if price is not None else 0,
            "meter_event_name": meter,
            "stripe_customer_id": customer_id,
            "billable": bool(meter and customer_id and prompt_tokens + completion_tokens > 0),
            "created_at": now,
        },
    )


def _unreported():
    return ApiUsageRecord.objects.filter(billable=True, reported_at__isnull=True, report_error="")


def _claim(*, limit: int, now: datetime) -> list[ApiUsageRecord]:
    """Claim up to `limit` unreported records, oldest first (skipping rows another
    reporter is claiming; SQLite serialises the transaction)."""
    with transaction.atomic():
        ids = list(
            _unreported()
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
        ApiUsageRecord.objects.filter(id__in=ids).update(
            claimed_until=now + timedelta(seconds=settings.BILLING_METER_CLAIM_S)
        )
    return list(ApiUsageRecord.objects.filter(id__in=ids).order_by("id"))


def _send(client: stripe.StripeClient, record: ApiUsageRecord) -> None:
    client.v1.billing.meter_events.create(
        params={
            "event_name": record.meter_event_name,
            "payload": {"stripe_customer_id": record.stripe_customer_id, "value": str(record.total_tokens)},
            "identifier": record.identifier,
            "timestamp": int(record.created_at.timestamp()),
        },
        options={"idempotency_key": record.identifier},
    )


def _retryable(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    status = exc.http_status or 0
    return status >= 500 or status in (409, 429)


def api_usage_report(*, batch_size: int | None = None, now: datetime | None = None) -> ReportResult:
    """Report one batch of unreported billable records to Stripe (see the module's doc).
    Raises MeterReportFailed when Stripe could not take them just now."""
    now = now or timezone.now()
    records = _claim(limit=batch_size or settings.BILLING_METER_BATCH_SIZE, now=now)
    reported = refused = 0
    if records:
        client = stripe_client()
        for index, record in enumerate(records):
            try:
                _send(client, record)
            except stripe.StripeError as exc:
                if _retryable(exc):
                    _unclaim(records[index:])
                    raise MeterReportFailed(f"Stripe did not take meter event {record.identifier}: {exc}") from exc
                ApiUsageRecord.objects.filter(pk=record.pk).update(
                    report_error=f"{exc.http_status}: {exc.user_message or exc}"[:500], claimed_until=None
                )
                logger.error("Stripe refused meter event %s: %s", record.identifier, exc)
                refused += 1
                continue
            except Exception:
                # Not Stripe's answer (a bug, a transport fault): this one and the rest wait.
                _unclaim(records[index:])
                raise
            ApiUsageRecord.objects.filter(pk=record.pk, reported_at__isnull=True).update(
                reported_at=timezone.now(), claimed_until=None
            )
            reported += 1
    return ReportResult(reported=reported, refused=refused, pending=_unreported().count())


def _unclaim(records: list[ApiUsageRecord]) -> None:
    ApiUsageRecord.objects.filter(pk__in=[r.pk for r in records], reported_at__isnull=True).update(
        claimed_until=None
    )


def api_usage_report_all(*, now: datetime | None = None, max_batches: int = 100) -> int:
    """Report batches until none is left (or max_batches); the number reported."""
    total = 0
    for _ in range(max_batches):
        result = api_usage_report(now=now)
        total += result.reported
        if result.reported + result.refused == 0:
            break
    return total
