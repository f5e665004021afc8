"""Billing's Prometheus metrics (served by config/metrics.py at /metrics).

Quota refusals are counted live in billing.quotas (per kind: rate_limited,
concurrent_runs, daily_tokens, tokens_per_minute). Webhook events are rows
(billing.models.StripeEvent), so `WebhookEventsCollector` reads them at each scrape:
received, processed, not processed yet (failed or waiting) and the age of the oldest one
not processed (the lag an alert watches).
"""

from __future__ import annotations

import time

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

quota_refusals = Counter("lhama_quota_refusals", "Runs refused by a quota, per kind.", ["kind"])
webhook_failures = Counter(
    "lhama_webhook_failures", "Webhook event processing attempts that raised (the event is retried)."
)


class WebhookEventsCollector(Collector):
    def collect(self):
        from django.db.models import Min

        from billing.models import StripeEvent

        received = StripeEvent.objects.count()
        pending = StripeEvent.objects.filter(processed_at__isnull=True)
        waiting = pending.count()
        oldest = pending.aggregate(oldest=Min("received_at"))["oldest"]
        events = CounterMetricFamily(
            "lhama_webhook_events", "Stripe webhook events received and processed.", labels=["state"]
        )
        events.add_metric(["received"], received)
        events.add_metric(["processed"], received - waiting)
        yield events
        yield GaugeMetricFamily(
            "lhama_webhook_events_unprocessed", "Webhook events recorded but not processed yet.", value=waiting
        )
        yield GaugeMetricFamily(
            "lhama_webhook_lag_seconds",
            "Age of the oldest webhook event not processed yet (0 when none waits).",
            value=max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0,
        )
