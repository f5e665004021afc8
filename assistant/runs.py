"""Generation runs: asyncio tasks in the web process that accepted the message.

`run_launch` starts one: it writes the run (services.run_begin), opens its log and
starts its task here, and ends it at once if the log cannot be opened. Following a
run (any socket, any process) is assistant/runfollow.py.

A run belongs to no socket; what it does, from the upstream stream to the saved
message, is assistant/generation.py.

Stop reaches the owner from any process: locally through the registry below, from
another process through a message to the owner's control channel on the channel layer
(its name is part of GenerationRun.owner).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref
from collections.abc import Callable, Sequence

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from assistant import events, lifecycle, metrics, services
from assistant.generation import RunHandle, run_generate
from assistant.runlog import run_log
from assistant.selectors import Owner
from config.logs import request_id_set

logger = logging.getLogger(__name__)


# --- process identity and control channel ---------------------------------------------

_PROCESS_ID = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
_control: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[str, asyncio.Task]] = weakref.WeakKeyDictionary()


async def _process_owner() -> str:
    """This process's owner tag; with a shared channel layer it names the control channel
    (created on first use, with a listener task on this event loop). Its heartbeat runs
    from the first run on (assistant/lifecycle.py: the reaper knows a dead process by its silence)."""
    await lifecycle.heartbeat_start(_PROCESS_ID, owned_runs=runs_owned)
    if not events.channel_layer_is_shared():
        return _PROCESS_ID
    loop = asyncio.get_running_loop()
    entry = _control.get(loop)
    if entry is None or entry[1].done():
        layer = get_channel_layer()
        # The default "specific" prefix: channels_redis receives every process-local channel
        # through one shared list per prefix, so a second prefix would starve the sockets.
        channel = await layer.new_channel()
        task = loop.create_task(_control_listener(layer, channel), name="lhama-run-control")
        entry = (channel, task)
        _control[loop] = entry
    return f"{_PROCESS_ID}|{entry[0]}"


async def _control_listener(layer, channel: str) -> None:
    while True:
        try:
            message = await layer.receive(channel)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep listening; a broken message must not stop all stops
            logger.exception("run control channel")
            await asyncio.sleep(1)
            continue
        if message.get("type") == events.RUN_STOP:
            handle = _local_runs.get(message.get("run_id", ""))
            if handle is not None:
                handle.stop()


# --- the registry of runs owned by this process ------------------------------------------


_local_runs: dict[str, RunHandle] = {}


def runs_owned() -> list[RunHandle]:
    """The runs this process owns now (a drain waits for them)."""
    return list(_local_runs.values())


async def run_launch(
    *,
    owner: Owner,
    user,
    action: str,
    client_id: str,
    conversation_id: str | None,
    tier_slug: str,
    content: str = "",
    message_id: str | None = None,
    admit: Callable[[], bool] | None = None,
    temporary: bool = False,
    project_id: str | None = None,
    attachment_ids: Sequence[str] = (),
) -> services.RunSpec:
    """Start an answer owned by this process (see services.run_begin for `action`).

    Raises services.RunRejected when it cannot start: before anything is written (quota,
    tier, ownership), or when its log cannot be opened (Redis down?); the run just written
    is then ended and its quota given back. So it is too when `admit`, asked once the run is
    written, says no: the session that asked for it ended meanwhile (a logout while the
    run was being written), and nothing new starts for a session that has ended."""
    if lifecycle.draining():
        raise services.RunRejected("draining", "This server is restarting. Reconnecting you…", retryable=True)
    # Not thread-sensitive: concurrent sends each get a pool thread (and connection)
    # instead of queueing on the one thread that serves every socket's ORM calls.
    spec = await database_sync_to_async(services.run_begin, thread_sensitive=False)(
        owner=owner,
        user=user,
        action=action,
        client_id=client_id,
        conversation_id=conversation_id,
        tier_slug=tier_slug,
        content=content,
        message_id=message_id,
        temporary=temporary,
        project_id=project_id,
        attachment_ids=attachment_ids,
        run_owner=await _process_owner(),
    )
    if admit is not None and not admit():
        await database_sync_to_async(services.run_abort)(spec=spec, message=events.NOT_STARTED_MESSAGE)
        raise services.RunRejected("session_ended", events.SESSION_ENDED_MESSAGE)
    try:
        await _run_start(spec)
    except Exception:
        logger.exception("starting run %s failed", spec.run_id)
        await database_sync_to_async(services.run_abort)(spec=spec, message=events.NOT_STARTED_MESSAGE)
        raise services.RunRejected(
            "internal_error", f"{events.NOT_STARTED_MESSAGE} Try again.", retryable=True
        ) from None
    return spec


async def _run_start(spec: services.RunSpec) -> RunHandle:
    """Open the run's log and start its task; returns once the log exists."""
    await run_log().open(spec.run_id)
    handle = RunHandle(spec=spec)
    _local_runs[spec.run_id] = handle
    handle.task = asyncio.get_running_loop().create_task(_run_owned(handle), name=f"lhama-run-{spec.run_id}")
    return handle


async def _run_owned(handle: RunHandle) -> None:
    # Every log line of the run carries its id (config/logs.py); this task's context only.
    request_id_set(handle.spec.run_id)
    metrics.runs_active.inc()
    try:
        await lifecycle.reservation_remember(run_id=handle.spec.run_id, reservation=handle.spec.reservation)
        await run_generate(handle=handle)
    finally:
        _local_runs.pop(handle.spec.run_id, None)
        metrics.runs_active.dec()
        run_log().release(handle.spec.run_id)


async def run_stop(*, run_id: str, owner: str) -> None:
    """Ask the run's owner to stop it, wherever it runs."""
    handle = _local_runs.get(run_id)
    if handle is not None:
        handle.stop()
        return
    if "|" in owner and events.channel_layer_is_shared():
        channel = owner.split("|", 1)[1]
        await events.event_send(events.run_stop_request(run_id=run_id), channel=channel)


# --- the run ---------------------------------------------------------------------------


async def runs_notify_interrupted(*, run_ids: list[str]) -> None:
    """Tell the followers of runs the reaper marked interrupted (shared run logs only; an
    in-process log died with its process)."""
    if not settings.REDIS_URL:
        return
    log = run_log()
    for run_id in run_ids:
        snapshot = await log.snapshot(run_id)
        if snapshot is None or snapshot.ended:
            continue
        await events.event_send(events.error(
            code="interrupted", message=events.INTERRUPTED_MESSAGE, run_id=run_id, retryable=True
        ))
        await events.event_send(events.end(run_id=run_id))
