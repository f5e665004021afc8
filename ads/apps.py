from django.apps import AppConfig
from django.conf import settings


class AdsConfig(AppConfig):
    name = "ads"
    verbose_name = "Ads"

    def ready(self) -> None:
        # Periodic tasks (django-celery-beat copies these into its tables at start).
        settings.CELERY_BEAT_SCHEDULE.setdefault("ads-stats-rollup", {"task": "ads.stats_rollup", "schedule": 300.0})
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "ads-campaigns-resume-funded", {"task": "ads.campaigns_resume_funded", "schedule": 120.0}
        )
