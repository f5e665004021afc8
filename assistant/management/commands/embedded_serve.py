"""`manage.py embedded_serve`: the embedded llama.cpp server, warmed up before Lhama
calls it ready (assistant/warmup.py)."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from assistant.embedded_server import environment_argv
from assistant.warmup import embedded_serve


class Command(BaseCommand):
    help = "Start the embedded llama.cpp server, warm it up, and mark it ready for /readyz."

    def handle(self, *args, **options) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per poll
        code = embedded_serve(
            argv=environment_argv(), base_url=settings.LLM_EMBEDDED_URL, model=settings.LLM_EMBEDDED_ALIAS,
            out=self.stdout,
        )
        if code:
            raise SystemExit(code)
