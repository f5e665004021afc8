"""python manage.py ads_gate_split [--add FILE.jsonl]: re-split the sensitive-gate
labelled set (the union of ads/data/gate_train.jsonl and
tests/ads/data/gate_heldout.jsonl, plus any new conversations from FILE) into its
training and held-out parts, deterministically (ads.sensitive_training.labelled_split)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ads.sensitive_training import (
    HELDOUT_PATH,
    TRAIN_PATH,
    LabelledSetError,
    labelled_load,
    labelled_split,
    labelled_write,
)


class Command(BaseCommand):
    help = "Split the sensitive-gate labelled conversations into training and held-out parts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--add", type=Path, default=None, help="a JSON Lines file of new labelled conversations")

    def handle(self, *args, **options) -> None:
        try:
            items = labelled_load(TRAIN_PATH) + labelled_load(HELDOUT_PATH)
            if options["add"]:
                items += labelled_load(options["add"])
            train, heldout = labelled_split(items)
        except (LabelledSetError, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        labelled_write(TRAIN_PATH, train)
        labelled_write(HELDOUT_PATH, heldout)
        self.stdout.write(f"{len(train)} training and {len(heldout)} held-out conversations written.")
