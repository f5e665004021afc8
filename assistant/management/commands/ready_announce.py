"""`manage.py ready_announce URL`: print that Lhama is ready once URL/readyz says so
(the `ready` process of platform/Procfile.embedded; assistant/warmup.py)."""

import logging

from django.core.management.base import BaseCommand

from assistant.warmup import ready_announce


class Command(BaseCommand):
    help = "Wait for /readyz of the given site to answer 200, say that Lhama is ready, and stay running."

    def add_arguments(self, parser) -> None:
        parser.add_argument("site_url")

    def handle(self, *args, site_url: str, **options) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per poll
        ready_announce(site_url=site_url, out=self.stdout)
