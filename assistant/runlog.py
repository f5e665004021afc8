"""Run logs: the ordered events of one generation run, each with a sequence number.

The owning process appends; any number of sockets follow. The events are the frames of
assistant/events.py (delta, done, error, ad), then `end` (nothing follows it); the log
adds each one's "seq". It stores them and knows only which type ends a log and which
carry text.

Without Redis the log lives in this process (`InProcessRunLog`).

With REDIS_URL (`RedisRunLog`) the log is a Redis Stream whose entry ids are `0-<seq>`,
so "after seq N" is XREAD from 0-N and every web process can resync and follow. Redis is
there for the other processes and for durability, not for the owner's own followers:

- The owner keeps its runs' events in memory too (`_Log`), and followers in this process
  read them from there the moment they are appended, without a round trip.
- Its appends go to Redis through one writer task per process (per event loop): every
  event queued since the last write goes out in one pipeline, in order. `end` waits
  until the whole log is in Redis, so a finished run is durable before its task ends.
- Followers of runs owned elsewhere share one reader task per process: one XREAD over
  every followed stream (plus this process's wake-up stream, which a new follower pokes
  so that its stream joins the next read), instead of one blocking connection each.
- The connections come from one bounded pool per process (REDIS_MAX_CONNECTIONS): a
  command that finds them all busy waits for one (up to REDIS_POOL_TIMEOUT_S) instead of
  failing with "Too many connections", which lost every answer at 90 chats and more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from django.conf import settings
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"end"})  # events.END (events publishes into this module, so it cannot import it)
LIVE_TTL_S = 24 * 3600
FINISHED_TTL_S = 3600
FOLLOW_POLL_S = 15.0
# One process's Redis connections for run logs: the writer, the reader (one blocking
# XREAD), opens, snapshots and the occasional reaper write. Sixteen is several times what
# 200 concurrent chats were measured to use at once (docs/performance.md).
REDIS_MAX_CONNECTIONS = 16
REDIS_POOL_TIMEOUT_S = 20.0
# A batch that Redis refuses is retried with a growing pause for this long, then dropped
# (logged): followers in this process already have its events, the saved message has
# the text, and other processes fall back to it once the stream is gone.
WRITE_RETRY_S = 30.0
READ_RETRIES = 3


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

    def release(self, run_id: str) -> None:
        """The owner's task is over (ended, or cancelled by a shutdown): this process
        writes nothing more to the log."""


# --- a log in memory (the embedded default, and the owner's copy with Redis) --------------


@dataclass
class _Log:
    events: list[dict] = field(default_factory=list)
    waiters: set[asyncio.Future] = field(default_factory=set)
    owned: bool = True  # this process still writes it
    flushed_seq: int = 0  # with Redis: the last seq Redis has
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # with Redis: dropped, Redis has it all

    @property
    def seq(self) -> int:
        return len(self.events)

    def add(self, event: dict) -> dict:
        stored = {**event, "seq": len(self.events) + 1}
        self.events.append(stored)
        self.wake()
        return stored

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, FOLLOW_POLL_S)
        except TimeoutError:
            pass
        finally:
            self.waiters.discard(waiter)

    async def follow(self, position: int) -> AsyncIterator[dict]:
        """Its events after `position` as they come, until the end or until the owner
        releases it without one (then the caller decides where to read on)."""
        while True:
            for event in self.events[position:]:
                position = event["seq"]
                yield event
                if event["type"] in TERMINAL:
                    return
            if not self.owned:
                return
            await self.wait()


class InProcessRunLog(RunLog):
    """The embedded default: one process owns and serves its runs."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}

    async def open(self, run_id: str) -> None:
        self._logs.setdefault(run_id, _Log())

    async def append(self, run_id: str, event: dict) -> int:
        log = self._logs.setdefault(run_id, _Log())
        seq = log.add(event)["seq"]
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
            # Woken by the next append; the poll notices a log dropped meanwhile.
            await log.wait()


# --- redis streams ----------------------------------------------------------------------

_redis_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_client():
    """One asyncio Redis client per event loop, on a bounded pool that makes a command
    wait for a free connection instead of failing."""
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        # Reads may block for FOLLOW_POLL_S (XREAD BLOCK): the socket timeout must be longer
        # than that (redis-py's default of 5 s would cut the quiet reader off).
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=REDIS_POOL_TIMEOUT_S,
            health_check_interval=30,
            socket_timeout=FOLLOW_POLL_S + 15,
            socket_connect_timeout=5,
        )
        client = aioredis.Redis(connection_pool=pool)
        _redis_clients[loop] = client
    return client


def _key(run_id: str) -> str:
    return f"{settings.REDIS_PREFIX}:runlog:{run_id}"


