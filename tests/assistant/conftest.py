"""Fixtures for the chat back end: a fake OpenAI-compatible upstream (a real HTTP server
in this process), model tiers pointing at it, sessions, and a socket helper."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from assistant.models import ModelTier
from bench.fake_upstream import FakeUpstream, Script
from tests.factories import UserFactory

TITLE_TOKENS = ["Greeting", " the", " world"]


def is_title_request(body: dict) -> bool:
    first = body.get("messages", [{}])[0]
    return first.get("role") == "system" and first.get("content", "").startswith("Write a short title")


@pytest.fixture(scope="session", autouse=True)
def _close_thread_connections(django_db_setup, django_db_blocker):
    """Consumers reach the database from worker threads whose connections outlive the
    tests; on PostgreSQL close them so the test database can be dropped."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(scope="session")
def _upstream_server():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(_upstream_server):
    _upstream_server.reset()
    _upstream_server.route = lambda body: Script(tokens=list(TITLE_TOKENS)) if is_title_request(body) else None
    yield _upstream_server
    _upstream_server.reset()


def chat_requests(upstream: FakeUpstream) -> list[dict]:
    """The chat-completion requests the upstream received, without the title requests."""
    return [body for body in upstream.requests if not is_title_request(body)]


@pytest.fixture(autouse=True)
def _fast_chat_settings(settings):
    settings.LLM_CONNECT_TIMEOUT_S = 1.0
    # Short enough for the stall tests, long enough for a loaded 2-core test machine.
    settings.LLM_FIRST_TOKEN_TIMEOUT_S = 2.0
    settings.LLM_BETWEEN_TOKENS_TIMEOUT_S = 1.5
    settings.ASSISTANT_COALESCE_S = 0.04
    settings.ASSISTANT_SNAPSHOT_INTERVAL_S = 0.2
    settings.BILLING_GUEST_REQUESTS_PER_MINUTE = 1000
    settings.BILLING_GUEST_DAILY_TOKENS = 10_000_000
    settings.BILLING_GUEST_CONCURRENT_RUNS = 2


@pytest.fixture(autouse=True)
def _clean_redis():
    """Quotas and run logs live in Redis when REDIS_URL is set: start each test empty."""
    if django_settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(django_settings.REDIS_URL)
        client.flushdb()
        client.close()
    yield


@pytest.fixture
async def _runs_drained():
    """Runs outlive sockets: let this test's runs finish on its own loop, then forget them."""
    from assistant import runs
    from assistant.runlog import _in_process

    yield
    deadline = time.monotonic() + 5
    while runs._local_runs and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for handle in list(runs._local_runs.values()):
        handle.task.cancel()
    runs._local_runs.clear()
    from assistant import titles

    for task in list(titles._background):
        task.cancel()
    await asyncio.sleep(0)
    _in_process._logs.clear()


async def run_log_forget(run_id: str) -> None:
    """A run's log expires (or the process that kept it dies)."""
    from assistant.runlog import RedisRunLog, _in_process, _key, redis_client, run_log

    if isinstance(run_log(), RedisRunLog):
        await redis_client().delete(_key(run_id))
    else:
        _in_process._logs.pop(run_id, None)


def make_tier(upstream: FakeUpstream, *, slug: str = "llama-3.1-8b", **fields) -> ModelTier:
    defaults = {
        "display_name": "Llama 3.1 8B",
        "served_model_name": "fake-model",
        "served_by": "Fake upstream",
        "base_url": upstream.base_url,
        "context_length": 4096,
        "max_output_tokens": 256,
        "sampling": {"temperature": 0.6, "top_p": 0.9, "repeat_penalty": 1.1},
        "sort_order": 10,
    }
    defaults.update(fields)
    return ModelTier.objects.create(slug=slug, **defaults)


@pytest.fixture
def tier(transactional_db, upstream):
    return make_tier(upstream)


@pytest.fixture
def big_tier(transactional_db, upstream):
    return make_tier(upstream, slug="llama-3.1-405b", display_name="Llama 3.1 405B", sort_order=30)


@pytest.fixture
def free_plan(transactional_db, tier):
    from billing.models import Plan

    plan = Plan.objects.create(
        slug="free", name="Free", daily_tokens=10_000_000, requests_per_minute=1000, concurrent_runs=2,
        max_context=8192, ads_enabled=True, sort_order=10, model_tier_slugs=[tier.slug],
    )
    return plan


def login_session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def guest_session() -> str:
    store = SessionStore()
    store.create()
    return store.session_key


@pytest.fixture
def member(transactional_db, free_plan):
    return UserFactory(custom_instructions="Answer like a pirate.")


@pytest.fixture
def member_session(member):
    return login_session(member)


@pytest.fixture
def other_member(transactional_db, free_plan):
    return UserFactory()


@pytest.fixture
def other_session(other_member):
    return login_session(other_member)


class Socket:
    """A WebsocketCommunicator on the real ASGI application (origin check, sessions, auth)."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.comm = communicator
        self.hello: dict | None = None

    async def send(self, frame: dict) -> None:
        await self.comm.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv(self, timeout: float = 5.0, *, titles: bool = False) -> dict:
        """The next frame; `title` frames (pushed whenever a title is ready) are skipped unless asked for."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.comm.receive_json_from(timeout=max(0.05, deadline - time.monotonic()))
            if titles or frame.get("type") != "title":
                return frame

    async def until(self, *types: str, timeout: float = 10.0) -> list[dict]:
        """Frames up to and including the first one whose type is in `types`."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(timeout=max(0.05, deadline - time.monotonic()))
            frames.append(frame)
            if frame["type"] in types:
                return frames

    async def nothing(self, timeout: float = 0.3) -> bool:
        """True when nothing but (optional) title frames arrives within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or await self.comm.receive_nothing(timeout=left):
                return True
            frame = await self.comm.receive_json_from()
            if frame.get("type") != "title":
                self.unexpected = frame
                return False

    async def close(self) -> None:
        await self.comm.disconnect()


async def open_socket(session_key: str | None = None, *, origin: str = "http://testserver") -> Socket:
    from config.asgi import application

    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if session_key:
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    socket = Socket(communicator)
    if connected:
        socket.hello = await socket.recv()
    return socket


@pytest.fixture
def sessions(member_session, other_session):
    return {"member": member_session, "other": other_session}


db_sync = sync_to_async
