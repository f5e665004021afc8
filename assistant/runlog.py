"""Run logs: the ordered events of one generation run, each with a sequence number.

The owning process appends; any number of sockets follow. With REDIS_URL the log is a
Redis Stream whose entry ids are `0-<seq>` (so "after seq N" is just XREAD from 0-N
and every web process can resync and follow); without Redis it lives in this process.

The events are the frames of assistant/events.py (delta, done, error, ad), then `end`
(nothing follows it); the log adds each one's "seq". It stores them and knows only
which type ends a log and which carry text.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from django.conf import settings

TERMINAL = frozenset({"end"})  # events.END (events publishes into this module, so it cannot import it)
LIVE_TTL_S = 24 * 3600
FINISHED_TTL_S = 3600
FOLLOW_POLL_S = 15.0


@dataclass
class Snapshot:
    events: list[dict]

    @property
    def seq(self) -> int:
        return self.events[-1]["seq"] if self.events else 0

    @property
    def last_delta_seq(self) -> int:
        return next((e["seq"] for e in reversed(self.events) if e["type"] == "delta"), 0)

    @property
    def text(self) -> str:
        return "".join(e["text"] for e in self.events if e["type"] == "delta")

    @property
    def ended(self) -> bool:
        return any(e["type"] in TERMINAL for e in self.events)

    def last(self, event_type: str) -> dict | None:
        for event in reversed(self.events):
            if event["type"] == event_type:
                return event
        return None


class RunLog:
    async def open(self, run_id: str) -> None:  # pragma: no cover - interface
        """Create the (empty) log before the run starts, so followers can wait on it."""
        raise NotImplementedError

    async def append(self, run_id: str, event: dict) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    async def snapshot(self, run_id: str) -> Snapshot | None:  # pragma: no cover - interface
        raise NotImplementedError

    def follow(self, run_id: str, *, after_seq: int) -> AsyncIterator[dict]:  # pragma: no cover - interface
        raise NotImplementedError


# --- in-process ---------------------------------------------------------------------


@dataclass
class _Log:
    events: list[dict] = field(default_factory=list)
    waiters: set[asyncio.Future] = field(default_factory=set)


class InProcessRunLog(RunLog):
    """The embedded default: one process owns and serves its runs."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}

    async def open(self, run_id: str) -> None:
        self._logs.setdefault(run_id, _Log())

    async def append(self, run_id: str, event: dict) -> int:
        log = self._logs.setdefault(run_id, _Log())
        seq = len(log.events) + 1
        log.events.append({**event, "seq": seq})
        waiters, log.waiters = log.waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if event["type"] in TERMINAL:
            asyncio.get_running_loop().call_later(FINISHED_TTL_S, self._logs.pop, run_id, None)
        return seq

    async def snapshot(self, run_id: str) -> Snapshot | None:
        log = self._logs.get(run_id)
        return Snapshot(list(log.events)) if log is not None else None

    async def follow(self, run_id: str, *, after_seq: int) -> AsyncIterator[dict]:
        position = after_seq
        while True:
            log = self._logs.get(run_id)
            if log is None:
                return
            for event in log.events[position:]:
                position = event["seq"]
                yield event
                if event["type"] in TERMINAL:
                    return
            waiter = asyncio.get_running_loop().create_future()
            log.waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, FOLLOW_POLL_S)
            except TimeoutError:
                pass
            finally:
                log.waiters.discard(waiter)


# --- redis streams ----------------------------------------------------------------------

_redis_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_client():
    """One asyncio Redis client per event loop."""
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        # Reads may block for FOLLOW_POLL_S (XREAD BLOCK): the socket timeout must be longer
        # than that (redis-py's default of 5 s would cut every quiet follower off).
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, health_check_interval=30, socket_timeout=FOLLOW_POLL_S + 15, socket_connect_timeout=5
        )
        _redis_clients[loop] = client
    return client


def _key(run_id: str) -> str:
    return f"{settings.REDIS_PREFIX}:runlog:{run_id}"


def _decode(entry_id, fields) -> dict:
    event = json.loads(fields[b"e"])
    event["seq"] = int(entry_id.split(b"-")[1])
    return event


class RedisRunLog(RunLog):
    """Redis Streams: entry id 0-<seq>. One writer per run (its owner, or the reaper once
    the owner is dead), so the writer knows the next seq."""

    def __init__(self) -> None:
        self._next_seq: dict[str, int] = {}

    async def _last_seq(self, client, key: str) -> int:
        last = await client.xrevrange(key, count=1)
        return int(last[0][0].split(b"-")[1]) if last else 0

    async def open(self, run_id: str) -> None:
        client = redis_client()
        key = _key(run_id)
        async with client.pipeline(transaction=False) as pipe:
            # An empty stream: followers can block on it before the first event (a
            # consumer group is the one way to create a stream with no entry in it).
            pipe.xgroup_create(key, settings.REDIS_PREFIX, id="$", mkstream=True)
            pipe.expire(key, LIVE_TTL_S)
            await pipe.execute()
        self._next_seq[run_id] = 1

    async def append(self, run_id: str, event: dict) -> int:
        client = redis_client()
        key = _key(run_id)
        seq = self._next_seq.get(run_id)
        if seq is None:
            seq = await self._last_seq(client, key) + 1
        payload = json.dumps({k: v for k, v in event.items() if k != "seq"}, separators=(",", ":"))
        async with client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": payload}, id=f"0-{seq}")
            pipe.expire(key, FINISHED_TTL_S if event["type"] in TERMINAL else LIVE_TTL_S)
            await pipe.execute()
        if event["type"] in TERMINAL:
            self._next_seq.pop(run_id, None)
        else:
            self._next_seq[run_id] = seq + 1
        return seq

    async def snapshot(self, run_id: str) -> Snapshot | None:
        client = redis_client()
        entries = await client.xrange(_key(run_id))
        if not entries:
            return Snapshot([]) if await client.exists(_key(run_id)) else None
        return Snapshot([_decode(entry_id, fields) for entry_id, fields in entries])

    async def follow(self, run_id: str, *, after_seq: int) -> AsyncIterator[dict]:
        client = redis_client()
        key = _key(run_id)
        position = after_seq
        while True:
            result = await client.xread({key: f"0-{position}"}, block=int(FOLLOW_POLL_S * 1000), count=500)
            if not result:
                if not await client.exists(key):
                    return
                continue
            for entry_id, fields in result[0][1]:
                event = _decode(entry_id, fields)
                position = event["seq"]
                yield event
                if event["type"] in TERMINAL:
                    return


_in_process = InProcessRunLog()
_redis_log: RedisRunLog | None = None


def run_log() -> RunLog:
    global _redis_log
    if settings.REDIS_URL:
        if _redis_log is None:
            _redis_log = RedisRunLog()
        return _redis_log
    return _in_process


async def aclose_redis_client() -> None:
    """Close this event loop's Redis client (for short-lived loops, e.g. in a Celery task)."""
    client = _redis_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()
