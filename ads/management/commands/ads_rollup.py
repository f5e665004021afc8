"""python manage.py ads_rollup [--days N]: recompute the daily roll-ups of the last N
days (today included) from the raw events, e.g. after the Celery beat was stopped."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from ads.services.reporting import stats_rollup_day


class Command(BaseCommand):
    help = "Recompute the daily report roll-ups of the last N days from the raw events (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=7, help="how many days back, today included (default 7)")

    def handle(self, *args, **options) -> None:
        today = timezone.now().date()
        for days_ago in range(max(1, options["days"]) - 1, -1, -1):
            day = today - timedelta(days=days_ago)
            rows = stats_rollup_day(day=day)
            self.stdout.write(f"{day}: {rows} campaign row(s)")
