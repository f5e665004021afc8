"""The run lifecycle without a socket: launch a run, follow it, stop it, and read it
back from its log or, once the log is gone, from the saved message."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from assistant import events, runs, services
from assistant.models import Conversation, GenerationRun, Message
from assistant.runfollow import run_follow
from assistant.runlog import RedisRunLog
from assistant.selectors import Owner
from bench.fake_upstream import Script, words
from tests.assistant.conftest import chat_requests, run_log_forget

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]


async def launch(user, content: str = "Say hello") -> services.RunSpec:
    return await runs.run_launch(owner=Owner(user_id=user.pk), user=user, action="send", client_id="c1",
                                 conversation_id=None, tier_slug="llama-3.1-8b", content=content)


async def follow(user, spec: services.RunSpec, *, resync: bool) -> list[dict]:
    return [frame async for frame in run_follow(owner=Owner(user_id=user.pk), run_id=spec.run_id,
                                                conversation_id=spec.conversation_id, resync=resync)]


@sync_to_async
def quota_today(user, plan):
    from billing.entitlements import entitlements_from_plan
    from billing.quotas import quota_usage_today

    return quota_usage_today(subject=f"user:{user.pk}", entitlements=entitlements_from_plan(plan=plan))


async def test_a_launched_run_streams_to_its_follower_and_saves_the_answer(upstream, tier, member):
    spec = await launch(member)
    assert runs._local_runs.get(spec.run_id) is not None  # this process owns it
    frames = await follow(member, spec, resync=False)
    deltas = frames[:-1]
    assert [f["type"] for f in deltas] == ["delta"] * len(deltas)
    assert [f["seq"] for f in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(f["text"] for f in deltas) == "Hello, world!"
    request = chat_requests(upstream)[0]
    expected_prompt = sum(len(m["content"].split()) + 4 for m in request["messages"])
    assert frames[-1] == {
        "type": "done", "run_id": spec.run_id, "seq": len(deltas) + 1, "message_id": spec.assistant_message_id,
        "status": "complete", "finish_reason": "stop",
        "usage": {"prompt_tokens": expected_prompt, "completion_tokens": 4},
    }
    answer = await sync_to_async(Message.objects.get)(pk=spec.assistant_message_id)
    assert (answer.status, answer.content) == ("complete", "Hello, world!")
    run = await sync_to_async(GenerationRun.objects.get)(pk=spec.run_id)
    assert (run.status, run.last_seq) == ("complete", len(deltas))


async def test_a_finished_run_reads_the_same_from_its_log_and_from_the_saved_message(upstream, tier, member):
    spec = await launch(member)
    live = await follow(member, spec, resync=False)
    from_log = await follow(member, spec, resync=True)
    assert from_log == [
        {"type": "run.resync", "run_id": spec.run_id, "conversation_id": spec.conversation_id,
         "seq": live[-2]["seq"], "text": "Hello, world!", "status": "complete"},
        live[-1],
    ]
    await run_log_forget(spec.run_id)
    assert await follow(member, spec, resync=True) == from_log


async def test_a_failed_run_reads_back_as_its_error(upstream, tier, member):
    upstream.default = Script(tokens=words(6), fault="drop_mid", fault_after=3)
    spec = await launch(member)
    live = await follow(member, spec, resync=False)
    assert [f["type"] for f in live][-1] == "error"
    await run_log_forget(spec.run_id)
    resync, error = await follow(member, spec, resync=True)
    assert (resync["type"], resync["text"], resync["status"]) == ("run.resync", "w0 w1 w2 ", "error")
    assert (error["type"], error["code"], error["message"], error["run_id"]) == (
        "error", live[-1]["code"], live[-1]["message"], spec.run_id)


async def test_stop_ends_the_run_with_the_text_so_far(upstream, tier, member):
    upstream.default = Script(tokens=words(400), interval=0.01)
    spec = await launch(member)
    frames = []
    async for frame in run_follow(owner=Owner(user_id=member.pk), run_id=spec.run_id,
                                  conversation_id=spec.conversation_id, resync=False):
        frames.append(frame)
        if len(frames) == 2:
            run = await sync_to_async(GenerationRun.objects.get)(pk=spec.run_id)
            await runs.run_stop(run_id=spec.run_id, owner=run.owner)
    done = frames[-1]
    assert (done["type"], done["status"], done["finish_reason"]) == ("done", "stopped", "stopped")
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert 0 < len(text) < len("".join(words(400)))
    answer = await sync_to_async(Message.objects.get)(pk=spec.assistant_message_id)
    assert (answer.status, answer.content) == ("stopped", text)


@sync_to_async
def orphaned_run(user) -> GenerationRun:
    """A run whose owner died: still `running` in the database, with no log anywhere."""
    conversation = Conversation.objects.create(user=user)
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    answer = Message.objects.create(conversation=conversation, role="assistant", content="partial",
                                    status="streaming", parent=question)
    return GenerationRun.objects.create(conversation=conversation, user_message=question, assistant_message=answer,
                                        owner="dead-host:1:abc", heartbeat_at=timezone.now(), last_seq=4)


async def test_a_running_run_without_a_log_reads_back_as_interrupted(tier, member):
    run = await orphaned_run(member)
    frames = [frame async for frame in run_follow(owner=Owner(user_id=member.pk), run_id=str(run.pk),
                                                  conversation_id=str(run.conversation_id), resync=True)]
    assert frames == [
        {"type": "run.resync", "run_id": str(run.pk), "conversation_id": str(run.conversation_id), "seq": 4,
         "text": "partial", "status": "interrupted"},
        events.error(code="interrupted", message=events.INTERRUPTED_MESSAGE, run_id=str(run.pk), retryable=True),
    ]


async def test_a_run_whose_log_cannot_be_opened_is_ended_and_refused(upstream, tier, member, free_plan,
                                                                     monkeypatch):
    import redis.asyncio as aioredis

    from assistant import runlog

    # Redis is down: the run log's client points at a port nobody listens on.
    dead = aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    monkeypatch.setitem(runlog._redis_clients, asyncio.get_running_loop(), dead)
    monkeypatch.setattr(runs, "run_log", RedisRunLog)
    with pytest.raises(services.RunRejected) as rejected:
        await launch(member)
    assert (rejected.value.code, rejected.value.retryable) == ("internal_error", True)
    run = await sync_to_async(GenerationRun.objects.select_related("assistant_message").get)()
    assert (run.status, run.error_code, run.error_message) == ("error", "internal_error", events.NOT_STARTED_MESSAGE)
    assert run.assistant_message.status == "error"
    assert runs._local_runs == {}
    assert upstream.requests == []
    usage = await quota_today(member, free_plan)
    assert (usage.tokens_reserved, usage.active_runs) == (0, 0)
    await dead.aclose()
