"""Guest limits at the chat socket: per session and per client address (issue 9). Ten
fresh cookie jars from one address get no answer once one of them has hit the limit;
jars from other addresses do. Over a limit a guest gets the error frame with the
sign-up offer. The address is the peer's, or a trusted proxy's X-Forwarded-For."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from tests.assistant.conftest import Socket, chat_requests, guest_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]
SIGN_UP = "/accounts/signup/"


@pytest.fixture(autouse=True)
def guest_limits(settings):
    settings.BILLING_GUEST_DAILY_TOKENS = 400  # a message reserves ~300 (its prompt and 256 to answer)
    settings.BILLING_GUEST_ADDRESS_DAILY_TOKENS = 400
    settings.BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE = 1000
    settings.BILLING_GUEST_ADDRESS_CONCURRENT_RUNS = 20
    settings.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = 100
    settings.BILLING_GUEST_TOTAL_DAILY_TOKENS = 10_000_000
    settings.TRUSTED_PROXIES = []
    return settings


_opened: list[Socket] = []


@pytest.fixture(autouse=True)
async def _sockets_closed():
    """Every socket a test opened is closed with it (a consumer left running would hold the
    channel layer's receive lock into the next test's event loop)."""
    yield
    while _opened:
        await _opened.pop().close()


async def fresh_jar(peer: str, *, forwarded: str | None = None) -> Socket:
    """A browser without cookies: a new guest session, connecting from `peer`."""
    from config.asgi import application

    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={await sync_to_async(guest_session)()}".encode()),
    ]
    if forwarded:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    communicator.scope["client"] = [peer, 50123]
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    socket = Socket(communicator)
    _opened.append(socket)
    socket.hello = await socket.recv()
    return socket


async def ask(socket: Socket) -> dict:
    """Send a message; the error frame, or the run's final frame once it is answered."""
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Hello there", "tier": "llama-3.1-8b"})
    first = await socket.recv()
    if first["type"] == "error":
        return first
    assert first["type"] == "run.started"
    return (await socket.until("done", "error"))[-1]


async def use_up_the_limit(socket: Socket) -> dict:
    for _ in range(20):
        frame = await ask(socket)
        if frame["type"] == "error":
            return frame
    raise AssertionError("never refused")


async def test_ten_fresh_cookie_jars_from_one_address_after_one_hit_its_limit_get_the_sign_up_offer(upstream, tier):
    first = await fresh_jar("203.0.113.7")
    refused = await use_up_the_limit(first)
    assert (refused["code"], refused["upgrade_url"]) == ("daily_tokens", SIGN_UP)
    answered = len(chat_requests(upstream))
    assert answered >= 1

    for _ in range(10):
        jar = await fresh_jar("203.0.113.7")
        frame = await ask(jar)
        assert (frame["type"], frame["code"], frame["upgrade_url"]) == ("error", "daily_tokens", SIGN_UP)
        assert frame["message"].startswith("Guests on your network have used today's 400 tokens.")
        assert frame["message"].endswith("Sign up for free to get more.")
        await jar.send({"type": "ping"})  # the socket stays usable
        assert await jar.recv() == {"type": "pong"}
    assert len(chat_requests(upstream)) == answered  # nothing more was generated


async def test_fresh_cookie_jars_from_several_addresses_are_answered(upstream, tier):
    await use_up_the_limit(await fresh_jar("203.0.113.7"))
    for i in range(10):
        jar = await fresh_jar(f"198.51.100.{i + 1}")
        assert (await ask(jar))["type"] == "done"


async def test_new_guest_sessions_per_address_per_hour(upstream, tier, guest_limits):
    guest_limits.BILLING_GUEST_DAILY_TOKENS = guest_limits.BILLING_GUEST_ADDRESS_DAILY_TOKENS = 100_000
    guest_limits.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = 3
    outcomes = []
    for _ in range(10):
        jar = await fresh_jar("203.0.113.7")
        frame = await ask(jar)
        outcomes.append(frame["type"] if frame["type"] == "done" else (frame["code"], frame["upgrade_url"]))
    assert outcomes == ["done"] * 3 + [("rate_limited", SIGN_UP)] * 7
    assert (await ask(await fresh_jar("198.51.100.1")))["type"] == "done"


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(upstream, tier, guest_limits):
    await use_up_the_limit(await fresh_jar("10.0.0.5", forwarded="198.51.100.1"))
    # Not trusted: the header is the client's own claim, and the proxy's address is what counts.
    frame = await ask(await fresh_jar("10.0.0.5", forwarded="198.51.100.2"))
    assert (frame["type"], frame["code"]) == ("error", "daily_tokens")

    guest_limits.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert (await ask(await fresh_jar("10.0.0.5", forwarded="198.51.100.2")))["type"] == "done"
    await use_up_the_limit(await fresh_jar("10.0.0.5", forwarded="198.51.100.3"))
    # Behind the trusted proxy, a client cannot move to another address by writing one in.
    frame = await ask(await fresh_jar("10.0.0.5", forwarded="192.0.2.99, 198.51.100.3"))
    assert (frame["type"], frame["code"]) == ("error", "daily_tokens")
