"""This web process's life beyond one run: its heartbeat, and its drain on SIGTERM.

Heartbeat. A process that owns runs writes `process-alive:<its id>` to the cache (Redis in
production) every ASSISTANT_PROCESS_HEARTBEAT_S, with a lifetime of ASSISTANT_PROCESS_STALE_S.
When the process dies without warning (SIGKILL, OOM, a crash) the key expires within
seconds and the reaper (services.runs_reap_orphans, every ASSISTANT_PROCESS_HEARTBEAT_S)
marks the runs it owned interrupted, keeping their partial text and settling their quota;
runs of live processes are never touched. A run's own heartbeat (its snapshots) still
counts too: a live process whose snapshots stall for ASSISTANT_RUN_STALE_S is also reaped.

Drain (docs/deploy.md, "Zero-downtime deploys"). SIGTERM no longer stops Daphne at once:
1. the process refuses new sockets (handshake 403, which nginx retries on another
   process) and new runs;
2. it closes every chat socket with CLOSE_DRAINING (4503): the page reconnects at once,
   lands on another process and resubscribes to its runs, which keep streaming from here
   through the shared run log;
3. it waits up to LHAMA_DRAIN_S for the runs it owns to finish; those still running then
   are ended as interrupted (text saved, "continue" offered);
4. it hands SIGTERM back to Daphne, which exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import weakref
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from assistant import metrics

logger = logging.getLogger(__name__)

CLOSE_DRAINING = 4503  # the socket's process is shutting down: reconnect now, elsewhere

_state: dict = {"draining": False, "installed": False}
_sockets: weakref.WeakSet = weakref.WeakSet()
_heartbeats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = weakref.WeakKeyDictionary()


def draining() -> bool:
    return _state["draining"]


# --- sockets ------------------------------------------------------------------------------


def socket_opened(consumer) -> None:
    """A chat socket was accepted on this process (consumers.ChatConsumer.connect)."""
    _sigterm_install()
    _sockets.add(consumer)
    metrics.sockets_open.inc()


def socket_closed(consumer) -> None:
    if consumer in _sockets:
        _sockets.discard(consumer)
        metrics.sockets_open.dec()


# --- heartbeat ----------------------------------------------------------------------------


def process_key(process_id: str) -> str:
    return f"process-alive:{process_id}"


def processes_alive(process_ids: set[str]) -> set[str]:
    """Which of these processes wrote a heartbeat within ASSISTANT_PROCESS_STALE_S."""
    if not process_ids:
        return set()
    found = cache.get_many([process_key(p) for p in process_ids])
    return {p for p in process_ids if process_key(p) in found}


async def heartbeat_start(process_id: str, *, owned_runs: Callable[[], list]) -> None:
    """Write this process's heartbeat now, and keep writing it from this event loop;
    `owned_runs` lists the runs this process owns (the run registry, assistant.runs)."""
    _state["owned_runs"] = owned_runs
    _sigterm_install()
    loop = asyncio.get_running_loop()
    task = _heartbeats.get(loop)
    if task is not None and not task.done():
        return
    await _beat(process_id)
    _heartbeats[loop] = loop.create_task(_heartbeat_loop(process_id), name="lhama-process-heartbeat")


async def _beat(process_id: str) -> None:
    await sync_to_async(cache.set, thread_sensitive=False)(
        process_key(process_id), 1, timeout=settings.ASSISTANT_PROCESS_STALE_S
    )


async def _heartbeat_loop(process_id: str) -> None:
    while True:
        await asyncio.sleep(settings.ASSISTANT_PROCESS_HEARTBEAT_S)
        try:
            await _beat(process_id)
        except Exception:  # a missed beat is retried at the next tick; the stale time allows two
            logger.exception("process heartbeat failed")


# --- what the reaper needs of a run this process owns ----------------------------------------


def _reservation_key(run_id: str) -> str:
    return f"run-reservation:{run_id}"


async def reservation_remember(*, run_id: str, reservation) -> None:
    """Keep the run's quota reservation where the reaper finds it, should this process die
    (it lives only in this process's memory otherwise); as long as the reservation itself."""
    if reservation is None:
        return
    await sync_to_async(cache.set, thread_sensitive=False)(
        _reservation_key(run_id), reservation, timeout=settings.BILLING_RESERVATION_TTL_S
    )


def reservation_recall(*, run_id: str):
    """The reservation of a run whose process died (None when unknown or expired)."""
    return cache.get(_reservation_key(run_id))


# --- drain --------------------------------------------------------------------------------


def _sigterm_install() -> None:
    """Take SIGTERM over from Daphne's reactor (once per process, from the event loop's
    thread); the drain runs on the loop that last served a socket or a run."""
    loop = asyncio.get_running_loop()
    _state["loop"] = loop
    if _state["installed"]:
        return
    # Daphne's reactor installed its own; None means one set outside Python: the default.
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:
        previous = signal.SIG_DFL

    def on_sigterm(signum, frame) -> None:
        if _state["draining"]:
            return
        _state["draining"] = True
        try:
            target = _state["loop"]
            target.call_soon_threadsafe(lambda: target.create_task(drain(previous), name="lhama-drain"))
        except RuntimeError:  # that loop is closed (a finished test's): nothing to drain, stop as before
            signal.signal(signal.SIGTERM, previous)
            os.kill(os.getpid(), signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
        _state["installed"] = True
    except ValueError:  # not the main thread (a test's event loop in a thread): no drain there
        pass


async def drain(previous=None) -> None:
    """Steps 1–4 above; `previous` is the SIGTERM handler to hand the signal back to."""
    _state["draining"] = True
    owned_runs = _state.get("owned_runs") or list
    owned = owned_runs()
    logger.warning("SIGTERM: draining %d socket(s) and %d run(s), at most %g s",
                   len(_sockets), len(owned), settings.LHAMA_DRAIN_S)
    for consumer in list(_sockets):
        with contextlib.suppress(Exception):  # a socket that is already gone
            await consumer.close(code=CLOSE_DRAINING)
    tasks = {handle.task for handle in owned if handle.task is not None}
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=settings.LHAMA_DRAIN_S)
        metrics.runs_drained.labels(result="complete").inc(len(tasks) - len(pending))
        if pending:
            left = owned_runs()
            logger.warning("drain deadline: %d run(s) saved as interrupted", len(left))
            for handle in left:
                handle.interrupt()
            metrics.runs_drained.labels(result="interrupted").inc(len(pending))
            await asyncio.wait(pending, timeout=15)
    logger.warning("drained; exiting")
    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
        os.kill(os.getpid(), signal.SIGTERM)
