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
