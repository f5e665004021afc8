"""Hourly and daily roll-ups of the raw events (kept for audit) into stat rows.

Recomputed from the raw events for each period and written with update_or_create,
so running a roll-up twice, or late, gives the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ads.models import CampaignStatDaily, CampaignStatHourly, Click, Impression


def _aggregate(start: datetime, end: datetime) -> dict[int, dict[str, int]]:
    stats: dict[int, dict[str, int]] = defaultdict(
        lambda: {"impressions": 0, "invalid_impressions": 0, "clicks": 0, "invalid_clicks": 0, "spend_micros": 0}
    )
    events = [
        (Impression.objects.filter(acknowledged_at__gte=start, acknowledged_at__lt=end), "impressions"),
        (Click.objects.filter(clicked_at__gte=start, clicked_at__lt=end, campaign__isnull=False), "clicks"),
    ]
    for queryset, kind in events:
        rows = queryset.values("campaign_id").annotate(
            valid=Count("id", filter=Q(is_valid=True)),
            invalid=Count("id", filter=Q(is_valid=False)),
            spend=Sum("cost_micros"),
        )
        for row in rows:
            s = stats[row["campaign_id"]]
            s[kind] += row["valid"]
            s[f"invalid_{kind}"] += row["invalid"]
            s["spend_micros"] += row["spend"] or 0
    return stats


def stats_rollup_hour(*, hour: datetime) -> int:
    """Roll up the hour starting at `hour` (truncated to the hour). Returns rows written."""
    start = hour.astimezone(timezone.UTC).replace(minute=0, second=0, microsecond=0)
    stats = _aggregate(start, start + timedelta(hours=1))
    with transaction.atomic():
        CampaignStatHourly.objects.filter(hour=start).exclude(campaign_id__in=stats.keys()).delete()
        for campaign_id, values in stats.items():
            CampaignStatHourly.objects.update_or_create(campaign_id=campaign_id, hour=start, defaults=values)
    return len(stats)


def stats_rollup_day(*, day: date) -> int:
    start = datetime.combine(day, time.min, tzinfo=timezone.UTC)
    stats = _aggregate(start, start + timedelta(days=1))
    with transaction.atomic():
        CampaignStatDaily.objects.filter(day=day).exclude(campaign_id__in=stats.keys()).delete()
        for campaign_id, values in stats.items():
            CampaignStatDaily.objects.update_or_create(campaign_id=campaign_id, day=day, defaults=values)
    return len(stats)


def stats_rollup_recent(*, now: datetime | None = None) -> None:
    """The current and previous hour, today and yesterday (late events land in them)."""
    now = now or timezone.now()
    for hours_ago in (1, 0):
        stats_rollup_hour(hour=now - timedelta(hours=hours_ago))
    for days_ago in (1, 0):
        stats_rollup_day(day=(now - timedelta(days=days_ago)).date())
