"""Roll-ups also keep served and viewable impressions and the invalid events by reason.

Rows written before this migration learn them from the raw events they were rolled up
from: served and viewable from the impressions served in the period, the reasons from
the impressions and clicks refused in it (what those rows counted as invalid)."""

import datetime as dt
from collections import Counter

from django.db import migrations, models
from django.db.models import Count, Q


def _backfill(Stat, Impression, Click, period) -> None:
    for row in Stat.objects.iterator():
        start, end = period(row)
        served = Impression.objects.filter(campaign_id=row.campaign_id, served_at__gte=start, served_at__lt=end)
        counts = served.aggregate(served=Count("id"), viewable=Count("id", filter=Q(is_valid=True)))
        reasons: Counter = Counter()
        refused = [
            Impression.objects.filter(
                campaign_id=row.campaign_id, acknowledged_at__gte=start, acknowledged_at__lt=end, is_valid=False
            ),
            Click.objects.filter(
                campaign_id=row.campaign_id, clicked_at__gte=start, clicked_at__lt=end, is_valid=False
            ),
        ]
        for events in refused:
            for item in events.values("invalid_reason").annotate(n=Count("id")):
                reasons[item["invalid_reason"] or "unknown"] += item["n"]
        Stat.objects.filter(pk=row.pk).update(
            served=counts["served"], viewable=counts["viewable"], invalid_by_reason=dict(reasons)
        )


def backfill(apps, schema_editor):
    Impression = apps.get_model("ads", "Impression")
    Click = apps.get_model("ads", "Click")

    def day(row):
        start = dt.datetime.combine(row.day, dt.time.min, tzinfo=dt.UTC)
        return start, start + dt.timedelta(days=1)

    def hour(row):
        return row.hour, row.hour + dt.timedelta(hours=1)

    _backfill(apps.get_model("ads", "CampaignStatDaily"), Impression, Click, day)
    _backfill(apps.get_model("ads", "CampaignStatHourly"), Impression, Click, hour)


class Migration(migrations.Migration):
    dependencies = [("ads", "0002_invalid_traffic")]

    operations = [
        migrations.AddField(
            model_name=model,
            name=name,
            field=field,
        )
        for model in ("campaignstatdaily", "campaignstathourly")
        for name, field in (
            (
                "invalid_by_reason",
                models.JSONField(blank=True, default=dict, help_text="Invalid events per reason."),
            ),
            ("served", models.BigIntegerField(default=0, help_text="Impressions served in the period.")),
            (
                "viewable",
                models.BigIntegerField(default=0, help_text="Of those served in the period, how many became viewable."),
            ),
        )
    ] + [migrations.RunPython(backfill, migrations.RunPython.noop)]
