"""python manage.py ads_import FILE.json [--auto-approve]: load advertisers, campaigns
and creatives (format: docs/ads.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ads.services.importing import ImportInvalid, ads_import_file


class Command(BaseCommand):
    help = "Import advertisers, campaigns and creatives from a JSON file (format in docs/ads.md)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the JSON file")
        parser.add_argument(
            "--auto-approve",
            action="store_true",
            help="approve creatives that pass the automatic checks (demo data; normally staff review them)",
        )

    def handle(self, *args, **options) -> None:
        try:
            report = ads_import_file(path=options["file"], auto_approve=options["auto_approve"])
        except ImportInvalid as exc:
            raise CommandError("Nothing was imported:\n  " + "\n  ".join(exc.errors)) from exc
        self.stdout.write(self.style.SUCCESS(f"Imported {options['file']}: {report.summary()}"))
