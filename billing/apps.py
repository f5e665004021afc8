from celery.schedules import crontab
from django.apps import AppConfig
from django.conf import settings


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # Periodic tasks (django-celery-beat copies these into its tables at start-up).
        settings.CELERY_BEAT_SCHEDULE.update(
            {
                "billing-resync-subscriptions": {
                    "task": "billing.resync_subscriptions",
                    "schedule": crontab(hour=3, minute=17),
                },
                "billing-expire-grace-periods": {
                    "task": "billing.expire_grace_periods",
                    "schedule": crontab(minute="*/15"),
                },
                "billing-report-api-usage": {
                    "task": "billing.report_api_usage",
                    "schedule": crontab(minute="*"),
                },
                "billing-quota-cleanup": {
                    "task": "billing.quota_cleanup",
                    "schedule": crontab(hour=0, minute=37),
                },
            }
        )
