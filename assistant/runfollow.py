"""Following a run: the frames of one run for one follower, on any web process.

assistant/runs.py is the writing side (the one process that owns a run); this is the
reading side, shared by any number of followers: it reads the run log, and once the log
is gone (expired, or lost with the process that kept it) the saved message stands in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from redis.exceptions import RedisError

from assistant import events, selectors
from assistant.models import GenerationRun
from assistant.runlog import run_log
from assistant.selectors import Owner

logger = logging.getLogger(__name__)

MAX_LOG_RETRIES = 3


async def run_follow(
    *, owner: Owner, run_id: str, conversation_id: str, resync: bool, text_before: str = ""
) -> AsyncIterator[dict]:
    """The frames of a run, until its end.

    With `resync` (a reconnect, another tab, a stop from another socket): first the text
    so far as one `run.resync`, then the final frames it already has, then live frames.
    Without (the socket that started the run): every frame from the first. Ownership is
    the caller's to check. A follower that loses the log for good ends with an error.
    `text_before`: the text a continue run goes on from (its log holds only what follows),
    put in front of the resync's text so that a resync always carries the whole answer.
    """
    log = run_log()
    try:
        position = 0
        if resync:
            snapshot = await log.snapshot(run_id)
            if snapshot is None:
                run = await database_sync_to_async(selectors.run_get_for_owner)(owner=owner, run_id=run_id)
                for frame in _saved_frames(run=run, run_id=run_id):
                    yield frame
                return
            yield events.run_resync(
                run_id=run_id,
                conversation_id=conversation_id,
                seq=snapshot.last_delta_seq,
                text=text_before + snapshot.text,
                status=events.status_of_final(snapshot.last(events.DONE) or snapshot.last(events.ERROR)),
            )
            for event in snapshot.events:
                if event["type"] != events.DELTA and events.is_for_client(event):
                    yield event
            if snapshot.ended:
                return
            position = snapshot.seq
        failures = 0
        while True:
            try:
                async for event in log.follow(run_id, after_seq=position):
                    position = event["seq"]
                    if events.is_for_client(event):
                        yield event
                return
            except (OSError, RedisError) as exc:
                # A blip in the run log's connection (Redis): pick up after the last event.
                failures += 1
                if failures > MAX_LOG_RETRIES:
                    raise
                logger.warning("following run %s: %s; retrying", run_id, exc)
                await asyncio.sleep(0.5 * failures)
    except Exception:
        logger.exception("following run %s failed", run_id)
        yield events.error(code="internal_error", message=events.LOST_TRACK_MESSAGE, run_id=run_id, retryable=True)


def _saved_frames(*, run: GenerationRun | None, run_id: str) -> list[dict]:
    """A run's resync and final frame from the database, for a run whose log is gone:
    the same frames its log would give."""
    if run is None:
        return [events.error(code="not_found", message=events.RUN_NOT_FOUND_MESSAGE, run_id=run_id)]
    message = run.assistant_message
    status = run.status
    if status == GenerationRun.Status.RUNNING:
        # Its log exists while its owner runs it: without one the owner is gone.
        status = GenerationRun.Status.INTERRUPTED
    frames = [events.run_resync(
        run_id=run_id, conversation_id=str(run.conversation_id), seq=run.last_seq, text=message.content, status=status
    )]
    if status in (GenerationRun.Status.COMPLETE, GenerationRun.Status.STOPPED):
        frames.append(events.done(
            run_id=run_id,
            message_id=str(message.pk),
            status=status,
            finish_reason=message.finish_reason,
            prompt_tokens=message.prompt_tokens,
            completion_tokens=message.completion_tokens,
            seq=run.last_seq + 1,
        ))
    else:
        code = run.error_code or ("interrupted" if status == GenerationRun.Status.INTERRUPTED else "upstream_error")
        frames.append(events.error(
            code=code, message=run.error_message or events.INTERRUPTED_MESSAGE, run_id=run_id, retryable=True
        ))
    return frames
