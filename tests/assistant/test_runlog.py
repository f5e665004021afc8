"""Run logs in Redis: one REDIS_PREFIX namespaces everything Lhama keeps there."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from assistant.runlog import RedisRunLog, aclose_redis_client

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL"),
]


def test_one_prefix_serves_the_channel_layer_the_cache_and_the_run_log(settings):
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == settings.REDIS_PREFIX
    assert settings.CACHES["default"]["KEY_PREFIX"] == settings.REDIS_PREFIX


async def test_two_prefixes_do_not_see_each_others_run_logs(settings):
    """Two deployments sharing one Redis, each with its own REDIS_PREFIX."""
    run_id = str(uuid.uuid4())
    try:
        settings.REDIS_PREFIX = "lhama-one"
        one = RedisRunLog()
        await one.open(run_id)
        assert await one.append(run_id, {"type": "delta", "text": "first deployment"}) == 1

        settings.REDIS_PREFIX = "lhama-two"
        two = RedisRunLog()
        assert await two.snapshot(run_id) is None  # the same run id, nothing of the other's
        await two.open(run_id)
        assert await two.append(run_id, {"type": "delta", "text": "second deployment"}) == 1
        assert await two.append(run_id, {"type": "end"}) == 2
        assert [e["type"] for e in (await two.snapshot(run_id)).events] == ["delta", "end"]

        settings.REDIS_PREFIX = "lhama-one"
        snapshot = await one.snapshot(run_id)
        assert (snapshot.text, snapshot.seq, snapshot.ended) == ("first deployment", 1, False)
        followed = []
        await one.append(run_id, {"type": "end"})
        async for event in one.follow(run_id, after_seq=0):
            followed.append(event["type"])
        assert followed == ["delta", "end"]
    finally:
        await aclose_redis_client()


async def test_two_prefixes_do_not_see_each_others_conversation_events(settings):
    """The conversation group's name carries no prefix of its own: the channel layer's
    prefix (REDIS_PREFIX) keeps two deployments' groups apart."""
    from channels_redis.core import RedisChannelLayer

    from assistant import events

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    one = RedisChannelLayer(hosts=config["hosts"], prefix="lhama-one")
    two = RedisChannelLayer(hosts=config["hosts"], prefix="lhama-two")
    group = events.conversation_group(uuid.uuid4())
    try:
        channel_one, channel_two = await one.new_channel(), await two.new_channel()
        await one.group_add(group, channel_one)
        await two.group_add(group, channel_two)
        title = events.title(conversation_id="c", title="For the first deployment")
        await one.group_send(group, {"type": events.CONVERSATION_EVENT, "event": title})
        assert (await one.receive(channel_one))["event"] == title
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await two.receive(channel_two)
    finally:
        await one.flush()
        await two.flush()


async def test_followers_of_runs_written_elsewhere_share_one_reader_and_few_connections():
    """Forty sockets following forty runs another process writes: one XREAD serves them all
    (it used to be one blocking connection per follower, and the pool ran dry at 100)."""
    from assistant import runlog

    log = RedisRunLog()
    run_ids = [str(uuid.uuid4()) for _ in range(40)]
    try:
        client = runlog.redis_client()
        for run_id in run_ids:  # created by "the other process": nothing of them is local here
            await client.xgroup_create(runlog._key(run_id), "g", id="$", mkstream=True)

        async def follow(run_id: str) -> list[str]:
            return [event["text"] async for event in log.follow(run_id, after_seq=0) if event["type"] == "delta"]

        followers = [asyncio.ensure_future(follow(run_id)) for run_id in run_ids]
        state = runlog._state()
        async with asyncio.timeout(10):
            while sum(len(f) for f in state.remote.values()) < len(run_ids):
                await asyncio.sleep(0.01)
        for run_id in run_ids:  # the other process writes: one delta, then the end
            await log._append_direct(runlog._key(run_id), {"type": "delta", "text": run_id})
            await log._append_direct(runlog._key(run_id), {"type": "end"})
        async with asyncio.timeout(20):
            texts = await asyncio.gather(*followers)
        assert texts == [[run_id] for run_id in run_ids]
        assert state.remote == {}
        pool = client.connection_pool
        made = len(pool._available_connections) + len(pool._in_use_connections)
        assert made <= 4  # the reader, and a few for the writes and wake-ups (not one per follower)
    finally:
        await aclose_redis_client()


async def test_a_local_follower_gets_each_event_before_redis_has_it():
    """The owner's own followers read its events in memory: with the writer held back, a
    follower still gets the delta while Redis has nothing of it; `end` returns only once
    Redis has the whole log."""
    from assistant import runlog

    log = RedisRunLog()
    run_id = str(uuid.uuid4())
    key = runlog._key(run_id)
    try:
        await log.open(run_id)
        state = runlog._state()
        writer_may_go = asyncio.Event()
        write = state._write

        async def held_write(batch):
            await writer_may_go.wait()
            await write(batch)

        state._write = held_write
        follower = log.follow(run_id, after_seq=0)
        assert await log.append(run_id, {"type": "delta", "text": "at once"}) == 1
        event = await asyncio.wait_for(anext(follower), 5)
        assert (event["text"], event["seq"]) == ("at once", 1)
        assert await runlog.redis_client().xlen(key) == 0  # Redis has nothing yet
        writer_may_go.set()
        assert await log.append(run_id, {"type": "end"}) == 2
        assert await runlog.redis_client().xlen(key) == 2  # written by the time `end` returns
        assert [e["type"] for e in (await RedisRunLog().snapshot(run_id)).events] == ["delta", "end"]
        assert key not in state.local  # the owner's copy is dropped once Redis has it all
        assert (await anext(follower))["type"] == "end"
        await follower.aclose()
    finally:
        await aclose_redis_client()
