"""Celery tasks of the assistant: thin, idempotent, named, taking ids."""

from __future__ import annotations

import asyncio

from celery import shared_task

# The tasks run their coroutines with asyncio.run, on a loop of their own: async_to_sync
# would hop onto a web process's running loop when a task runs eagerly there, and the
# clean-up below (closing this loop's pooled HTTP and Redis clients) would then close
# the clients that live answers on that loop are streaming through.


async def _title(conversation_id: str) -> None:
    from assistant.inference import aclose_client
    from assistant.titles import title_generate_and_publish

    try:
        await title_generate_and_publish(conversation_id=conversation_id)
    finally:
        await aclose_client()


@shared_task(name="assistant.conversation_title_generate", ignore_result=True)
def conversation_title_generate(conversation_id: str) -> None:
    asyncio.run(_title(conversation_id))


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
        asyncio.run(_notify(run_ids))


@shared_task(name="assistant.attachments_sweep_unsent", ignore_result=True)
def attachments_sweep_unsent() -> int:
    from assistant.attachments import attachments_sweep_unsent as sweep

    return sweep()


@shared_task(name="assistant.temporary_conversations_sweep", ignore_result=True)
def temporary_conversations_sweep() -> int:
    from assistant.temporary import temporary_conversations_sweep as sweep

    return sweep()
