"""Celery tasks of the assistant: thin, idempotent, named, taking ids."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from celery import shared_task


@shared_task(name="assistant.conversation_title_generate", ignore_result=True)
def conversation_title_generate(conversation_id: str) -> None:
    from assistant.titles import title_generate_and_publish

    async_to_sync(title_generate_and_publish)(conversation_id=conversation_id)


async def _notify(run_ids: list[str]) -> None:
    from assistant.runlog import aclose_redis_client
    from assistant.runs import runs_notify_interrupted

    try:
        await runs_notify_interrupted(run_ids=run_ids)
    finally:
        await aclose_redis_client()


@shared_task(name="assistant.runs_reap_orphans", ignore_result=True)
def runs_reap_orphans() -> None:
    from assistant.services import runs_reap_orphans as reap

    run_ids = reap()
    if run_ids:
        async_to_sync(_notify)(run_ids)
