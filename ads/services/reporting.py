"""Roll-ups of the raw events (kept for audit) into hourly and daily stat rows.

What a row counts is ads.selectors.events_counted, the same definition the dashboard
applies to the days it reads live (today and yesterday); a row is recomputed from the
raw events of its period and written with update_or_create, so running a roll-up
twice, or late, gives the same rows. The dashboard reads the roll-up only for days
before the live ones, so how often it runs changes nothing a report shows today.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from ads.models import CampaignStatDaily, CampaignStatHourly
from ads.selectors import LIVE_DAYS, events_counted


def stats_rollup_hour(*, hour: datetime) -> int:
    """Roll up the hour starting at `hour` (truncated to the hour). Returns rows written."""
    start = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    stats = events_counted(start=start, end=start + timedelta(hours=1))
    with transaction.atomic():
        CampaignStatHourly.objects.filter(hour=start).exclude(campaign_id__in=stats.keys()).delete()
        for campaign_id, metrics in stats.items():
            CampaignStatHourly.objects.update_or_create(campaign_id=campaign_id, hour=start, defaults=metrics.as_row())
    return len(stats)


def stats_rollup_day(*, day: date) -> int:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    stats = events_counted(start=start, end=start + timedelta(days=1))
    with transaction.atomic():
        CampaignStatDaily.objects.filter(day=day).exclude(campaign_id__in=stats.keys()).delete()
        for campaign_id, metrics in stats.items():
            CampaignStatDaily.objects.update_or_create(campaign_id=campaign_id, day=day, defaults=metrics.as_row())
    return len(stats)


def stats_rollup_recent(*, now: datetime | None = None) -> None:
    """The current and previous hour, and the live days plus the one before them: a day
    leaving the live window has been rolled up again and again after it ended."""
    now = now or timezone.now()
    for hours_ago in (1, 0):
        stats_rollup_hour(hour=now - timedelta(hours=hours_ago))
    for days_ago in range(LIVE_DAYS, -1, -1):
        stats_rollup_day(day=(now - timedelta(days=days_ago)).date())
