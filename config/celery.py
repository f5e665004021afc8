import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lhama")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task failures counted for /metrics (config/metrics.py).
from config.metrics import celery_metrics_connect  # noqa: E402

celery_metrics_connect()
