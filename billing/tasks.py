"""Billing's Celery tasks: thin, idempotent, named explicitly, results ignored."""

from __future__ import annotations

from celery import shared_task

from billing import quotas, subscriptions, webhooks


@shared_task(name="billing.process_stripe_event", ignore_result=True)
def process_stripe_event(event_pk: int) -> None:
    webhooks.stripe_event_process(event_pk=event_pk)


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
