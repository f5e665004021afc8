from datetime import timedelta

from django.apps import AppConfig
from django.conf import settings


class AssistantConfig(AppConfig):
    name = "assistant"

    def ready(self) -> None:
        from assistant import signals  # noqa: F401  (connects the guest-conversation hand-over)

        # Periodic tasks (django-celery-beat copies these into its tables at start-up).
        settings.CELERY_BEAT_SCHEDULE.update(
            {
                # As often as processes beat: a dead owner's runs are interrupted within seconds.
                "assistant-reap-orphaned-runs": {
                    "task": "assistant.runs_reap_orphans",
                    "schedule": timedelta(seconds=settings.ASSISTANT_PROCESS_HEARTBEAT_S),
                },
                "assistant-sweep-unsent-attachments": {
                    "task": "assistant.attachments_sweep_unsent",
                    "schedule": timedelta(hours=1),
                },
                "assistant-sweep-temporary-chats": {
                    "task": "assistant.temporary_conversations_sweep",
                    "schedule": timedelta(minutes=10),
                },
            }
        )
