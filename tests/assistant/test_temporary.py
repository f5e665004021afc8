"""Temporary chats: enforced by the server. Never kept (no rows once the socket closes, and
a sweep for what a crash left), never listed, searched, exported or shared, no title, no
ad request and no ad rows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.models import Conversation, GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.assistant.conftest import chat_requests, is_title_request, open_socket
from tests.assistant.test_ads_in_chat import GPU_QUESTION, gpu_ad  # noqa: F401  (the fixture)
from tests.assistant.test_consumer import send_frame

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]


def temporary_frame(content, client_id="t1") -> dict:
    return {**send_frame(content, client_id=client_id), "temporary": True}


@sync_to_async
def rows() -> tuple[int, int, int]:
    return Conversation.objects.count(), Message.objects.count(), GenerationRun.objects.count()


async def wait_rows_gone(timeout: float = 5.0) -> tuple[int, int, int]:
    deadline = asyncio.get_running_loop().time() + timeout
    while (counts := await rows()) != (0, 0, 0) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return counts


def client_for(session_key: str) -> Client:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


async def test_a_temporary_chat_gets_no_ad_no_ad_rows_and_no_title(upstream, tier, member, sessions, gpu_ad):  # noqa: F811
    from ads.models import Click, Impression

    upstream.default = Script(tokens=["Try", " a", " cloud", " provider", "."])
    socket = await open_socket(sessions["member"])
    await socket.send(temporary_frame(GPU_QUESTION))
    frames = await socket.until("done")
    started = frames[0]
    assert started["temporary"] is True
    # The same question in a kept chat gets the card (the campaign matches): here, nothing.
    assert await socket.nothing(timeout=1.5)
    assert await sync_to_async(Impression.objects.count)() == 0
    assert await sync_to_async(Click.objects.count)() == 0
    await socket.send(send_frame("And for a month?", conversation_id=started["conversation_id"], client_id="t2"))
    await socket.until("done")
    assert await socket.nothing(timeout=1.0)
    assert await sync_to_async(Impression.objects.count)() == 0
    # No title: no title request reached the model server, no title saved or pushed.
    assert not [body for body in upstream.requests if is_title_request(body)]
    conversation = await sync_to_async(Conversation.objects.get)(pk=started["conversation_id"])
    assert (conversation.is_temporary, conversation.title) == (True, "")
    await socket.close()


async def test_a_temporary_chat_is_nowhere_but_its_socket_and_gone_when_it_closes(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(temporary_frame("A secret about pineapples"))
    started = (await socket.until("done"))[0]
    conversation_id = started["conversation_id"]
    # The socket can go on with it: the history is sent.
    await socket.send(send_frame("And more?", conversation_id=conversation_id, client_id="t2"))
    await socket.until("done")
    assert chat_requests(upstream)[-1]["messages"][1:] == [
        {"role": "user", "content": "A secret about pineapples"}, {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "And more?"}]

    client = client_for(sessions["member"])
    home = (await sync_to_async(client.get)(reverse("assistant:home"))).content.decode()
    assert conversation_id not in home and "pineapples" not in home
    listing = (await sync_to_async(client.get)(reverse("assistant:conversation_list"), {"q": "pineapples"}))
    assert "No conversation matches" in listing.content.decode() and conversation_id not in listing.content.decode()
    for name, args in [("conversation", [conversation_id]), ("conversation_export", [conversation_id, "md"]),
                       ("conversation_export", [conversation_id, "json"]), ("conversation_title", [conversation_id])]:
        assert (await sync_to_async(client.get)(reverse(f"assistant:{name}", args=args))).status_code == 404, name
    assert (await sync_to_async(client.post)(
        reverse("assistant:conversation_share", args=[conversation_id]))).status_code == 404
    from accounts.services import user_data_export

    assert "pineapples" not in str(await sync_to_async(user_data_export)(user=member))

    assert await rows() == (1, 4, 2)
    await socket.close()
    assert await wait_rows_gone() == (0, 0, 0)


async def test_closing_the_socket_stops_a_running_temporary_answer_and_keeps_nothing(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(400), interval=0.02)
    socket = await open_socket(sessions["member"])
    await socket.send(temporary_frame("Write a long story"))
    await socket.until("delta")
    await socket.close()
    assert await wait_rows_gone() == (0, 0, 0)
    record = next(r for r in upstream.records if not is_title_request(r.body))
    assert await asyncio.to_thread(upstream.wait_for, lambda: record.disconnected or record.finished, 5)
    assert record.disconnected and record.sent_tokens < 400  # the model server stopped generating
    # The run ended without writing anything back.
    from assistant import runs

    for _ in range(100):
        if not runs._local_runs:
            break
        await asyncio.sleep(0.05)
    assert await rows() == (0, 0, 0)


async def test_a_kept_chat_of_the_same_socket_stays(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(temporary_frame("gone"))
    await socket.until("done")
    await socket.send(send_frame("kept", client_id="k1"))
    kept = (await socket.until("done"))[0]
    assert kept["temporary"] is False
    await socket.close()
    for _ in range(100):
        if await sync_to_async(Conversation.objects.count)() == 1:
            break
        await asyncio.sleep(0.05)
    assert await sync_to_async(list)(Conversation.objects.values_list("pk", flat=True)) == [
        uuid.UUID(kept["conversation_id"])]


async def test_another_person_cannot_use_a_temporary_chat_or_delete_it(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(temporary_frame("mine"))
    started = (await socket.until("done"))[0]
    other = await open_socket(sessions["other"])
    await other.send(send_frame("theirs?", conversation_id=started["conversation_id"], client_id="x1"))
    assert (await other.recv())["code"] == "not_found"
    await other.close()  # closing another person's socket deletes nothing of mine
    assert await sync_to_async(Conversation.objects.filter(pk=started["conversation_id"]).exists)()
    await socket.close()
    assert await wait_rows_gone() == (0, 0, 0)


async def test_temporary_must_be_a_boolean(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send({**send_frame("hi"), "temporary": "yes"})
    error = await socket.recv()
    assert (error["code"], error["client_id"]) == ("invalid_frame", "c1")
    assert await rows() == (0, 0, 0)
    await socket.close()


def test_the_sweep_deletes_temporary_chats_a_crash_left_behind(member, settings):
    from assistant.tasks import temporary_conversations_sweep

    def conversation(*, temporary: bool, age_h: float, running: bool = False) -> Conversation:
        c = Conversation.objects.create(user=member, is_temporary=temporary)
        q = Message.objects.create(conversation=c, role="user", content="q")
        a = Message.objects.create(conversation=c, role="assistant", content="a", parent=q,
                                   status="streaming" if running else "complete")
        GenerationRun.objects.create(conversation=c, user_message=q, assistant_message=a, owner="h:1:x",
                                     heartbeat_at=timezone.now(), status="running" if running else "complete")
        Conversation.objects.filter(pk=c.pk).update(updated_at=timezone.now() - timedelta(hours=age_h))
        return c

    left_behind = conversation(temporary=True, age_h=7)
    fresh = conversation(temporary=True, age_h=1)
    writing = conversation(temporary=True, age_h=7, running=True)
    kept = conversation(temporary=False, age_h=100)
    assert temporary_conversations_sweep() == 1  # the task, run here
    assert set(Conversation.objects.values_list("pk", flat=True)) == {fresh.pk, writing.pk, kept.pk}
    assert not Message.objects.filter(conversation_id=left_behind.pk).exists()
    assert not GenerationRun.objects.filter(conversation_id=left_behind.pk).exists()
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "assistant.temporary_conversations_sweep"]
    assert len(entries) == 1


def test_signing_in_does_not_move_a_guests_temporary_chat_to_the_account(member):
    from assistant.services import conversations_claim_for_user

    kept = Conversation.objects.create(session_key="guest-key")
    temporary = Conversation.objects.create(session_key="guest-key", is_temporary=True)
    assert conversations_claim_for_user(session_key="guest-key", user=member) == 1
    kept.refresh_from_db()
    temporary.refresh_from_db()
    assert (kept.user_id, temporary.user_id, temporary.session_key) == (member.pk, None, "guest-key")
