"""python manage.py ads_gate_train: fit the sensitive gate's model on
ads/data/gate_train.jsonl (the training part only) and write ads/data/gate_model.npz.
Needs the development dependencies (scikit-learn): pip install -e '.[dev]'."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ads.sensitive_training import MODEL_PATH, TRAIN_PATH, gate_model_write, gate_train, labelled_load


class Command(BaseCommand):
    help = "Train the sensitive-topic gate's model and choose its threshold by cross-validation."

    def handle(self, *args, **options) -> None:
        try:
            import sklearn  # noqa: F401
        except ImportError as exc:
            raise CommandError("scikit-learn is missing: pip install -c constraints.txt -e '.[dev]'") from exc
        arrays = gate_train(labelled_load(TRAIN_PATH))
        gate_model_write(arrays)
        self.stdout.write(
            f"{MODEL_PATH.name}: {int(arrays['info_train_conversations'])} conversations, "
            f"{int(arrays['info_train_turns'])} turns; threshold {float(arrays['threshold']):.4f}; "
            f"cross-validated recall {float(arrays['info_cv_recall']):.3f}, "
            f"false-positive rate {float(arrays['info_cv_false_positive_rate']):.3f}"
        )
