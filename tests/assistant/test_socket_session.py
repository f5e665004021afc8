"""A chat socket speaks for its session only while that session stands (issue 9).

Logout, a password change and the deletion of the account close the person's sockets
whose session has ended, at once, with 4001 (the channel layer carries the news: the
in-process layer and Redis both); a socket also re-reads its session on frames. Runs
already started finish and are saved; nothing new starts."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.services import user_delete
from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.assistant.conftest import guest_session, login_session, open_socket
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

SESSION_ENDED = 4001


@pytest.fixture(params=["in-process", "redis"])
def channel_layer(request, settings):
    """The news travels through the in-process layer, and through Redis when REDIS_URL is set."""
    if request.param == "in-process":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    elif not django_settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    else:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [django_settings.REDIS_URL], "prefix": f"{django_settings.REDIS_PREFIX}:test"},
            }
        }
    return request.param


async def signed_in(user) -> str:
    """A new session of `user` (another browser, another device)."""
    return await sync_to_async(login_session)(user)


def client_for(session_key: str) -> Client:
    client = Client()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = session_key
    return client


async def closed_with_session_ended(socket, timeout: float = 3.0) -> dict:
    """The error frame the socket got, once its close with 4001 has come."""
    frame = await socket.recv(timeout=timeout)
    assert (frame["type"], frame["code"]) == ("error", "session_ended"), frame
    assert frame["message"] == (
        "Your session has ended (signed out, or the password changed). Reload the page to keep chatting."
    )
    closing = await socket.comm.receive_output(timeout=timeout)
    assert closing == {"type": "websocket.close", "code": SESSION_ENDED}
    await socket.close()  # the browser's side of the close: the consumer stops
    return frame


async def still_open(socket) -> bool:
    await socket.send({"type": "ping"})
    return await socket.recv() == {"type": "pong"}


async def test_logout_closes_that_sessions_sockets_at_once_and_no_other(channel_layer, member):
    ended, other = await signed_in(member), await signed_in(member)
    first, second = await open_socket(ended), await open_socket(other)
    assert await still_open(first) and await still_open(second)

    response = await sync_to_async(client_for(ended).post)("/accounts/logout/")
    assert response.status_code == 302

    await closed_with_session_ended(first)
    assert await still_open(second)
    await second.close()


async def test_a_password_change_closes_all_the_persons_sockets(channel_layer, member):
    changer, elsewhere = await signed_in(member), await signed_in(member)
    here, there = await open_socket(changer), await open_socket(elsewhere)

    new_password = "another horse battery staple 43"
    client = client_for(changer)
    response = await sync_to_async(client.post)(
        "/accounts/password/change/",
        {"oldpassword": TEST_PASSWORD, "password1": new_password, "password2": new_password},
    )
    assert response.status_code == 302

    await closed_with_session_ended(there)  # its session no longer matches the password
    await closed_with_session_ended(here)  # its key was rotated: the old key is dead too
    # The browser that changed it holds the new key and reconnects as before.
    renewed = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert renewed != changer
    again = await open_socket(renewed)
    assert again.hello["user"]["authenticated"] is True
    assert await still_open(again)
    await again.close()


async def test_deleting_the_account_closes_all_its_sockets(channel_layer, member):
    sockets = [await open_socket(await signed_in(member)) for _ in range(2)]
    await sync_to_async(user_delete)(user=member)
    for socket in sockets:
        await closed_with_session_ended(socket)


async def test_a_run_started_before_logout_finishes_and_is_saved(channel_layer, upstream, tier, member):
    tokens = words(30, "w")
    upstream.push(Script(tokens=tokens, interval=0.03))
    session = await signed_in(member)
    socket = await open_socket(session)
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Tell me a story", "tier": "llama-3.1-8b"})
    started = await socket.recv()
    assert started["type"] == "run.started"

    await sync_to_async(client_for(session).post)("/accounts/logout/")
    frames = []
    while (frame := await socket.recv()).get("code") != "session_ended":
        frames.append(frame)
    closing = await socket.comm.receive_output(timeout=3)
    assert closing == {"type": "websocket.close", "code": SESSION_ENDED}
    await socket.close()
    assert all(f["type"] == "delta" for f in frames)  # no more of the answer once the session ended...

    for _ in range(250):  # ...but the answer is written to the end and saved
        run = await sync_to_async(GenerationRun.objects.get)(pk=started["run_id"])
        if run.status != GenerationRun.Status.RUNNING:
            break
        await asyncio.sleep(0.02)
    answer = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
    assert (run.status, answer.status, answer.content) == ("complete", "complete", "".join(tokens))
    assert await sync_to_async(GenerationRun.objects.count)() == 1


async def test_a_session_that_ends_without_a_signal_is_noticed_on_the_next_frame(upstream, tier, member, monkeypatch):
    from assistant import consumers

    monkeypatch.setattr(consumers, "SESSION_RECHECK_S", 0.0)
    session = await signed_in(member)
    socket = await open_socket(session)
    assert await still_open(socket)
    await sync_to_async(Session.objects.filter(session_key=session).delete)()  # e.g. expired, or flushed elsewhere

    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Hello", "tier": "llama-3.1-8b"})
    await closed_with_session_ended(socket)
    assert await sync_to_async(GenerationRun.objects.count)() == 0
    assert upstream.requests == []


async def test_a_guest_socket_ends_with_its_session_too(tier, monkeypatch):
    from assistant import consumers

    monkeypatch.setattr(consumers, "SESSION_RECHECK_S", 0.0)
    session = await sync_to_async(guest_session)()
    socket = await open_socket(session)
    assert await still_open(socket)
    await sync_to_async(Session.objects.filter(session_key=session).delete)()  # logging in rotates the key
    await socket.send({"type": "ping"})
    await closed_with_session_ended(socket)


async def test_the_session_is_read_at_most_once_per_recheck_window(member, monkeypatch):
    from assistant import consumers

    reads = []
    real = consumers.session_is_current
    monkeypatch.setattr(consumers, "session_is_current", lambda **kwargs: reads.append(kwargs) or real(**kwargs))
    monkeypatch.setattr(consumers, "SESSION_RECHECK_S", 2.0)
    session = await signed_in(member)
    socket = await open_socket(session)
    for _ in range(3):
        assert await still_open(socket)
    assert reads == []  # the handshake has just read it
    await asyncio.sleep(2.1)
    for _ in range(3):
        assert await still_open(socket)
    assert reads == [{"session_key": session, "user_id": member.pk}]
    await socket.close()


async def test_nothing_starts_for_a_session_that_ended_while_its_run_was_written(upstream, tier, member):
    """The socket's session ended between the frame and the start (run_launch asks once
    the run is written): the run is ended unstarted, its quota given back, nothing sent."""
    from assistant import runs, services
    from assistant.selectors import Owner
    from billing.entitlements import entitlements_for
    from billing.quotas import quota_usage_today

    with pytest.raises(services.RunRejected) as refused:
        await runs.run_launch(owner=Owner(user_id=member.pk), user=member, action="send", client_id="c1",
                              conversation_id=None, tier_slug="llama-3.1-8b", content="Hello", admit=lambda: False)
    assert refused.value.code == "session_ended"
    run = await sync_to_async(GenerationRun.objects.get)()
    assert run.status != GenerationRun.Status.RUNNING
    ent = await sync_to_async(entitlements_for)(user=member)
    usage = await sync_to_async(quota_usage_today)(subject=f"user:{member.pk}", entitlements=ent)
    assert (usage.tokens_reserved, usage.active_runs) == (0, 0)
    assert upstream.requests == []
