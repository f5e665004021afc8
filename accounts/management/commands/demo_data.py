"""Load the demo data: each app's `seed.seed_demo(stdout=...)`, idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from config.appmodules import app_modules


class Command(BaseCommand):
    help = "Load demo data (plans, model tiers, a demo advertiser, a staff user). Safe to run again."

    def handle(self, *args, **options) -> None:
        for _label, module in app_modules("seed"):
            module.seed_demo(stdout=self.stdout)
