"""Load the demo data: each app's `seed.seed_demo(stdout=...)`, idempotent."""

from __future__ import annotations

import importlib

from django.apps import apps
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load demo data (plans, model tiers, a demo advertiser, a staff user). Safe to run again."

    def handle(self, *args, **options) -> None:
        for config in apps.get_app_configs():
            try:
                module = importlib.import_module(f"{config.name}.seed")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.seed":
                    raise
                continue
            module.seed_demo(stdout=self.stdout)