def _decode(entry_id, fields) -> dict:
    event = json.loads(fields[b"e"])
    event["seq"] = int(entry_id.split(b"-")[1])
    return event


def _encode(event: dict) -> str:
    return json.dumps({k: v for k, v in event.items() if k != "seq"}, separators=(",", ":"))


@dataclass
class _Write:
    key: str
    seq: int
    payload: str
    ttl_s: int | None  # set the key's TTL with this entry (the first and the last)
    log: _Log | None
    done: asyncio.Future | None = None


@dataclass
class _Remote:
    """A follower in this process of a run written by another one."""

    key: str
    position: int
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


class _LoopState:
    """This event loop's share of the Redis run logs: the logs it writes, the writer, the
    reader and its followers."""

    def __init__(self) -> None:
        self.local: dict[str, _Log] = {}  # by stream key: runs this process writes, until Redis has them
        self.pending: list[_Write] = []
        self.pending_event = asyncio.Event()
        self.writer: asyncio.Task | None = None
        self.remote: dict[str, list[_Remote]] = {}  # by stream key
        self.reader: asyncio.Task | None = None
        self.wake_key = f"{settings.REDIS_PREFIX}:runlog-wake:{uuid.uuid4().hex}"
        self.wake_id = "$"
        self.wake_sent = False

    # --- writing ------------------------------------------------------------------

    def queue(self, write: _Write) -> None:
        self.pending.append(write)
        self.pending_event.set()
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write_loop(), name="lhama-runlog-writer")

    async def _write_loop(self) -> None:
        while True:
            await self.pending_event.wait()
            self.pending_event.clear()
            batch, self.pending = self.pending, []
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[_Write]) -> None:
        client = redis_client()
        delay, waited = 0.1, 0.0
        while True:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for write in batch:
                        pipe.xadd(write.key, {"e": write.payload}, id=f"0-{write.seq}")
                        if write.ttl_s is not None:
                            pipe.expire(write.key, write.ttl_s)
                    results = await pipe.execute(raise_on_error=False)
                break
            except (RedisError, OSError) as exc:
                if waited >= WRITE_RETRY_S:
                    logger.error("run log: dropping %d events Redis would not take: %s", len(batch), exc)
                    self._written(batch, error=exc)
                    return
                logger.warning("run log: writing %d events failed (%s); retrying", len(batch), exc)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 2.0)
        for result in results:
            # An entry a failed earlier attempt did write is refused as "equal or smaller".
            if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
                logger.error("run log: Redis refused an event: %s", result)
        self._written(batch)

    def _written(self, batch: list[_Write], *, error: BaseException | None = None) -> None:
        for write in batch:
            log = write.log
            if log is not None:
                log.flushed_seq = max(log.flushed_seq, write.seq)
                if not log.owned and log.flushed_seq >= log.seq and self.local.get(write.key) is log:
                    del self.local[write.key]
                    log.gone.set()
            if write.done is not None and not write.done.done():
                if error is None:
                    write.done.set_result(None)
                else:
                    write.done.set_exception(error)

    def release(self, key: str) -> None:
        log = self.local.get(key)
        if log is None or not log.owned:
            return
        log.owned = False
        log.wake()
        if log.flushed_seq >= log.seq:
            del self.local[key]
            log.gone.set()

    # --- reading others' runs ------------------------------------------------------

    async def follow_remote(self, key: str, position: int) -> AsyncIterator[dict]:
        follower = _Remote(key=key, position=position)
        self.remote.setdefault(key, []).append(follower)
        try:
            if self.reader is None or self.reader.done():
                self.reader = asyncio.get_running_loop().create_task(self._read_loop(), name="lhama-runlog-reader")
            elif not self.wake_sent:  # one wake-up for every follower that joins before the next read
                self.wake_sent = True
                await self._wake_reader()
            while True:
                item = await follower.queue.get()
                if item is None:  # the stream is gone
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item["type"] in TERMINAL:
                    return
        finally:
            followers = self.remote.get(key, [])
            if follower in followers:
                followers.remove(follower)
            if not followers:
                self.remote.pop(key, None)

    async def _wake_reader(self) -> None:
        async with redis_client().pipeline(transaction=False) as pipe:
            pipe.xadd(self.wake_key, {"w": "1"}, maxlen=16, approximate=True)
            pipe.expire(self.wake_key, 3600)
            await pipe.execute()

    async def _read_loop(self) -> None:
        client = redis_client()
        failures = 0
        while self.remote:
            self.wake_sent = False  # a follower that joins from here on is not in this read: it wakes it
            streams = {self.wake_key: self.wake_id}
            for key, followers in self.remote.items():
                streams[key] = f"0-{min(f.position for f in followers)}"
            try:
                result = await client.xread(streams, block=int(FOLLOW_POLL_S * 1000), count=500)
                if not result:
                    await self._drop_gone(client)
                failures = 0
            except (RedisError, OSError) as exc:
                failures += 1
                if failures > READ_RETRIES:
                    # Each follower's caller decides whether to follow again (runfollow does).
                    for followers in list(self.remote.values()):
                        for follower in followers:
                            follower.queue.put_nowait(exc)
                    return
                logger.warning("run log reader: %s; retrying", exc)
                await asyncio.sleep(0.5 * failures)
                continue
            for raw_key, entries in result or ():
                key = raw_key.decode()
                if key == self.wake_key:
                    self.wake_id = entries[-1][0].decode()
                    continue
                for entry_id, fields in entries:
                    event = _decode(entry_id, fields)
                    for follower in self.remote.get(key, ()):
                        if event["seq"] > follower.position:
                            follower.position = event["seq"]
                            follower.queue.put_nowait(event)

    async def _drop_gone(self, client) -> None:
        keys = list(self.remote)
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            exists = await pipe.execute()
        for key, present in zip(keys, exists, strict=True):
            if not present:
                for follower in self.remote.pop(key, []):
                    follower.queue.put_nowait(None)

    async def aclose(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            await self._write(batch)
        for task in (self.writer, self.reader):
            if task is not None:
                task.cancel()


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()


def _state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _states.get(loop)
    if state is None:
        state = _states[loop] = _LoopState()
    return state


class RedisRunLog(RunLog):
    """Redis Streams: entry id 0-<seq>. One writer per run (its owner, or the reaper once
    the owner is dead), so the writer knows the next seq. The state lives per event loop
    (module level), not in the instance."""

    async def open(self, run_id: str) -> None:
        key = _key(run_id)
        async with redis_client().pipeline(transaction=False) as pipe:
            # An empty stream: followers can block on it before the first event (a
            # consumer group is the one way to create a stream with no entry in it).
            pipe.xgroup_create(key, settings.REDIS_PREFIX, id="$", mkstream=True)
            pipe.expire(key, LIVE_TTL_S)
            await pipe.execute()
        _state().local[key] = _Log()

    async def append(self, run_id: str, event: dict) -> int:
        state = _state()
        key = _key(run_id)
        log = state.local.get(key)
        terminal = event["type"] in TERMINAL
        if log is None or not log.owned:
            return await self._append_direct(key, event)
        stored = log.add(event)
        done = asyncio.get_running_loop().create_future() if terminal else None
        state.queue(_Write(key=key, seq=stored["seq"], payload=_encode(event),
                           ttl_s=FINISHED_TTL_S if terminal else None, log=log, done=done))
        if done is not None:
            log.owned = False  # nothing follows the end
            await done  # the finished run is in Redis before its task ends
        return stored["seq"]

    async def _append_direct(self, key: str, event: dict) -> int:
        """A write to a log this process does not own (the reaper's, for a dead owner)."""
        client = redis_client()
        last = await client.xrevrange(key, count=1)
        seq = (int(last[0][0].split(b"-")[1]) if last else 0) + 1
        async with client.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": _encode(event)}, id=f"0-{seq}")
            pipe.expire(key, FINISHED_TTL_S if event["type"] in TERMINAL else LIVE_TTL_S)
            await pipe.execute()
        return seq

    async def snapshot(self, run_id: str) -> Snapshot | None:
        key = _key(run_id)
        log = _state().local.get(key)
        if log is not None:
            return Snapshot(list(log.events))
        client = redis_client()
        entries = await client.xrange(key)
        if not entries:
            return Snapshot([]) if await client.exists(key) else None
        return Snapshot([_decode(entry_id, fields) for entry_id, fields in entries])

    async def follow(self, run_id: str, *, after_seq: int) -> AsyncIterator[dict]:
        state = _state()
        key = _key(run_id)
        position = after_seq
        log = state.local.get(key)
        if log is not None:
            async with aclosing(log.follow(position)) as local:
                async for event in local:
                    position = event["seq"]
                    yield event
                    if event["type"] in TERMINAL:
                        return
            # Released without its end (its task was cancelled): read on from Redis once
            # it has every event this process wrote.
            await log.gone.wait()
        async with aclosing(state.follow_remote(key, position)) as remote:
            async for event in remote:
                yield event

    def release(self, run_id: str) -> None:
        state = _states.get(asyncio.get_running_loop())
        if state is not None:
            state.release(_key(run_id))


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
    """Write what is queued, then close this event loop's Redis client and stop its
    writer and reader (for short-lived loops, e.g. in a Celery task)."""
    loop = asyncio.get_running_loop()
    state = _states.pop(loop, None)
    if state is not None:
        await state.aclose()
    client = _redis_clients.pop(loop, None)
    if client is not None:
        await client.aclose()
