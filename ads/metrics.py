"""The ads' Prometheus metrics (served by config/metrics.py at /metrics).

Decisions are counted live where they are made (ads.services.decision: served, or no ad
with its reason; assistant.generation: a decision that missed its time budget) with their
latency. Impressions, clicks, invalid events and spend already exist as rows, so they are
read from the database at each scrape by `AdEventsCollector` (counts and sums, exact
across every process, and they survive restarts): scrape it once a minute, not faster.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

ad_decisions = Counter(
    "lhama_ad_decisions",
    "Ad decisions: outcome served, no_ad (with its reason), timeout (missed its budget) or failed.",
    ["outcome", "reason"],
)
ad_decision_seconds = Histogram(
    "lhama_ad_decision_seconds",
    "Time an ad decision took, as the answer saw it (capped by ADS_DECISION_BUDGET_S).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1),
)


def ad_decision_record(*, outcome: str, reason: str = "") -> None:
    ad_decisions.labels(outcome=outcome, reason=reason).inc()


class AdEventsCollector(Collector):
    """Impressions (counted: acknowledged and valid), clicks (billable), invalid events by
    kind and reason, and spend in micros, from their rows."""

    def collect(self):
        from django.db.models import Count, Sum

        from ads.models import Click, Impression, InvalidEvent

        served = Impression.objects.count()
        counted = Impression.objects.filter(is_valid=True).count()
        impressions = CounterMetricFamily(
            "lhama_ad_impressions", "Impressions served, and counted (acknowledged as shown, valid).", labels=["state"]
        )
        impressions.add_metric(["served"], served)
        impressions.add_metric(["counted"], counted)
        yield impressions

        clicks = CounterMetricFamily("lhama_ad_clicks", "Clicks, billable (valid) or not.", labels=["valid"])
        for row in Click.objects.values("is_valid").annotate(n=Count("id")):
            clicks.add_metric(["true" if row["is_valid"] else "false"], row["n"])
        yield clicks

        invalid = CounterMetricFamily(
            "lhama_ad_invalid_events", "Invalid impressions and clicks, per kind and reason.", labels=["kind", "reason"]
        )
        for row in InvalidEvent.objects.values("kind", "reason").annotate(n=Count("id")):
            invalid.add_metric([row["kind"], row["reason"]], row["n"])
        yield invalid

        impression_spend = Impression.objects.aggregate(s=Sum("cost_micros"))["s"] or 0
        click_spend = Click.objects.filter(is_valid=True).aggregate(s=Sum("cost_micros"))["s"] or 0
        spend = CounterMetricFamily(
            "lhama_ad_spend_micros", "Advertiser spend charged, in micros of the currency, per bid type.",
            labels=["bid_type"],
        )
        spend.add_metric(["cpm"], impression_spend)
        spend.add_metric(["cpc"], click_spend)
        yield spend
