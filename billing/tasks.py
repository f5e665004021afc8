"""Billing's Celery tasks: thin, idempotent, named explicitly, results ignored."""

from __future__ import annotations

from celery import shared_task

from billing import metering, quotas, subscriptions, webhooks
from billing.metrics import webhook_failures
from billing.stripe_api import stripe_configured


@shared_task(name="billing.process_stripe_event", ignore_result=True)
def process_stripe_event(event_pk: int) -> None:
    try:
        webhooks.stripe_event_process(event_pk=event_pk)
    except Exception:
        webhook_failures.inc()  # the event stays unprocessed; a replay or the resync retries it
        raise


@shared_task(name="billing.resync_subscriptions", ignore_result=True)
def resync_subscriptions() -> None:
    subscriptions.subscriptions_resync_active()
    webhooks.stripe_events_retry_unprocessed()


@shared_task(name="billing.expire_grace_periods", ignore_result=True)
def expire_grace_periods() -> None:
    subscriptions.subscriptions_expire_grace()


@shared_task(name="billing.quota_cleanup", ignore_result=True)
def quota_cleanup() -> None:
    quotas.quota_rows_prune()


@shared_task(name="billing.report_api_usage", bind=True, ignore_result=True, max_retries=5)
def report_api_usage(self) -> None:
    """Every minute (and retried with backoff while Stripe fails): unreported API usage
    to Stripe as Billing Meter events, in batches."""
    if not stripe_configured():
        return
    try:
        metering.api_usage_report_all()
    except metering.MeterReportFailed as exc:
        raise self.retry(exc=exc, countdown=min(300, 15 * 2**self.request.retries)) from exc
