"""Many chats at once on PostgreSQL + Redis: every answer arrives whole and is saved once.

At 90 chats and more one web process used to run out of Redis connections (one blocking
XREAD per following socket, on redis-py's pool of 100 that raises instead of waiting):
every answer failed to start, or its `done` never reached the run log. The run logs'
connections are now bounded and shared (assistant/runlog.py): this asks for 120 answers
at once through the real ASGI application and checks each token of each one.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async

from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.assistant.conftest import guest_session, open_socket

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL",
    ),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_runs_drained"),
]

CHATS = 120
TOKENS = 30


@pytest.fixture
def lifted_guest_limits(settings):
    # Every guest of the test comes from one address: lift the per-network and all-guest limits.
    settings.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = 1_000_000
    settings.BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE = 1_000_000
    settings.BILLING_GUEST_ADDRESS_CONCURRENT_RUNS = 100_000
    settings.BILLING_GUEST_ADDRESS_DAILY_TOKENS = 10**12
    settings.BILLING_GUEST_TOTAL_DAILY_TOKENS = 10**12
    # The fake upstream shares this process's two cores with 120 chats: what is tested
    # here is that no answer is lost, not how fast the first token comes.
    settings.LLM_CONNECT_TIMEOUT_S = 30.0
    settings.LLM_FIRST_TOKEN_TIMEOUT_S = 60.0
    settings.LLM_BETWEEN_TOKENS_TIMEOUT_S = 60.0


async def _sockets(session_keys: list[str]) -> list:
    """Every chat's socket, open before the burst (twenty handshakes at a time: the
    handshakes are not what is tested, and a hundred at once outrun their timeout here)."""
    sockets = []
    for start in range(0, len(session_keys), 20):
        sockets += await asyncio.gather(*(open_socket(key) for key in session_keys[start:start + 20]))
    return sockets


async def _ask(socket, tier_slug: str) -> list[dict]:
    await socket.send({"type": "message.send", "client_id": "load", "conversation_id": None,
                       "content": "Tell me something, please.", "tier": tier_slug})
    return await socket.until("done", "error", timeout=120)


async def test_120_chats_at_once_lose_no_answer_and_no_token(upstream, tier, lifted_guest_limits):
    upstream.default = Script(tokens=words(TOKENS), interval=0.01, first_delay=0.05)
    sessions = await sync_to_async(lambda: [guest_session() for _ in range(CHATS)])()

    sockets = await _sockets(sessions)
    try:
        results = await asyncio.gather(*(_ask(socket, tier.slug) for socket in sockets))
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))

    failed = [frames[-1] for frames in results if frames[-1]["type"] != "done"]
    assert failed == []
    expected = "".join(words(TOKENS))
    for frames in results:
        deltas = [f for f in frames if f["type"] == "delta"]
        seqs = [f["seq"] for f in deltas] + [frames[-1]["seq"]]
        assert seqs == list(range(1, len(seqs) + 1))  # nothing lost, repeated or out of order
        assert "".join(f["text"] for f in deltas) == expected
    saved = await sync_to_async(lambda: sorted(
        Message.objects.filter(role="assistant").values_list("status", "content")
    ))()
    assert saved == [("complete", expected)] * CHATS
    statuses = await sync_to_async(lambda: list(GenerationRun.objects.values_list("status", flat=True)))()
    assert statuses == ["complete"] * CHATS
