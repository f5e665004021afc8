"""Celery tasks of the assistant: thin, idempotent, named, taking ids."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from celery import shared_task


@shared_task(name="assistant.conversation_title_generate", ignore_result=True)
def conversation_title_generate(conversation_id: str) -> None:
    from assistant.titles import title_generate_and_publish

    async_to_sync(title_generate_and_publish)(conversation_id=conversation_id)


async def _reap() -> None:
    from assistant.runlog import aclose_redis_client
    from assistant.runs import runs_reap_and_notify

    try:
        await runs_reap_and_notify()
    finally:
        await aclose_redis_client()


@shared_task(name="assistant.runs_reap_orphans", ignore_result=True)
def runs_reap_orphans() -> None:
    async_to_sync(_reap)()
